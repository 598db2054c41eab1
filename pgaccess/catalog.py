"""Catalog reads: the tables a workload touches, their columns, indexes and statistics.

Tables are resolved the way the server resolves them (`to_regclass` under the session's
search_path), so an unqualified name in a query lands on the same table the query used.
pg_stat_statements does not record the search_path an application ran a query with:
`search_path_widened` reaches the one schema an otherwise unknown name is in. Index facts
come from one pg_index reader (INDEXES_SQL), which the health checks share.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .marker import cursor

# Schemas that describe the database itself. Every schema named pg_* is the server's too
# (pg_catalog, pg_toast, pg_temp_N: CREATE SCHEMA refuses the prefix), see is_system_schema.
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
# The same rule in SQL, for a WHERE clause on pg_namespace.nspname (alias n).
USER_SCHEMA_SQL = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'"


def is_system_schema(schema: str) -> bool:
    """True for the server's own schemas: information_schema and every pg_* one."""
    return schema in SYSTEM_SCHEMAS or schema.startswith("pg_")


class RelationName(Protocol):
    """A relation as a query writes it: its schema (None: unqualified) and name."""

    schema: str | None
    name: str


Rel = TypeVar("Rel", bound=RelationName)


# Index facts, one row per index: key columns and their operator classes, collations and
# sort options as text arrays (prefixes compare with array slices), what the index
# enforces and whether a foreign key uses it. Callers add the WHERE clause.
INDEXES_SQL = """
    SELECT
        n.nspname AS schema_name,
        t.relname AS table_name,
        i.relname AS index_name,
        x.indexrelid AS index_oid,
        x.indrelid AS table_oid,
        am.amname AS method,
        x.indnkeyatts AS key_count,
        x.indnatts AS column_count,
        (string_to_array(x.indkey::text, ' '))[1:x.indnkeyatts] AS key_attnums,
        (string_to_array(x.indclass::text, ' '))[1:x.indnkeyatts] AS key_opclasses,
        (string_to_array(x.indcollation::text, ' '))[1:x.indnkeyatts] AS key_collations,
        (string_to_array(x.indoption::text, ' '))[1:x.indnkeyatts] AS key_options,
        ARRAY(SELECT (x.indoption[k - 1] & 1) = 1
              FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS descending,
        ARRAY(SELECT opc.opcname::text
              FROM unnest(x.indclass::oid[]) WITH ORDINALITY AS u(opc_oid, ord)
              JOIN pg_opclass AS opc ON opc.oid = u.opc_oid ORDER BY u.ord) AS opclass_names,
        pg_get_expr(x.indexprs, x.indrelid) AS expressions,
        pg_get_expr(x.indpred, x.indrelid) AS predicate,
        pg_get_expr(x.indpred, x.indrelid, true) AS predicate_pretty,
        x.indisunique AS is_unique,
        x.indisunique OR x.indisprimary OR x.indisexclusion
            OR EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = x.indexrelid)
            AS enforces_constraint,
        EXISTS (
            SELECT 1 FROM pg_constraint AS f
            WHERE f.contype = 'f' AND f.conrelid = x.indrelid
              AND (x.indkey::int2[])[0:cardinality(f.conkey) - 1] @> f.conkey
              AND (x.indkey::int2[])[0:cardinality(f.conkey) - 1] <@ f.conkey
        ) AS serves_foreign_key,
        ARRAY(
            SELECT pg_get_indexdef(x.indexrelid, k, true)
            FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k
        ) AS key_columns,
        pg_relation_size(x.indexrelid) AS size_bytes,
        x.indisvalid AS is_valid,
        x.indisvalid AND x.indisready AS is_usable
    FROM pg_index AS x
    JOIN pg_class AS i ON i.oid = x.indexrelid
    JOIN pg_class AS t ON t.oid = x.indrelid
    JOIN pg_namespace AS n ON n.oid = t.relnamespace
    JOIN pg_am AS am ON am.oid = i.relam
"""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_name: str  # format_type(): "character varying(64)", "jsonb", "integer[]"
    base_type: str  # pg_type.typname: "varchar", "jsonb", "_int4"
    category: str  # pg_type.typcategory: S string, N numeric, D date/time, A array, U user...
    collation: str | None  # "C", "POSIX", "en_US.utf8"... resolved through the database default


@dataclass(frozen=True)
class IndexInfo:
    name: str
    method: str
    keys: tuple[str, ...]  # each key column / expression, normalized (see analysis)
    descending: tuple[bool, ...]
    opclasses: tuple[str, ...]
    predicate: str | None
    unique: bool
    valid: bool
    size_bytes: int


