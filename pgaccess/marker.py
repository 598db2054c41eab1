"""The marker every statement of the architect's sessions carries.

It lets the collector tell the architect's own queries from the workload in
pg_stat_statements, which records neither the application_name nor the client. Cursors
add it, so no caller writes it; transaction control (BEGIN, SAVEPOINT...) is psycopg's
own and carries none.
"""

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

MARKER = "/* dbarchitect */"


def marked(query: Any) -> Any:
    """`query` (text, bytes or psycopg.sql) with MARKER in front, unless it has it."""
    if isinstance(query, str):
        return query if query.lstrip().startswith(MARKER) else f"{MARKER} {query}"
    if isinstance(query, bytes):
        head = MARKER.encode()
        return query if query.lstrip().startswith(head) else head + b" " + query
    lead = query
    while isinstance(lead, sql.Composed):
        lead = next(iter(lead), None)
    if isinstance(lead, sql.SQL) and lead.as_string(None).lstrip().startswith(MARKER):
        return query
    return sql.Composed([sql.SQL(MARKER + " "), query])


def script(statements: Iterable[sql.Composable]) -> sql.Composed:
    """Statements sent in one round trip, each marked: pg_stat_statements records every
    statement of a multi-statement string on its own, from just after the `;` before it."""
    return marked(sql.SQL(f"; {MARKER} ").join(list(statements)))


class MarkedCursor(psycopg.Cursor):
    """A cursor whose statements carry MARKER (Connection.execute goes through it too)."""

    def execute(self, query, params=None, **kwargs):
        return super().execute(marked(query), params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):
        return super().executemany(marked(query), params_seq, **kwargs)

    def stream(self, query, params=None, **kwargs):
        return super().stream(marked(query), params, **kwargs)


def cursor(conn: psycopg.Connection, **kwargs) -> MarkedCursor:
    """A marked cursor on any connection, a caller's own included (what pgaccess's own
    reads use, so they are marked whoever opened the connection)."""
    return MarkedCursor(conn, **kwargs)


def execute(conn: psycopg.Connection, query: Any, params: Any = None, **kwargs) -> MarkedCursor:
    """Connection.execute, marked on any connection."""
    return cursor(conn).execute(query, params, **kwargs)
