"""What the planner knows about columns taken together, and proof that a statistics object
fixes its estimate.

The planner multiplies the selectivities of a table's predicates as if its columns were
independent; for correlated ones (a zip code determines its city) the row estimate comes
out many times too low. A sample says how correlated the columns are, pg_statistic_ext
whether a statistics object covers them already, and `statistics_prove` creates one,
ANALYZEs those columns and re-plans the query inside a transaction it rolls back.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import permutations

import psycopg
from pglast import ast
from pglast.parser import ParseError, parse_sql
from psycopg import sql

from .marker import execute

# Rows sampled to measure correlation: what ANALYZE reads at default_statistics_target 100.
SAMPLE_ROWS = 30_000
# The sample is the same one from audit to audit, so their findings agree.
SAMPLE_SEED = 13
# EXPLAIN ANALYZE runs per side of a proof; the fastest counts (the first warms the cache).
PROOF_RUNS = 3


class StatisticsKind(StrEnum):
    """What a statistics object keeps (CREATE STATISTICS ... (kind, ...))."""

    DEPENDENCIES = "dependencies"
    NDISTINCT = "ndistinct"
    MCV = "mcv"


class StatisticsProofRefused(Exception):
    """The proof cannot run as this role; the message says as whom it can."""


@dataclass(frozen=True)
class Correlation:
    """How a table's columns go together in a sample of its rows."""

    sampled_rows: int
    distinct: tuple[int, ...]  # distinct values of each column, in the columns' order
    combinations: int  # distinct combinations of all the columns
    # The highest functional dependency degree between two of the columns: the share of
    # rows whose value of one column is the one most rows with their value of the other have.
    dependency: float
    # How many combinations a statistics object's MCV list keeps (default_statistics_target).
    mcv_entries: int

    @property
    def combination_share(self) -> float:
        """Distinct combinations over what independent columns would show (at most one
        per row): near 1 for independent columns, far below it for correlated ones."""
        independent = 1
        for count in self.distinct:
            independent *= max(count, 1)
        return self.combinations / max(min(independent, self.sampled_rows), 1)


@dataclass(frozen=True)
class ExistingStatistics:
    name: str  # schema-qualified, quoted where needed
    kinds: frozenset[str]  # pg_statistic_ext.stxkind letters: d, f, m, e


@dataclass(frozen=True)
class StatisticsProof:
    """A statistics object's effect on one query, measured and rolled back."""

    ddl: str
    estimated_before: float  # the table's scan with the worst estimate, before
    actual_before: float
    estimated_after: float  # and after
    actual_after: float
    ms_before: float
    ms_after: float
    plan_before: dict
    plan_after: dict


def plan_nodes(plan: object) -> Iterator[dict]:
    """Every node of EXPLAIN (FORMAT JSON) output, the top one first."""
    if isinstance(plan, list):
        plan = plan[0] if plan else {}
    if isinstance(plan, dict) and "Plan" in plan:
        plan = plan["Plan"]
    stack = [plan] if isinstance(plan, dict) else []
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.get("Plans", ())))


def rows_factor(estimated: float, actual: float) -> float:
    """How many times the estimate is off, either way (1 = right; zero rows count as one)."""
    estimated, actual = max(estimated, 1.0), max(actual, 1.0)
    return max(estimated / actual, actual / estimated)


def worst_scan(plan: object, table: str) -> tuple[float, float] | None:
    """(estimated, actual) rows per loop of the executed scan of `table` whose estimate is
    furthest off, or None when the plan executed none."""
    scans = [
        (float(node["Plan Rows"]), float(node["Actual Rows"]))
        for node in plan_nodes(plan)
        if node.get("Relation Name") == table and node.get("Actual Loops")
    ]
    return max(scans, key=lambda rows: rows_factor(*rows), default=None)