@dataclass
class TableInfo:
    oid: int
    schema: str
    name: str
    kind: str  # pg_class.relkind: r table, p partitioned, v view, m materialized view
    rows: float  # pg_class.reltuples; guessed from relpages when never analyzed
    pages: int
    writes: int  # n_tup_ins + n_tup_upd + n_tup_del since the statistics reset
    view_definition: str | None
    columns: dict[str, ColumnInfo] = field(default_factory=dict)
    indexes: list[IndexInfo] = field(default_factory=list)

    @property
    def is_system(self) -> bool:
        return is_system_schema(self.schema)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ColumnStats:
    null_frac: float
    n_distinct: float
    common_values: tuple  # most_common_vals, as JSON values
    common_freqs: tuple[float, ...]
    histogram: tuple  # histogram_bounds, as JSON values
    avg_width: int = 0  # bytes per value: what an index key or INCLUDE column takes


def catalog_tables(conn: psycopg.Connection, relations: Iterable[Rel]) -> dict[Rel, TableInfo]:
    """Relation as written in a query -> what the catalog says about it (missing: absent)."""
    wanted = list(dict.fromkeys(relations))
    if not wanted:
        return {}
    with cursor(conn, row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT r.ord, c.oid, n.nspname AS schema_name, c.relname AS table_name,
                   c.relkind::text AS kind, c.reltuples AS row_estimate,
                   c.relpages AS page_count,
                   CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END
                       AS view_definition,
                   COALESCE(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) AS tuple_writes
            FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS r(schema_name, rel_name, ord)
            JOIN pg_class c ON c.oid = to_regclass(
                CASE WHEN r.schema_name IS NULL THEN quote_ident(r.rel_name)
                     ELSE quote_ident(r.schema_name) || '.' || quote_ident(r.rel_name) END)
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
            """,
            ([r.schema for r in wanted], [r.name for r in wanted]),
        )
        rows = cur.fetchall()
        tables: dict[int, TableInfo] = {}
        result: dict[Rel, TableInfo] = {}
        for row in rows:
            info = tables.get(row["oid"])
            if info is None:
                info = TableInfo(
                    oid=row["oid"],
                    schema=row["schema_name"],
                    name=row["table_name"],
                    kind=row["kind"],
                    rows=_row_estimate(row["row_estimate"], row["page_count"]),
                    pages=int(row["page_count"]),
                    writes=int(row["tuple_writes"]),
                    view_definition=row["view_definition"],
                )
                tables[info.oid] = info
            result[wanted[row["ord"] - 1]] = info
        if not tables:
            return result
        oids = list(tables)
        cur.execute(
            """
            SELECT a.attrelid AS oid, a.attname AS column_name,
                   format_type(a.atttypid, a.atttypmod) AS type_name,
                   t.typname AS base_type, t.typcategory::text AS category,
                   CASE WHEN a.attcollation = 0 THEN NULL
                        WHEN co.collname = 'default' THEN d.datcollate::text
                        ELSE co.collcollate::text END AS collation_name
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_collation co ON co.oid = a.attcollation
            CROSS JOIN (SELECT datcollate FROM pg_database
                        WHERE datname = current_database()) d
            WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
            """,
            (oids,),
        )
        for row in cur.fetchall():
            tables[row["oid"]].columns[row["column_name"]] = ColumnInfo(
                name=row["column_name"],
                type_name=row["type_name"],
                base_type=row["base_type"],
                category=row["category"],
                collation=row["collation_name"] or None,
            )
        cur.execute(INDEXES_SQL + " WHERE x.indrelid = ANY(%s)", (oids,))
        for row in cur.fetchall():
            tables[row["table_oid"]].indexes.append(
                IndexInfo(
                    name=row["index_name"],
                    method=row["method"],
                    keys=tuple(row["key_columns"]),
                    descending=tuple(row["descending"]),
                    opclasses=tuple(row["opclass_names"]),
                    predicate=row["predicate_pretty"],
                    unique=row["is_unique"],
                    valid=row["is_usable"],
                    size_bytes=int(row["size_bytes"] or 0),
                )
            )
    return result


def catalog_partition_roots(conn: psycopg.Connection, relations: Iterable[Rel]) -> dict[Rel, int]:
    """Relation as written -> the oid of its partition tree's root (itself when not a
    partition); relations that do not exist are absent."""
    wanted = list(dict.fromkeys(relations))
    if not wanted:
        return {}
    with cursor(conn) as cur:
        cur.execute(
            """
            SELECT r.ord, COALESCE(pg_partition_root(c.oid)::oid, c.oid) AS root_oid
            FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS r(schema_name, rel_name, ord)
            JOIN pg_class c ON c.oid = to_regclass(
                CASE WHEN r.schema_name IS NULL THEN quote_ident(r.rel_name)
                     ELSE quote_ident(r.schema_name) || '.' || quote_ident(r.rel_name) END)
            """,
            ([r.schema for r in wanted], [r.name for r in wanted]),
        )
        return {wanted[ordinal - 1]: int(root) for ordinal, root in cur.fetchall()}


@contextmanager
def search_path_widened(
    conn: psycopg.Connection, relations: Iterable[RelationName]
) -> Iterator[dict[str, list[str]]]:
    """For the block, the session's search_path also reaches the schema of each unqualified
    name it does not find, where exactly one user schema has a relation of that name.

    Yields the names found in several schemas (name -> schemas), which stay unresolved.
    """
    names = sorted({r.name for r in relations if r.schema is None})
    rows = []
    if names:
        with cursor(conn) as cur:
            cur.execute(
                f"""
                SELECT w.rel_name, array_agg(DISTINCT n.nspname ORDER BY n.nspname)
                FROM unnest(%s::text[]) AS w(rel_name)
                JOIN pg_class c ON c.relname = w.rel_name AND c.relkind IN ('r', 'p', 'v', 'm')
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE to_regclass(quote_ident(w.rel_name)) IS NULL AND {USER_SCHEMA_SQL}
                GROUP BY w.rel_name
                """,
                (names,),
            )
            rows = cur.fetchall()
    reach = sorted({schemas[0] for _name, schemas in rows if len(schemas) == 1})
    ambiguous = {name: list(schemas) for name, schemas in rows if len(schemas) > 1}
    if not reach:
        yield ambiguous
        return
    with cursor(conn) as cur:
        cur.execute("SELECT current_setting('search_path')")
        (original,) = cur.fetchone()
        widened = ", ".join([original, *(sql.Identifier(s).as_string(conn) for s in reach)])
        cur.execute("SELECT set_config('search_path', %s, false)", (widened,))
    try:
        yield ambiguous
    finally:
        with cursor(conn) as cur:
            cur.execute("SELECT set_config('search_path', %s, false)", (original,))


def catalog_column_stats(
    conn: psycopg.Connection, columns: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], ColumnStats]:
    """(schema, table, column) -> its pg_stats row, for the columns ANALYZE has seen."""
    wanted = list(dict.fromkeys(columns))
    if not wanted:
        return {}
    with cursor(conn, row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT s.schemaname AS schema_name, s.tablename AS table_name,
                   s.attname AS column_name, s.null_frac, s.n_distinct,
                   array_to_json(s.most_common_vals) AS common_values,
                   s.most_common_freqs AS common_freqs,
                   array_to_json(s.histogram_bounds) AS histogram, s.avg_width
            FROM pg_stats s
            JOIN unnest(%s::text[], %s::text[], %s::text[]) AS w(schema_name, table_name, col)
              ON s.schemaname = w.schema_name AND s.tablename = w.table_name
             AND s.attname = w.col
            ORDER BY s.inherited
            """,
            ([w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted]),
        )
        result: dict[tuple[str, str, str], ColumnStats] = {}
        for row in cur.fetchall():
            key = (row["schema_name"], row["table_name"], row["column_name"])
            result.setdefault(
                key,
                ColumnStats(
                    null_frac=float(row["null_frac"] or 0.0),
                    n_distinct=float(row["n_distinct"] or 0.0),
                    common_values=tuple(row["common_values"] or ()),
                    common_freqs=tuple(row["common_freqs"] or ()),
                    histogram=tuple(row["histogram"] or ()),
                    avg_width=int(row["avg_width"] or 0),
                ),
            )
    return result


