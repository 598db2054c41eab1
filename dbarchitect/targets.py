"""Audit targets: the app's own database plus any named in DBARCHITECT_TARGETS.

Connection URLs stay in the environment; the Target rows only hold names and switches.
"""

import re
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from config.parsing import parse_int

from .models import Target

DEFAULT_TARGET = "default"
# What Target.name (a SlugField of 63 characters) can hold.
TARGET_NAME = re.compile(r"[-a-zA-Z0-9_]{1,63}")
# Entries are separated by commas before "name=": a multi-host URL keeps its own commas.
ENTRY_SEPARATOR = re.compile(r",(?=\s*[-a-zA-Z0-9_]+\s*=)")


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
    """Name -> connection string of every target the environment names.

    Errors name the entry, never its URL: a URL holds a password."""
    targets = {DEFAULT_TARGET: _default_conninfo()}
    raw = settings.DBARCHITECT_TARGETS.strip()
    entries = (part.strip() for part in ENTRY_SEPARATOR.split(raw))
    for number, item in enumerate(filter(None, entries), start=1):
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url.startswith(("postgres://", "postgresql://")):
            what = repr(name) if sep else f"number {number}"
            raise ImproperlyConfigured(
                f"DBARCHITECT_TARGETS entry {what} must look like name=postgres://..."
            )
        if not TARGET_NAME.fullmatch(name):
            raise ImproperlyConfigured(
                f"DBARCHITECT_TARGETS entry {name!r}: a target name is 1 to 63 letters, digits, "
                "'-' or '_'"
            )
        if name in targets:
            why = "is the app's own database" if name == DEFAULT_TARGET else "is named twice"
            raise ImproperlyConfigured(f"DBARCHITECT_TARGETS entry {name!r}: {name!r} {why}")
        if not _url_parses(url):
            raise ImproperlyConfigured(
                f"DBARCHITECT_TARGETS entry {name!r} is not a valid connection URL "
                "(check its brackets, port and %-escapes)"
            )
        targets[name] = url
    return targets


def _url_parses(url: str) -> bool:
    """libpq can read the URL, ports included (it reads those only when it connects)."""
    try:
        ports = str(conninfo_to_dict(url).get("port") or "")
    except psycopg.ProgrammingError:
        return False
    return all(
        (number := parse_int(port)) is not None and 1 <= number <= 65535
        for port in filter(None, ports.split(","))
    )


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
