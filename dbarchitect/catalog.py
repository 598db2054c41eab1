"""What the advisor needs to know about the tables a workload touches, in a few batch reads.

Tables are resolved the way the server resolves them (`to_regclass` under the session's
search_path), so an unqualified name in a query lands on the same table the query used.
pg_stat_statements does not record the search_path an application ran a query with:
`search_path_widened` reaches the one schema an otherwise unknown name is in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .analysis import Relation

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


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
        return self.schema in SYSTEM_SCHEMAS or self.schema.startswith("pg_toast")

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


def catalog_tables(
    conn: psycopg.Connection, relations: Iterable[Relation]
) -> dict[Relation, TableInfo]:
    """Relation as written in a query -> what the catalog says about it (missing: absent)."""
    wanted = list(dict.fromkeys(relations))
    if not wanted:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
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
        result: dict[Relation, TableInfo] = {}
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
        cur.execute(
            """
            SELECT i.indrelid AS oid, ic.relname AS index_name, am.amname AS method,
                   i.indisunique AS is_unique, i.indisvalid AND i.indisready AS is_valid,
                   ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
                         FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS keys,
                   ARRAY(SELECT (i.indoption[k - 1] & 1) = 1
                         FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS descending,
                   ARRAY(SELECT opc.opcname::text
                         FROM unnest(i.indclass::oid[]) WITH ORDINALITY AS u(opc_oid, ord)
                         JOIN pg_opclass opc ON opc.oid = u.opc_oid ORDER BY u.ord) AS opclasses,
                   pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
                   pg_relation_size(i.indexrelid) AS size_bytes
            FROM pg_index i
            JOIN pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_am am ON am.oid = ic.relam
            WHERE i.indrelid = ANY(%s)
            """,
            (oids,),
        )
        for row in cur.fetchall():
            tables[row["oid"]].indexes.append(
                IndexInfo(
                    name=row["index_name"],
                    method=row["method"],
                    keys=tuple(row["keys"]),
                    descending=tuple(row["descending"]),
                    opclasses=tuple(row["opclasses"]),
                    predicate=row["predicate"],
                    unique=row["is_unique"],
                    valid=row["is_valid"],
                    size_bytes=int(row["size_bytes"] or 0),
                )
            )
    return result


def catalog_partition_roots(
    conn: psycopg.Connection, relations: Iterable[Relation]
) -> dict[Relation, int]:
    """Relation as written -> the oid of its partition tree's root (itself when not a
    partition); relations that do not exist are absent."""
    wanted = list(dict.fromkeys(relations))
    if not wanted:
        return {}
    with conn.cursor() as cur:
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
    conn: psycopg.Connection, relations: Iterable[Relation]
) -> Iterator[dict[str, list[str]]]:
    """For the block, the session's search_path also reaches the schema of each unqualified
    name it does not find, where exactly one user schema has a relation of that name.

    Yields the names found in several schemas (name -> schemas), which stay unresolved.
    """
    names = sorted({r.name for r in relations if r.schema is None})
    rows = []
    if names:
        with conn.cursor() as cur:
            cur.execute(
                """
                SELECT w.rel_name, array_agg(DISTINCT n.nspname ORDER BY n.nspname)
                FROM unnest(%s::text[]) AS w(rel_name)
                JOIN pg_class c ON c.relname = w.rel_name AND c.relkind IN ('r', 'p', 'v', 'm')
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE to_regclass(quote_ident(w.rel_name)) IS NULL
                  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
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
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('search_path')")
        (original,) = cur.fetchone()
        widened = ", ".join([original, *(sql.Identifier(s).as_string(conn) for s in reach)])
        cur.execute("SELECT set_config('search_path', %s, false)", (widened,))
    try:
        yield ambiguous
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('search_path', %s, false)", (original,))


def catalog_column_stats(
    conn: psycopg.Connection, columns: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], ColumnStats]:
    """(schema, table, column) -> its pg_stats row, for the columns ANALYZE has seen."""
    wanted = list(dict.fromkeys(columns))
    if not wanted:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT s.schemaname AS schema_name, s.tablename AS table_name,
                   s.attname AS column_name, s.null_frac, s.n_distinct,
                   array_to_json(s.most_common_vals) AS common_values,
                   s.most_common_freqs AS common_freqs,
                   array_to_json(s.histogram_bounds) AS histogram
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
                ),
            )
    return result


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


def column_resolve(use, tables: dict[Relation, TableInfo]) -> tuple[TableInfo, str] | None:
    """The table a column of a query belongs to, by SQL's rules, or None when unknown.

    A qualified column names its relation; an unqualified one belongs to the innermost
    scope level where exactly one visible relation has a column of that name.
    """
    if use.relation is not None:
        info = tables.get(use.relation)
        if info is not None and use.column in info.columns:
            return info, use.column
        return None
    for level in use.candidates:
        owners = [
            tables[rel] for rel in level if rel in tables and use.column in tables[rel].columns
        ]
        if len({o.oid for o in owners}) == 1:
            return owners[0], use.column
        if owners:
            return None  # ambiguous: the server would have refused the query
    return None
