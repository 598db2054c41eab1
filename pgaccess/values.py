"""Values read from a target's rows: what a representative `$n` can be set to.

pg_stats gives most values (see dbarchitect.parameters); these reads fill the gaps: a
value from a sampled row, a containment operand made from real documents or arrays, an
enum's label, the default text search configuration. Samples are REPEATABLE, so two
audits of the same data read the same values and agree.
"""

import datetime as dt
import json
from typing import Any, Protocol

import psycopg
from psycopg import sql

from .marker import cursor
from .session import Savepoint, savepoint

# Rows read to pick a containment operand.
OPERAND_SAMPLE_ROWS = 200


class TableLike(Protocol):
    schema: str
    name: str


class ColumnLike(Protocol):
    name: str
    base_type: str  # pg_type.typname
    category: str  # pg_type.typcategory


def sampled_value(conn: psycopg.Connection, table: TableLike, col: ColumnLike) -> Any:
    """A value of the column from a row somewhere in the table (a sampled page first: the
    first rows of a table are often its oldest and least typical), as text; None if empty."""
    for sampling in (sql.SQL(" TABLESAMPLE SYSTEM (1) REPEATABLE (0)"), sql.SQL("")):
        query = sql.SQL(
            "SELECT {col}::text FROM {table}{sampling} WHERE {col} IS NOT NULL LIMIT 1"
        ).format(
            col=sql.Identifier(col.name),
            table=sql.Identifier(table.schema, table.name),
            sampling=sampling,
        )
        with savepoint(conn, Savepoint.SAMPLE), cursor(conn) as cur:
            cur.execute(query)
            row = cur.fetchone()
        if row is not None:
            return row[0]
    return None


def sampled_operand(
    conn: psycopg.Connection, table: TableLike, col: ColumnLike, operator: str | None
) -> Any:
    """A containment operand made from real rows.

    jsonb: {"key": value} for the key whose values vary most in a sample (the kind of key
    a containment filter is written for: an id, a batch, not a flag); arrays: the element
    rarest in the sample. `?`-style operators get a key.
    """
    column = sql.Identifier(col.name)
    relation = sql.Identifier(table.schema, table.name)
    if col.base_type == "jsonb":
        wanted = "e.key" if operator in ("?", "?|", "?&") else "jsonb_build_object(e.key, e.value)"
        select = sql.SQL(
            "WITH pairs AS (SELECT e.key, e.value FROM (SELECT {c} AS doc FROM {t} "
            "WHERE jsonb_typeof({c}) = 'object' LIMIT {n}) AS s, jsonb_each(s.doc) AS e "
            "WHERE jsonb_typeof(e.value) NOT IN ('object', 'array')), "
            "best AS (SELECT key FROM pairs GROUP BY key "
            "ORDER BY count(DISTINCT value) DESC, key LIMIT 1) "
            "SELECT {wanted}::text FROM pairs AS e JOIN best USING (key) LIMIT 1"
        ).format(wanted=sql.SQL(wanted), n=OPERAND_SAMPLE_ROWS, c=column, t=relation)
    elif col.category == "A":
        select = sql.SQL(
            "SELECT array[e]::text FROM (SELECT {c} AS arr FROM {t} "
            "WHERE cardinality({c}) > 0 LIMIT {n}) AS s, unnest(s.arr) AS e "
            "GROUP BY e ORDER BY count(*), e::text LIMIT 1"
        ).format(n=OPERAND_SAMPLE_ROWS, c=column, t=relation)
    else:
        return sampled_value(conn, table, col)
    with savepoint(conn, Savepoint.SAMPLE), cursor(conn) as cur:
        cur.execute(select)
        row = cur.fetchone()
    if row is None:
        return "{}"
    if operator in ("?|", "?&"):
        return "{" + json.dumps(row[0]) + "}"
    return row[0]


def text_search_config(conn: psycopg.Connection) -> str:
    """The target's default_text_search_config: what a to_tsvector($1, col) whose
    configuration pg_stat_statements hid most likely used (one-argument calls use it)."""
    with cursor(conn) as cur:
        cur.execute("SELECT current_setting('default_text_search_config')")
        return cur.fetchone()[0]


def enum_label(conn: psycopg.Connection, type_name: str) -> str | None:
    """The first label of an enum type (a number does not cast to one), else None."""
    try:
        with savepoint(conn, Savepoint.SAMPLE), cursor(conn) as cur:
            cur.execute(
                "SELECT e.enumlabel FROM pg_enum AS e "
                "WHERE e.enumtypid = to_regtype(%s) ORDER BY e.enumsortorder LIMIT 1",
                (type_name,),
            )
            row = cur.fetchone()
    except psycopg.Error:  # a type name to_regtype cannot even parse: not an enum
        return None
    return row[0] if row else None


def value_for_type(type_name: str | None) -> Any:
    """A harmless value of a type, for a $n nothing else tells about."""
    name = (type_name or "").lower()
    today = dt.date.today()
    if name in ("date",):
        return today.isoformat()
    if name.startswith(("timestamp", "timestamptz")):
        return dt.datetime.combine(today, dt.time()).isoformat(sep=" ")
    if name.startswith("interval"):
        return "1 day"
    if name.startswith(("time",)):
        return "12:00"
    if name in ("bool", "boolean"):
        return True
    if name in ("json", "jsonb"):
        return "{}"
    if name == "uuid":
        return "00000000-0000-0000-0000-000000000000"
    if name in ("inet", "cidr"):
        return "10.0.0.1"
    if name in ("macaddr", "macaddr8"):
        return "08:00:2b:01:02:03"
    if name.endswith("[]") or name.startswith("_"):
        return "{}"
    if name in ("text", "varchar", "character varying", "bpchar", "char", "name", "citext"):
        return "a"
    return 1


def array_literal(values: list[Any]) -> str:
    """A PostgreSQL array literal ('{"a","b"}') of the values, each quoted."""
    texts = dict.fromkeys(str(value) for value in values if value is not None)
    quoted = ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' for text in texts)
    return "{" + ",".join(quoted) + "}"