def columns_correlation(
    conn: psycopg.Connection,
    *,
    schema: str,
    table: str,
    columns: Sequence[str],
    sample_rows: int = SAMPLE_ROWS,
) -> Correlation:
    """Distinct values, distinct combinations and the strongest functional dependency of
    `columns` in a repeatable sample of about `sample_rows` rows (at most that many: a
    table never ANALYZEd, whose size the catalog does not know, is read no further)."""
    _attnums(conn, schema=schema, table=table, columns=columns)
    relation = sql.Identifier(schema, table)
    reltuples = execute(
        conn,
        "SELECT greatest(reltuples, 1) FROM pg_class WHERE oid = %s::regclass",
        [relation.as_string(conn)],
    ).fetchone()[0]
    percent = min(100.0, 100.0 * sample_rows / reltuples)
    names = [sql.Identifier(column) for column in columns]
    dependencies = sql.SQL(", ").join(
        sql.SQL(
            "(SELECT coalesce(sum(top), 0)::float8 FROM (SELECT max(n) AS top FROM "
            "(SELECT {a}, {b}, count(*) AS n FROM sample GROUP BY {a}, {b}) AS pairs "
            "GROUP BY {a}) AS groups) / greatest((SELECT count(*) FROM sample), 1)"
        ).format(a=a, b=b)
        for a, b in permutations(names, 2)
    )
    row = execute(
        conn,
        sql.SQL(
            """
        WITH sample AS MATERIALIZED (
            SELECT {columns} FROM {relation} TABLESAMPLE BERNOULLI (%s) REPEATABLE (%s)
            LIMIT %s
        )
        SELECT (SELECT count(*) FROM sample),
               {distinct},
               (SELECT count(*) FROM (SELECT DISTINCT {columns} FROM sample) AS combinations),
               greatest({dependencies}),
               current_setting('default_statistics_target')::int"""
        ).format(
            columns=sql.SQL(", ").join(names),
            relation=relation,
            distinct=sql.SQL(", ").join(
                sql.SQL("(SELECT count(DISTINCT {}) FROM sample)").format(name) for name in names
            ),
            dependencies=dependencies,
        ),
        [percent, SAMPLE_SEED, sample_rows],
    ).fetchone()
    rows = int(row[0])
    return Correlation(
        sampled_rows=rows,
        distinct=tuple(int(value) for value in row[1 : 1 + len(names)]),
        combinations=int(row[1 + len(names)]),
        dependency=float(row[-2]),
        mcv_entries=int(row[-1]),
    )


