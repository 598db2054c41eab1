"""Connections to audit targets: autocommit, bounded waits, and errors without secrets."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from psycopg.conninfo import conninfo_to_dict

from .collector import MARKER, CollectError, pgss_read
from .targets import UnknownTarget, configured_targets, target_connection

logger = logging.getLogger(__name__)

APPLICATION_NAME = "dbarchitect"


class TargetUnavailable(Exception):
    """The target database could not be reached; the message names it, never its password."""


def target_connect(
    name: str, *, purpose: str, statement_timeout_ms: int | None = None
) -> psycopg.Connection:
    """An autocommit connection to target `name` with the audit's timeouts set.

    `purpose` ("audit", "verify", ...) only labels the error message and the log line.
    """
    target = target_connection(name)
    statement_ms = statement_timeout_ms or settings.DBARCHITECT_STATEMENT_TIMEOUT_MS
    lock_ms = settings.DBARCHITECT_LOCK_TIMEOUT_MS
    timeout_s = settings.DBARCHITECT_CONNECT_TIMEOUT_S
    try:
        conn = psycopg.connect(
            target.conninfo,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=timeout_s,
            options=f"-c statement_timeout={int(statement_ms)} -c lock_timeout={int(lock_ms)}",
        )
    except psycopg.Error as exc:
        why = secrets_scrub(str(exc)).strip()
        if isinstance(exc, psycopg.errors.ConnectionTimeout):
            why += f" (no answer within DBARCHITECT_CONNECT_TIMEOUT_S={timeout_s}s)"
        raise TargetUnavailable(
            f"target {name!r} is unreachable for {purpose} ({conninfo_describe(target.conninfo)}): "
            f"{why}"
        ) from None
    try:
        extensions_on_path(conn)
    except BaseException:
        conn.close()
        raise
    logger.debug("connected to target %s for %s", name, purpose)
    return conn


def extensions_on_path(conn: psycopg.Connection) -> None:
    """Append hypopg's schema to the session's search_path when the extension was created
    outside it: its functions are called unqualified, the workload's names resolve as before."""
    conn.execute(
        f"""{MARKER}
        SELECT set_config(
            'search_path',
            concat_ws(', ', nullif(current_setting('search_path'), ''), quote_ident(n.nspname)),
            false
        ) AS search_path
        FROM pg_extension AS e
        JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'hypopg' AND n.nspname <> ALL (current_schemas(true))"""
    )


def hypopg_problem(conn: psycopg.Connection) -> str | None:
    """Why this session cannot create hypothetical indexes, or None: hypopg is missing, or
    its schema is one the role may not use (its functions then do not resolve at all)."""
    row = conn.execute(
        f"""{MARKER}
        SELECT quote_ident(n.nspname), has_schema_privilege(n.oid, 'USAGE'),
               quote_ident(current_user)
        FROM pg_extension AS e
        JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'hypopg'"""
    ).fetchone()
    if row is None:
        return (
            "extension hypopg is not installed on the target database: "
            "CREATE EXTENSION hypopg there (it needs the hypopg package on the server)"
        )
    schema, usable, user = row
    if not usable:
        return (
            f"role {user} cannot use extension hypopg: it is installed in schema {schema}, "
            f"on which the role has no USAGE privilege; GRANT USAGE ON SCHEMA {schema} TO {user}"
        )
    return None


@contextmanager
def target_session(name: str, *, purpose: str) -> Iterator[psycopg.Connection]:
    """`target_connect` for a block; leaves no hypothetical index behind when it closes."""
    try:
        conn = target_connect(name, purpose=purpose)
    except ImproperlyConfigured as exc:
        raise UnknownTarget(str(exc)) from None
    try:
        yield conn
    finally:
        if not conn.closed and not conn.broken:
            try:
                if hypopg_problem(conn) is None:
                    conn.execute(f"{MARKER} SELECT hypopg_reset()")
            except psycopg.Error:
                logger.warning("hypopg_reset failed on target %s", name, exc_info=True)
        conn.close()


def target_problems(name: str) -> list[str]:
    """What would fail an audit of `name` before it looks at a query, for `manage.py check`:
    unreachable, pg_stat_statements missing, not preloaded or hidden, hypopg missing."""
    try:
        with target_session(name, purpose="check") as conn:
            problems = []
            try:
                pgss_read(conn)
            except CollectError as exc:
                problems.append(str(exc))
            hypopg = hypopg_problem(conn)
            if hypopg is not None:
                problems.append(hypopg)
            return problems
    except TargetUnavailable as exc:
        return [str(exc)]


def conninfo_describe(conninfo: str) -> str:
    """user@host:port/dbname of a connection string: enough to find it, no password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "unparseable connection string"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"{user}{params.get('host', 'localhost')}{port}/{params.get('dbname', '')}"


def secrets_scrub(text: str) -> str:
    """`text` with every configured target's password replaced by ***."""
    for conninfo in configured_targets().values():
        try:
            password = conninfo_to_dict(conninfo).get("password")
        except psycopg.ProgrammingError:
            continue
        if password:
            text = text.replace(str(password), "***")
    return text