def catalog_heap_bytes(conn: psycopg.Connection, oids: Iterable[int]) -> int:
    """The heap size of these tables together (a partitioned one: its partitions'): what a
    storage budget given as a share of the audited tables is a share of."""
    wanted = sorted(set(oids))
    if not wanted:
        return 0
    with cursor(conn) as cur:
        cur.execute(
            """
            SELECT COALESCE(sum(pg_table_size(COALESCE(t.relid, w.oid))), 0)::bigint
                AS heap_bytes
            FROM unnest(%s::oid[]) AS w(oid)
            LEFT JOIN LATERAL pg_partition_tree(w.oid) AS t ON true
            WHERE t.relid IS NULL OR t.isleaf
            """,
            (wanted,),
        )
        return int(cur.fetchone()[0])


# Rows per 8 kB page assumed for a table never analyzed (reltuples = -1): a narrow row.
ROWS_PER_PAGE_GUESS = 50


def _row_estimate(reltuples: float, relpages: int) -> float:
    """reltuples, or a guess from the table's size when it was never analyzed or vacuumed."""
    if reltuples is not None and reltuples >= 0:
        return float(reltuples)
    return float(max(relpages, 0) * ROWS_PER_PAGE_GUESS)


def is_c_collation(collation: str | None) -> bool:
    """True where plain btree order is byte order, so LIKE 'prefix%' can use it directly."""
    return collation in ("C", "POSIX", "ucs_basic")