def statistics_existing(
    conn: psycopg.Connection, *, schema: str, table: str, columns: Sequence[str]
) -> list[ExistingStatistics]:
    """The statistics objects on `schema.table` that cover every one of `columns`."""
    attnums = _attnums(conn, schema=schema, table=table, columns=columns)
    rows = execute(
        conn,
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(s.stxname), s.stxkind::text[]
        FROM pg_statistic_ext AS s
        JOIN pg_namespace AS n ON n.oid = s.stxnamespace
        WHERE s.stxrelid = %s::regclass AND %s::int2[] <@ s.stxkeys::int2[]
        ORDER BY 1""",
        [sql.Identifier(schema, table).as_string(conn), attnums],
    ).fetchall()
    return [ExistingStatistics(name=name, kinds=frozenset(kinds)) for name, kinds in rows]


def statistics_ddl(
    *, schema: str, table: str, columns: Sequence[str], kinds: Sequence[StatisticsKind]
) -> sql.Composed:
    """CREATE STATISTICS of `kinds` on `columns`, named after the table and columns."""
    name = "_".join([table, *columns, "stx"])[:63]
    return sql.SQL("CREATE STATISTICS {name} ({kinds}) ON {columns} FROM {relation}").format(
        name=sql.Identifier(schema, name),
        kinds=sql.SQL(", ").join(sql.SQL(StatisticsKind(kind).value) for kind in kinds),
        columns=sql.SQL(", ").join(sql.Identifier(column) for column in columns),
        relation=sql.Identifier(schema, table),
    )


def statistics_prove(
    conn: psycopg.Connection,
    *,
    schema: str,
    table: str,
    columns: Sequence[str],
    kinds: Sequence[StatisticsKind] = tuple(StatisticsKind),
    query: str,
) -> StatisticsProof:
    """EXPLAIN ANALYZE `query` (one SELECT, its values written in) as the statistics stand,
    then with a statistics object of `kinds` on `columns` and those columns ANALYZEd again,
    all in a transaction rolled back: nothing stays, whatever happens. The table is held
    only in SHARE UPDATE EXCLUSIVE mode meanwhile: its reads and writes go on."""
    _refuse_unless_select(query)
    attnums = _attnums(conn, schema=schema, table=table, columns=columns)
    if len(attnums) < 2:
        raise ValueError("a statistics object needs two or more distinct columns")
    _refuse_unless_owner(conn, schema=schema, table=table)
    if not kinds:
        raise ValueError("a statistics object needs at least one kind")
    ddl = statistics_ddl(schema=schema, table=table, columns=columns, kinds=kinds)
    relation = sql.Identifier(schema, table)
    with conn.transaction(force_rollback=True):
        ms_before, plan_before = _timed_plan(conn, query)
        execute(conn, ddl)
        execute(
            conn,
            sql.SQL("ANALYZE {relation} ({columns})").format(
                relation=relation,
                columns=sql.SQL(", ").join(sql.Identifier(column) for column in columns),
            ),
        )
        ms_after, plan_after = _timed_plan(conn, query)
    before = worst_scan(plan_before, table) or (0.0, 0.0)
    after = worst_scan(plan_after, table) or (0.0, 0.0)
    return StatisticsProof(
        ddl=ddl.as_string(conn),
        estimated_before=before[0],
        actual_before=before[1],
        estimated_after=after[0],
        actual_after=after[1],
        ms_before=ms_before,
        ms_after=ms_after,
        plan_before=plan_before,
        plan_after=plan_after,
    )


def _timed_plan(conn: psycopg.Connection, query: str) -> tuple[float, dict]:
    """The fastest of PROOF_RUNS EXPLAIN (ANALYZE, FORMAT JSON) runs: its time and plan."""
    runs = []
    for _ in range(PROOF_RUNS):
        document = execute(
            conn, sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(sql.SQL(query))
        ).fetchone()[0]
        runs.append((float(document[0]["Execution Time"]), document[0]))
    return min(runs, key=lambda run: run[0])


def _refuse_unless_select(query: str) -> None:
    """EXPLAIN ANALYZE executes the statement: only one plain SELECT is timed."""
    try:
        statements = parse_sql(query)
    except ParseError as exc:
        raise ValueError(f"the query does not parse: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        raise ValueError("only one SELECT statement can be timed (EXPLAIN ANALYZE runs it)")
    if statements[0].stmt.intoClause is not None or statements[0].stmt.lockingClause:
        raise ValueError("a SELECT INTO or SELECT ... FOR UPDATE writes or locks; not timed")


def _refuse_unless_owner(conn: psycopg.Connection, *, schema: str, table: str) -> None:
    """CREATE STATISTICS and ANALYZE need the table's owner: say who that is up front."""
    owner, owns = execute(
        conn,
        """
        SELECT quote_ident(r.rolname), pg_has_role(c.relowner, 'USAGE')
        FROM pg_class AS c JOIN pg_roles AS r ON r.oid = c.relowner
        WHERE c.oid = %s::regclass""",
        [sql.Identifier(schema, table).as_string(conn)],
    ).fetchone()
    if not owns:
        raise StatisticsProofRefused(
            f"table {schema}.{table} belongs to {owner}: CREATE STATISTICS and ANALYZE need its "
            f"owner; prove it as {owner} or on a copy (DBARCHITECT_VERIFY=database:<target>)"
        )


def _attnums(
    conn: psycopg.Connection, *, schema: str, table: str, columns: Sequence[str]
) -> list[int]:
    """The attribute numbers of `columns`, distinct; ValueError naming any the table lacks."""
    if not columns:
        raise ValueError("no columns given")
    relation = sql.Identifier(schema, table).as_string(conn)
    if execute(conn, "SELECT to_regclass(%s)", [relation]).fetchone()[0] is None:
        raise ValueError(f"there is no table {relation}")
    rows = execute(
        conn,
        """
        SELECT attname, attnum FROM pg_attribute
        WHERE attrelid = %s::regclass AND attname = ANY (%s) AND attnum > 0
          AND NOT attisdropped""",
        [relation, list(columns)],
    ).fetchall()
    found = dict(rows)
    missing = [column for column in columns if column not in found]
    if missing:
        raise ValueError(f"table {schema}.{table} has no column {', '.join(missing)}")
    return sorted({found[column] for column in columns})
