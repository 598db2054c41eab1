"""What pg_qualstats saw: each predicate's real constants and selectivity, by queryid.

pg_stat_statements replaces every constant with $n; pg_qualstats samples the executed
predicates of the form `column OPERATOR constant` with the constant and the rows the
predicate kept and removed. Its queryid is pg_stat_statements' own, so the two join.
Counts are of sampled executions (pg_qualstats.sample_rate), and nothing survives a
restart of the server. It does not see a boolean column compared with a constant (the
planner turns `flag = true` into `flag`; `flag IS TRUE` it sees) nor a column inside a
function (`lower(email) = ...`).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .marker import cursor, execute

EXTENSION = "pg_qualstats"
# pg_qualstats keeps this many bytes of a constant's text (PGQS_CONSTANT_SIZE); a longer
# one comes back cut, so it cannot be used as a value.
CONSTANT_BYTES = 80
PRELOAD_LINE = "shared_preload_libraries = 'pg_stat_statements,pg_qualstats'"


class QualstatsState(StrEnum):
    """Whether an audit can read pg_qualstats on a target, or what stands in the way."""

    READY = "ready"
    NOT_AVAILABLE = "not_available"  # the server has no pg_qualstats package
    NOT_CREATED = "not_created"  # no CREATE EXTENSION in this database
    NOT_PRELOADED = "not_preloaded"  # created, but sampling only runs when preloaded
    DISABLED = "disabled"  # pg_qualstats.enabled = off
    NO_PRIVILEGE = "no_privilege"  # constants hidden from a role without pg_read_all_stats


@dataclass(frozen=True)
class QualstatsStatus:
    state: QualstatsState
    # What to run or set to get to READY; None when ready.
    fix: str | None
    # The fraction of executions sampled (pg_qualstats.sample_rate, resolved), when known.
    sample_rate: float | None = None
    schema: str | None = None

    @property
    def ready(self) -> bool:
        return self.state is QualstatsState.READY


class EvalType(StrEnum):
    """Where the executor evaluated the predicate (pg_qualstats' eval_type)."""

    FILTER = "f"  # after a scan: the rows it kept and removed are counted
    INDEX = "i"  # as an index condition: no row is removed by it


@dataclass(frozen=True)
class ConstantUse:
    """One constant a predicate was executed with."""

    # As pg_qualstats prints it, a literal with its cast ('open'::text); None for the
    # parameter of a generic plan (a prepared statement's later runs), whose value it never sees.
    value: str | None
    occurrences: int  # sampled executions of the query that used it
    rows_examined: int  # rows it was evaluated on as a filter
    rows_removed: int

    @property
    def whole(self) -> bool:
        """False when pg_qualstats cut the text (CONSTANT_BYTES) or saw no value: not
        usable as a value."""
        return self.value is not None and len(self.value.encode()) < CONSTANT_BYTES - 1

    @property
    def array(self) -> bool:
        """An IN list or = ANY (array): pg_qualstats counts one evaluation per element."""
        return self.value is not None and self.value.endswith("[]")

    @property
    def selectivity(self) -> float | None:
        """The fraction of examined rows the predicate kept. None when nothing says: it only
        ran as an index condition (nothing counted), or it is an array, or cut (whose
        counters mix rows and elements). pg_qualstats counts the rows the whole filter
        removed: predicates ANDed in one filter (a two-sided range) each read the
        conjunction's, the range's real width."""
        if self.rows_examined == 0 or self.array or not self.whole:
            return None
        return 1 - self.rows_removed / self.rows_examined


@dataclass(frozen=True)
class QualStat:
    """One predicate `schema.table.column operator constant` of one query."""

    queryid: int
    schema: str
    table: str
    column: str
    operator: str  # the operator's name: =, <, <=, ~~ ...
    constants: tuple[ConstantUse, ...]  # most used first
    eval_types: frozenset[EvalType]

    @property
    def occurrences(self) -> int:
        return sum(use.occurrences for use in self.constants)

    @property
    def selectivity(self) -> float | None:
        """Kept / examined rows over every constant with a selectivity of its own, or None."""
        counted = [use for use in self.constants if use.selectivity is not None]
        examined = sum(use.rows_examined for use in counted)
        if examined == 0:
            return None
        return 1 - sum(use.rows_removed for use in counted) / examined


def qualstats_status(conn: psycopg.Connection) -> QualstatsStatus:
    """Whether pg_qualstats is there to read on the database `conn` is connected to.

    Preloading is read from shared_preload_libraries where the role may (superuser,
    pg_read_all_settings), else from pg_qualstats' own settings, which a session of a
    server that did not preload the library does not have (call this before anything
    that loads it into the session). Enabled is the server's setting, whatever
    qualstats_pause did to this session."""
    row = (
        cursor(conn, row_factory=dict_row)
        .execute(
            """
        SELECT
            EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = %(ext)s) AS available,
            n.nspname AS schema,
            quote_ident(n.nspname) AS quoted_schema,
            has_schema_privilege(n.oid, 'USAGE') AS usable,
            CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
                 THEN %(ext)s = ANY (string_to_array(
                        replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
            END AS preloaded,
            (SELECT reset_val FROM pg_settings WHERE name = 'pg_qualstats.enabled') AS enabled,
            current_setting('pg_qualstats.sample_rate', true)::float8 AS sample_rate,
            pg_has_role('pg_read_all_stats', 'USAGE') AS sees_constants,
            quote_ident(current_user) AS role,
            quote_ident(current_database()) AS database
        FROM (SELECT) AS one
        LEFT JOIN pg_extension AS e ON e.extname = %(ext)s
        LEFT JOIN pg_namespace AS n ON n.oid = e.extnamespace""",
            {"ext": EXTENSION},
        )
        .fetchone()
    )
    schema, enabled, sample_rate, role = (
        row[key] for key in ("schema", "enabled", "sample_rate", "role")
    )
    preloaded = enabled is not None if row["preloaded"] is None else row["preloaded"]
    package = f"postgresql-{conn.info.server_version // 10000}-pg-qualstats"
    create = f"CREATE EXTENSION pg_qualstats in database {row['database']}"
    preload = f"add pg_qualstats to the server's {PRELOAD_LINE} and restart it"
    if not row["available"]:
        return QualstatsStatus(
            state=QualstatsState.NOT_AVAILABLE,
            fix=f"install the package {package} on the server (Debian), {preload}, then {create}",
        )
    if not preloaded:
        then = "" if schema else f", then {create}"
        return QualstatsStatus(state=QualstatsState.NOT_PRELOADED, fix=f"{preload}{then}")
    if schema is None:
        return QualstatsStatus(state=QualstatsState.NOT_CREATED, fix=create)
    if not row["usable"]:
        return QualstatsStatus(
            state=QualstatsState.NO_PRIVILEGE,
            fix=f"GRANT USAGE ON SCHEMA {row['quoted_schema']} TO {role} (pg_qualstats is there)",
            schema=schema,
        )
    if enabled != "on":
        return QualstatsStatus(
            state=QualstatsState.DISABLED, fix="set pg_qualstats.enabled = on", schema=schema
        )
    if not row["sees_constants"]:
        return QualstatsStatus(
            state=QualstatsState.NO_PRIVILEGE,
            fix=f"GRANT pg_read_all_stats TO {role} (pg_qualstats hides the constants otherwise)",
            sample_rate=sample_rate,
            schema=schema,
        )
    return QualstatsStatus(
        state=QualstatsState.READY, fix=None, sample_rate=sample_rate, schema=schema
    )


def qualstats_pause(conn: psycopg.Connection) -> None:
    """Stop pg_qualstats sampling this session's statements where it is loaded: it records
    the constants of every statement planned, a plain EXPLAIN included, under the
    workload's queryid, so the audit's own costing and verification values would read as
    the workload's next time."""
    execute(
        conn,
        "SELECT set_config('pg_qualstats.enabled', 'off', false) "
        "WHERE current_setting('pg_qualstats.enabled', true) IS NOT NULL",
    )


def qualstats_read(
    conn: psycopg.Connection, *, status: QualstatsStatus, queryids: Iterable[int] | None = None
) -> list[QualStat]:
    """Every `column operator constant` predicate pg_qualstats saw in this database, of
    the given queryids (all when None), heaviest first. Join predicates (a column on both
    sides) and predicates of queries pg_stat_statements gave no queryid are left out."""
    if not status.ready:
        raise ValueError(f"pg_qualstats cannot be read here ({status.state}): {status.fix}")
    wanted = None if queryids is None else [int(queryid) for queryid in queryids]
    rows = execute(
        conn,
        sql.SQL(
            """
        SELECT qs.queryid, n.nspname AS schema, c.relname AS table_name,
               a.attname AS column_name, o.oprname AS operator, qs.eval_type::text,
               qs.constvalue, sum(qs.occurences)::bigint AS occurrences,
               sum(qs.execution_count) FILTER (WHERE qs.eval_type = 'f')::bigint AS examined,
               sum(qs.nbfiltered) FILTER (WHERE qs.eval_type = 'f')::bigint AS removed
        FROM {schema}.pg_qualstats() AS qs
        JOIN pg_database AS d ON d.oid = qs.dbid AND d.datname = current_database()
        JOIN pg_class AS c ON c.oid = coalesce(qs.lrelid, qs.rrelid)
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_attribute AS a
          ON a.attrelid = c.oid AND a.attnum = coalesce(qs.lattnum, qs.rattnum)
        JOIN pg_operator AS o ON o.oid = qs.opno
        WHERE (qs.lrelid IS NULL) <> (qs.rrelid IS NULL)
          AND qs.queryid IS NOT NULL
          AND (%(queryids)s::bigint[] IS NULL OR qs.queryid = ANY (%(queryids)s::bigint[]))
        GROUP BY qs.queryid, n.nspname, c.relname, a.attname, o.oprname, qs.eval_type,
                 qs.constvalue"""
        ).format(schema=sql.Identifier(status.schema)),
        {"queryids": wanted},
    ).fetchall()
    return quals_group(rows)


def quals_group(rows: Iterable[tuple]) -> list[QualStat]:
    """One QualStat per (queryid, schema, table, column, operator) from pg_qualstats' rows
    of one constant and evaluation type each, most used constant first."""
    uses: dict[tuple, dict[str, list[int]]] = defaultdict(dict)
    evals: dict[tuple, set[EvalType]] = defaultdict(set)
    for (
        queryid,
        schema,
        table,
        column,
        operator,
        eval_type,
        value,
        count,
        examined,
        removed,
    ) in rows:
        key = (queryid, schema, table, column, operator)
        totals = uses[key].setdefault(value, [0, 0, 0])
        totals[0] += count
        totals[1] += examined or 0
        totals[2] += removed or 0
        evals[key].add(EvalType(eval_type))
    quals = [
        QualStat(
            queryid=key[0],
            schema=key[1],
            table=key[2],
            column=key[3],
            operator=key[4],
            constants=tuple(
                sorted(
                    (
                        ConstantUse(value=value, occurrences=c, rows_examined=e, rows_removed=r)
                        for value, (c, e, r) in values.items()
                    ),
                    key=lambda use: (-use.occurrences, use.value or ""),
                )
            ),
            eval_types=frozenset(evals[key]),
        )
        for key, values in uses.items()
    ]
    return sorted(quals, key=lambda q: (-q.occurrences, q.queryid, q.table, q.column, q.operator))
