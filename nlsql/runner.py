"""Read-only execution of a guarded SELECT on a session of its own.

Defence in depth behind the guard: a READ ONLY transaction that is always rolled back,
a statement and lock timeout, a search_path that puts pg_catalog first (so a same-named
function in a user schema cannot shadow a built-in), a plan check that refuses foreign
scans and denied tables reached through views, and a server-side cursor that fetches at
most the row cap plus one. The connection is pgaccess's session, unmarked: the staff's
query is recorded as they wrote it; it is kept between questions (nlsql.sessions). Errors
never carry a target's password.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql

from pgaccess.explain import plan_nodes
from pgaccess.scrub import secrets_scrub
from pgaccess.session import TargetUnavailable, session_connect
from pgaccess.targets import DEFAULT_TARGET

from .guard import CheckedSql, GuardPolicy, SqlRefused, relation_refusal
from .jsonsafe import json_safe
from .sessions import kept_session

# How the runner's sessions are named in pg_stat_activity.
APPLICATION_NAME = "dbarchitect-nlsql"
# Plan nodes that would reach outside this database.
FOREIGN_PLAN_NODES = {"Foreign Scan", "Custom Scan"}


class QueryFailed(Exception):
    """The database refused or failed the query; str() is the server's message."""


@dataclass
class QueryResult:
    sql: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    duration_ms: float = 0.0

    @property
    def row_count(self) -> int:
        return len(self.rows)


def read_only_connection(target: str) -> psycopg.Connection:
    """A fresh connection whose transactions are READ ONLY and named in pg_stat_activity:
    the `readonly` database for the default target, else the target's URL."""
    timeout_ms = settings.NLSQL_STATEMENT_TIMEOUT_MS
    try:
        return session_connect(
            target,
            purpose="ask",
            database="readonly",
            autocommit=False,
            read_only=True,
            statement_timeout_ms=timeout_ms,
            lock_timeout_ms=timeout_ms,
            application_name=APPLICATION_NAME,
            mark=False,
        )
    except TargetUnavailable as exc:
        raise QueryFailed(f"Cannot connect to target {target!r}: {exc.reason}") from None


def _prepare_session(conn: psycopg.Connection, *, timeout_ms: int) -> None:
    """Transaction-local limits: timeouts and a pg_catalog-first search path."""
    schemas = ["pg_catalog", *settings.NLSQL_ALLOWED_SCHEMAS]
    search_path = sql.SQL(", ").join(map(sql.Identifier, schemas)).as_string(conn)
    conn.execute(
        "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true),"
        " set_config('search_path', %s, true)",
        [f"{timeout_ms}ms", f"{timeout_ms}ms", search_path],
    )


def _plan(conn: psycopg.Connection, checked: CheckedSql) -> dict:
    statement = sql.SQL("EXPLAIN (VERBOSE, FORMAT JSON) {}").format(sql.SQL(checked.sql))
    return conn.execute(statement).fetchone()[0][0]


# Why the caller's user may not read a relation (schema, table), or None: the runner applies
# it to what the plan reads, tables behind views included (nlsql.permissions).
RelationRule = Callable[[str | None, str], str | None]


def _refuse_by_plan(plan: dict, also_refuse: RelationRule | None = None) -> None:
    """What the text cannot show: foreign tables, and denied tables read through a view."""
    policy = GuardPolicy.from_settings()
    for node in plan_nodes(plan):
        if node.get("Node Type") in FOREIGN_PLAN_NODES:
            where = node.get("Relation Name", "a foreign table")
            raise SqlRefused(f"The query reads {where} through a foreign data wrapper.")
        if "Relation Name" in node:
            schema, table = node.get("Schema"), node["Relation Name"]
            refusal = relation_refusal(schema, table, policy)
            refusal = refusal or (also_refuse(schema, table) if also_refuse else None)
            if refusal:
                raise SqlRefused(f"The query plan reads a relation it may not: {refusal}")


def query_plan(*, checked: CheckedSql, target: str = DEFAULT_TARGET) -> dict:
    """EXPLAIN (FORMAT JSON) of a checked query, read-only, never executed."""
    with kept_session(target, read_only_connection) as conn:
        try:
            _prepare_session(conn, timeout_ms=settings.NLSQL_STATEMENT_TIMEOUT_MS)
            return _plan(conn, checked)
        except psycopg.Error as exc:
            raise QueryFailed(_message(exc)) from None
        finally:
            conn.rollback()


def query_run(
    *,
    checked: CheckedSql,
    target: str = DEFAULT_TARGET,
    max_rows: int | None = None,
    timeout_ms: int | None = None,
    also_refuse: RelationRule | None = None,
) -> QueryResult:
    """Run a checked SELECT read-only; at most max_rows rows, `truncated` when there were more."""
    max_rows = settings.NLSQL_MAX_ROWS if max_rows is None else max_rows
    timeout_ms = settings.NLSQL_STATEMENT_TIMEOUT_MS if timeout_ms is None else timeout_ms
    started = time.monotonic()
    with kept_session(target, read_only_connection) as conn:
        try:
            _prepare_session(conn, timeout_ms=timeout_ms)
            _refuse_by_plan(_plan(conn, checked), also_refuse)
            with conn.cursor(name="nlsql_result") as cursor:
                cursor.execute(sql.SQL(checked.sql))
                fetched = cursor.fetchmany(max_rows + 1)
                columns = [column.name for column in cursor.description or []]
        except psycopg.Error as exc:
            raise QueryFailed(_message(exc)) from None
        finally:
            conn.rollback()
    return QueryResult(
        sql=checked.sql,
        columns=columns,
        rows=[[json_safe(value) for value in row] for row in fetched[:max_rows]],
        truncated=len(fetched) > max_rows,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
    )


def _message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return secrets_scrub((primary or str(exc)).strip())
