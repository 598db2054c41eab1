"""Audit targets: the app's own database plus any named in DBARCHITECT_TARGETS.

Connection URLs stay in the environment; the Target rows only hold names and switches.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from psycopg.conninfo import make_conninfo

from .models import Target

DEFAULT_TARGET = "default"


@dataclass(frozen=True)
class TargetConnection:
    name: str
    conninfo: str


def _default_conninfo() -> str:
    """The app's own database as a libpq connection string (Django's settings for it)."""
    params = connections["default"].get_connection_params()
    fields = {"dbname", "user", "password", "host", "port", "sslmode", "application_name"}
    return make_conninfo(**{key: value for key, value in params.items() if key in fields and value})


def configured_targets() -> dict[str, str]:
    """Name -> connection string of every target the environment names."""
    targets = {DEFAULT_TARGET: _default_conninfo()}
    raw = settings.DBARCHITECT_TARGETS.strip()
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url.startswith(("postgres://", "postgresql://")):
            raise ImproperlyConfigured(
                f"DBARCHITECT_TARGETS entry {name or item!r} must look like name=postgres://..."
            )
        targets[name] = url
    return targets


def target_sync() -> list[Target]:
    """Create a Target row for every configured target; keep their admin switches."""
    result = []
    for name in configured_targets():
        target, _ = Target.objects.get_or_create(
            name=name, defaults={"allow_verify": name == DEFAULT_TARGET}
        )
        result.append(target)
    return result


class UnknownTarget(ValueError):
    """The target is not configured (the message lists the configured ones)."""


def target_get(*, name: str) -> Target:
    """The Target row of a configured target, created on first use."""
    targets = configured_targets()
    if name not in targets:
        known = ", ".join(sorted(targets))
        raise UnknownTarget(f"unknown target {name!r}; configured targets: {known}")
    target = Target.objects.filter(name=name).first()
    if target is None:
        target_sync()
        target = Target.objects.get(name=name)
    return target


def target_connection(name: str) -> TargetConnection:
    targets = configured_targets()
    if name not in targets:
        known = ", ".join(sorted(targets))
        raise ImproperlyConfigured(f"Unknown target {name!r}; configured targets: {known}")
    return TargetConnection(name=name, conninfo=targets[name])
