"""The configured targets: the app's own database plus any named in DBARCHITECT_TARGETS.

Connection URLs stay in the environment; nothing here touches a model (the Target rows,
which only hold names and switches, are the agent's: dbarchitect.targets).
"""

import re
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_TARGET = "default"
# What Target.name (a SlugField of 63 characters) can hold.
TARGET_NAME = re.compile(r"[-a-zA-Z0-9_]{1,63}")
# Entries are separated by commas before "name=": a multi-host URL keeps its own commas.
ENTRY_SEPARATOR = re.compile(r",(?=\s*[-a-zA-Z0-9_]+\s*=)")
# libpq keywords a Django connection's parameters may carry; the rest are Django's own.
LIBPQ_KEYS = frozenset(
    {"dbname", "user", "password", "host", "port", "sslmode", "sslrootcert", "options"}
)


class UnknownTarget(ValueError):
    """The target is not configured; `known` lists the configured ones."""

    def __init__(self, name: object, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(name, self.known)  # args rebuild it (pickle, Celery's results)

    def __str__(self) -> str:
        return f"Unknown target {self.name!r}; configured targets: {', '.join(self.known)}"


@dataclass(frozen=True)
class TargetConnection:
    name: str
    conninfo: str


def database_conninfo(alias: str = "default") -> str:
    """A Django database (`default`: the app's own, `readonly`: ask-the-database's role)
    as a libpq connection string."""
    params = connections[alias].get_connection_params()
    return make_conninfo(
        **{key: value for key, value in params.items() if key in LIBPQ_KEYS and value}
    )


def configured_targets() -> dict[str, str]:
    """Name -> connection string of every target the environment names.

    Errors (ImproperlyConfigured) name the entry, never its URL: a URL holds a password."""
    targets = {DEFAULT_TARGET: database_conninfo()}
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
        port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
        for port in filter(None, ports.split(","))
    )


def target_connection(name: object) -> TargetConnection:
    """How to reach a configured target: the one check of a target's name, raising
    UnknownTarget (which lists the configured ones) for any other."""
    targets = configured_targets()
    if not isinstance(name, str) or name not in targets:
        raise UnknownTarget(name, list(targets))
    return TargetConnection(name=name, conninfo=targets[name])
