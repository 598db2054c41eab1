"""pg_stat_statements reads: which version is installed, when it was reset, its entries.

The extension's version, not the server's, decides the view's columns (pg_upgrade keeps
the old one until ALTER EXTENSION ... UPDATE). A role that may not read other roles'
statements sees them without text: that is refused, never read as a quiet workload.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from .marker import execute


class PgssUnavailable(Exception):
    """The target's pg_stat_statements cannot be read; the message says what to do."""


@dataclass(frozen=True)
class Counters:
    """One pg_stat_statements row as read (cumulative), or as a previous audit stored it."""

    queryid: int
    userid: int
    query: str
    calls: int
    total_time_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    stats_since: datetime | None = None  # PostgreSQL 17+: when this entry started counting


def _pgss_extension(conn: psycopg.Connection) -> tuple[str, tuple[int, ...]]:
    row = execute(
        conn,
        """
        SELECT n.nspname AS extension_schema, e.extversion AS extension_version
        FROM pg_extension AS e
        JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements'""",
    ).fetchone()
    if row is None:
        raise PgssUnavailable(
            "pg_stat_statements is not installed in the target database: add it to "
            "shared_preload_libraries, restart PostgreSQL, then CREATE EXTENSION pg_stat_statements"
        )
    return row[0], tuple(int(part) for part in row[1].split(".") if part.isdigit())


def pgss_schema(conn: psycopg.Connection) -> str:
    return _pgss_extension(conn)[0]


def pgss_version(conn: psycopg.Connection) -> tuple[int, ...]:
    """The installed extension's version, e.g. (1, 10). It, not the server's version, decides
    the view's columns: pg_upgrade keeps the old one until ALTER EXTENSION ... UPDATE."""
    return _pgss_extension(conn)[1]


def pgss_stats_reset(conn: psycopg.Connection) -> datetime | None:
    """When the whole view was last reset (extension 1.9+), or None where unknown."""
    if pgss_version(conn) < (1, 9):
        return None
    query = sql.SQL("SELECT stats_reset FROM {info}").format(
        info=sql.Identifier(pgss_schema(conn), "pg_stat_statements_info")
    )
    with _pgss_readable():
        row = execute(conn, query).fetchone()
    return row[0] if row else None


@contextmanager
def _pgss_readable() -> Iterator[None]:
    """The view's own refusals (not preloaded, not allowed), as what to do about them."""
    try:
        yield
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise PgssUnavailable(
            "pg_stat_statements must be loaded via shared_preload_libraries on the target "
            f"server (restart needed): {exc}"
        ) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PgssUnavailable(
            f"the audit role cannot read pg_stat_statements: GRANT pg_read_all_stats TO it ({exc})"
        ) from exc


def _refuse_hidden_statements(conn: psycopg.Connection, *, view: sql.Composable) -> None:
    """A role without pg_read_all_stats sees other roles' statements without text or
    queryid: an audit of what it sees would report a clean bill of health it never saw."""
    row = execute(
        conn,
        sql.SQL(
            """
            SELECT quote_ident(current_user) AS role, count(*) AS hidden
            FROM {view} AS s
            WHERE s.dbid = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
              AND s.queryid IS NULL"""
        ).format(view=view),
    ).fetchone()
    role, hidden = row
    if hidden:
        raise PgssUnavailable(
            f"the audit role {role} cannot see {hidden} statements of other roles in "
            f"pg_stat_statements (their text is hidden): GRANT pg_read_all_stats TO {role}"
        )


def pgss_read(conn: psycopg.Connection, *, queryids: Iterable[int] | None = None) -> list[Counters]:
    """Every top-level entry of the current database (or of those queries), cumulative."""
    version = pgss_version(conn)
    since = sql.SQL("s.stats_since") if version >= (1, 11) else sql.SQL("NULL::timestamptz")
    toplevel = sql.SQL("AND s.toplevel") if version >= (1, 9) else sql.SQL("")
    total = (
        sql.SQL("s.total_exec_time + s.total_plan_time")
        if version >= (1, 8)
        else sql.SQL("s.total_time")
    )
    query = sql.SQL(
        """
        SELECT s.queryid, s.userid, s.query, s.calls, {total} AS total_time_ms,
               s.rows, s.shared_blks_hit, s.shared_blks_read, {since} AS stats_since
        FROM {view} AS s
        WHERE s.dbid = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
          AND s.queryid IS NOT NULL
          {toplevel} {only}"""
    ).format(
        total=total,
        since=since,
        view=sql.Identifier(pgss_schema(conn), "pg_stat_statements"),
        toplevel=toplevel,
        only=sql.SQL("") if queryids is None else sql.SQL("AND s.queryid = ANY(%s)"),
    )
    params = None if queryids is None else [list(queryids)]
    with _pgss_readable():
        rows = execute(conn, query, params).fetchall()
    _refuse_hidden_statements(conn, view=sql.Identifier(pgss_schema(conn), "pg_stat_statements"))
    return [
        Counters(
            queryid=queryid,
            userid=userid,
            query=text or "",
            calls=calls,
            total_time_ms=float(total),
            rows=rows_,
            shared_blks_hit=hit,
            shared_blks_read=read,
            stats_since=stats_since,
        )
        for queryid, userid, text, calls, total, rows_, hit, read, stats_since in rows
    ]
