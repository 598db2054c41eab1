"""Index health of the target, PgHero style: one function and one SQL statement per finding.

Each finding carries the DDL that fixes it. Indexes that enforce something (primary keys,
unique indexes, constraints) are never proposed for dropping, and neither is an index that
serves a foreign key (it keeps deletes on the referenced table from scanning this one).
"""

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from optimizations.models import OptimizationLog
from pgaccess.catalog import INDEXES_SQL, USER_SCHEMA_SQL
from pgaccess.ddl import IndexColumn, create_index_sql, drop_index_sql, index_name
from pgaccess.marker import cursor
from presentation.formatting import size_text

Kind = OptimizationLog.Kind
# The indexes the checks look at: every one outside the server's own schemas.
_INDEXES = f"{INDEXES_SQL} WHERE {USER_SCHEMA_SQL}"


@dataclass(frozen=True)
class HealthFinding:
    kind: Kind  # DROP_INDEX (unused or duplicate), INVALID_INDEX, FK_INDEX
    schema: str
    table: str
    index: str | None
    columns: list[str]
    ddl: str  # the fix: DROP INDEX CONCURRENTLY ... / CREATE INDEX CONCURRENTLY ...
    reason: str  # "unused: 0 scans since stats reset, 12 MB", "duplicate of x (prefix)", ...
    size_bytes: int
    fingerprint: str


def unused_indexes(
    conn: psycopg.Connection, *, max_scans: int = 0, min_size_bytes: int = 0
) -> list[HealthFinding]:
    """Indexes scanned at most `max_scans` times since the statistics were last reset."""
    query = f"""
        WITH idx AS ({_INDEXES})
        SELECT idx.*, s.idx_scan AS index_scans,
               COALESCE(d.stats_reset::date::text, 'the database was created') AS counting_since
        FROM idx
        JOIN pg_stat_user_indexes AS s ON s.indexrelid = idx.index_oid
        CROSS JOIN pg_stat_database AS d
        WHERE d.datname = current_database()
          AND s.idx_scan <= %(max_scans)s
          AND idx.is_valid
          AND NOT idx.enforces_constraint
          AND NOT idx.serves_foreign_key
          AND idx.size_bytes >= %(min_size_bytes)s
        ORDER BY idx.size_bytes DESC, idx.schema_name, idx.index_name"""
    params = {"max_scans": max_scans, "min_size_bytes": min_size_bytes}
    return [
        _drop_finding(
            conn,
            row,
            f"unused: {row['index_scans']} scans since {row['counting_since']}, "
            f"{size_text(row['size_bytes'])}; it still slows every write to {row['table_name']}",
        )
        for row in _rows(conn, query, params)
    ]


def duplicate_indexes(conn: psycopg.Connection) -> list[HealthFinding]:
    """Indexes whose key columns are a prefix of another index's on the same table.

    Same method, predicate, operator classes, collations and sort options; the covered one
    must enforce nothing. Of two identical droppable indexes, the newer one is reported.
    """
    query = f"""
        WITH idx AS ({_INDEXES})
        SELECT DISTINCT ON (a.index_oid) a.*, b.index_name AS covering_index,
               b.key_count = a.key_count AS identical
        FROM idx AS a
        JOIN idx AS b
          ON b.table_oid = a.table_oid
         AND b.index_oid <> a.index_oid
         AND b.method = a.method
         AND b.is_valid
         AND b.predicate IS NOT DISTINCT FROM a.predicate
         AND b.expressions IS NOT DISTINCT FROM a.expressions
         AND b.key_count >= a.key_count
         AND b.key_attnums[1:a.key_count] = a.key_attnums
         AND b.key_opclasses[1:a.key_count] = a.key_opclasses
         AND b.key_collations[1:a.key_count] = a.key_collations
         AND b.key_options[1:a.key_count] = a.key_options
        WHERE a.is_valid
          AND NOT a.enforces_constraint
          AND a.column_count = a.key_count
          AND a.method IN ('btree', 'hash', 'gist', 'brin', 'spgist')
          AND (b.key_count > a.key_count OR b.enforces_constraint
               OR a.index_oid > b.index_oid)
        ORDER BY a.index_oid, b.key_count DESC, b.index_oid"""
    findings = []
    for row in _rows(conn, query, {}):
        how = "identical to" if row["identical"] else "a prefix of"
        findings.append(
            _drop_finding(
                conn,
                row,
                f"duplicate: its key columns ({', '.join(row['key_columns'])}) are {how} "
                f"index {row['covering_index']}, which serves the same queries; "
                f"{size_text(row['size_bytes'])}",
            )
        )
    return findings


def invalid_indexes(conn: psycopg.Connection) -> list[HealthFinding]:
    """Indexes left invalid by a failed CREATE INDEX CONCURRENTLY (not ones being built now)."""
    query = f"""
        WITH idx AS ({_INDEXES})
        SELECT idx.* FROM idx
        WHERE NOT idx.is_valid
          AND NOT EXISTS (
              SELECT 1 FROM pg_stat_progress_create_index AS p
              WHERE p.index_relid = idx.index_oid
          )
        ORDER BY idx.schema_name, idx.index_name"""
    findings = []
    for row in _rows(conn, query, {}):
        base = _drop_finding(
            conn,
            row,
            "invalid: a CREATE INDEX CONCURRENTLY failed; it is never used for reads yet "
            f"every write maintains it ({size_text(row['size_bytes'])}). Drop it, then re-create "
            "it if it is still wanted (REINDEX INDEX CONCURRENTLY rebuilds it in place).",
        )
        findings.append(
            HealthFinding(
                **{
                    **base.__dict__,
                    "kind": Kind.INVALID_INDEX,
                    "fingerprint": f"invalid_index:{row['schema_name']}.{row['index_name']}",
                }
            )
        )
    return findings


def missing_fk_indexes(conn: psycopg.Connection, *, min_table_rows: int = 0) -> list[HealthFinding]:
    """Foreign keys with no valid index whose leading columns are the key's columns.

    Without one, every delete or key update on the referenced table scans this table.
    """
    query = f"""
        SELECT n.nspname AS schema_name, t.relname AS table_name, c.conname AS constraint_name,
               r.relname AS referenced_table, rows.estimate AS table_rows,
               ARRAY(
                   SELECT a.attname
                   FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, position)
                   JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                   ORDER BY k.position
               ) AS fk_columns
        FROM pg_constraint AS c
        JOIN pg_class AS t ON t.oid = c.conrelid
        JOIN pg_class AS r ON r.oid = c.confrelid
        JOIN pg_namespace AS n ON n.oid = t.relnamespace
        LEFT JOIN pg_stat_user_tables AS s ON s.relid = t.oid
        -- reltuples is -1 until the first ANALYZE: fall back to the live-row counter.
        CROSS JOIN LATERAL (
            SELECT CASE WHEN t.reltuples < 0 THEN COALESCE(s.n_live_tup, 0)
                        ELSE t.reltuples::bigint END AS estimate
        ) AS rows
        WHERE c.contype = 'f'
          AND {USER_SCHEMA_SQL}
          AND rows.estimate >= %(min_table_rows)s
          AND NOT EXISTS (
              SELECT 1 FROM pg_index AS x
              WHERE x.indrelid = c.conrelid
                AND x.indisvalid
                AND x.indpred IS NULL
                AND (x.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                AND (x.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey
          )
        ORDER BY n.nspname, t.relname, c.conname"""
    params = {"min_table_rows": min_table_rows}
    findings = []
    for row in _rows(conn, query, params):
        columns = list(row["fk_columns"])
        name = index_name(row["table_name"], columns, suffix="fk_idx")
        ddl = create_index_sql(
            schema=row["schema_name"],
            table=row["table_name"],
            keys=[IndexColumn(column) for column in columns],
            name=name,
            concurrent=True,
            if_not_exists=True,
        ).as_string(conn)
        findings.append(
            HealthFinding(
                kind=Kind.FK_INDEX,
                schema=row["schema_name"],
                table=row["table_name"],
                index=name,
                columns=columns,
                ddl=ddl,
                reason=f"foreign key {row['constraint_name']} ({', '.join(columns)}) -> "
                f"{row['referenced_table']} has no index starting with its columns: each "
                f"delete or key update on {row['referenced_table']} scans "
                f"{row['table_name']} (~{row['table_rows']} rows)",
                size_bytes=0,
                fingerprint="fk_index:btree:{}.{}({})".format(
                    row["schema_name"], row["table_name"], ",".join(columns)
                ),
            )
        )
    return findings


def health_check(
    conn: psycopg.Connection,
    *,
    min_unused_bytes: int = 0,
    min_table_rows: int = 0,
    skip_tables: Iterable[str] = (),
) -> list[HealthFinding]:
    """Every finding once: an index both unused and duplicate is one drop, with both reasons.

    `skip_tables` (bare names) are left out: the architect's own bookkeeping tables.
    """
    skip = frozenset(skip_tables)
    merged: dict[str, HealthFinding] = {}
    for finding in [
        *invalid_indexes(conn),
        *duplicate_indexes(conn),
        *unused_indexes(conn, min_size_bytes=min_unused_bytes),
        *missing_fk_indexes(conn, min_table_rows=min_table_rows),
    ]:
        if finding.table in skip:
            continue
        seen = merged.get(finding.fingerprint)
        if seen is None:
            merged[finding.fingerprint] = finding
        else:
            merged[finding.fingerprint] = HealthFinding(
                **{**seen.__dict__, "reason": f"{seen.reason}; {finding.reason}"}
            )
    # An invalid index is also a drop; report it once, as invalid.
    invalid = {f.index for f in merged.values() if f.kind == Kind.INVALID_INDEX}
    return [f for f in merged.values() if not (f.kind == Kind.DROP_INDEX and f.index in invalid)]


def _drop_finding(conn: psycopg.Connection, row: dict, reason: str) -> HealthFinding:
    ddl = drop_index_sql(row["schema_name"], row["index_name"])
    return HealthFinding(
        kind=Kind.DROP_INDEX,
        schema=row["schema_name"],
        table=row["table_name"],
        index=row["index_name"],
        columns=list(row["key_columns"]),
        ddl=ddl.as_string(conn),
        reason=reason,
        size_bytes=int(row["size_bytes"]),
        fingerprint=f"drop_index:{row['schema_name']}.{row['index_name']}",
    )


def _rows(conn: psycopg.Connection, query: str, params: dict) -> list[dict]:
    with cursor(conn, row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()
