"""Collect: what the target database did since the previous audit, from pg_stat_statements.

The view is cumulative, so each audit stores the counters it read (QuerySnapshot) and the
next one subtracts them. A reset (of the whole view or of one entry) shows as a newer
`stats_reset`, a newer per-entry `stats_since` (PostgreSQL 17+) or counters that went down;
the delta is then the counters themselves, never a negative number.
"""

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.visitors import Skip, Visitor
from psycopg import sql

logger = logging.getLogger(__name__)

# Every statement the architect runs starts with this comment, so its own queries can be
# told apart in pg_stat_statements (which records neither application_name nor the client).
MARKER = "/* dbarchitect */"

# Schemas and relation names that only describe the database itself.
CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
# Statements that read or write rows; everything else (SET, BEGIN, EXPLAIN, DDL) is utility.
WORKLOAD_STATEMENTS = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)
MERGE_STATEMENT = getattr(ast, "MergeStmt", None)


class CollectError(Exception):
    """The target's pg_stat_statements cannot be read; the message says what to do."""


@dataclass(frozen=True)
class QueryStat:
    queryid: int
    userid: int
    query: str  # normalized text from pg_stat_statements ($1, $2 placeholders)
    calls: int  # since the previous audit of this target (delta)
    total_time_ms: float  # delta
    mean_time_ms: float  # delta total / delta calls
    rows: int
    shared_blks_hit: int
    shared_blks_read: int
    # The raw cumulative counters as read, for the next audit's delta.
    cumulative_calls: int = 0
    cumulative_total_time_ms: float = 0.0
    cumulative_rows: int = 0
    cumulative_shared_blks_hit: int = 0
    cumulative_shared_blks_read: int = 0
    is_slow: bool = True
    tables: tuple[str, ...] = ()  # relations the statement names, as written


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


@dataclass(frozen=True)
class Thresholds:
    min_mean_ms: float
    min_calls: int
    min_total_share: float
    max_queries: int


@dataclass
class Collection:
    """What one collect phase hands on: every workload row, the slow ones, what it left out."""

    stats: list[QueryStat]  # every workload row (is_slow set), to store as snapshots
    slow: list[QueryStat]  # the ones to analyze, heaviest first, at most max_queries
    stats_reset: datetime | None
    rows_read: int = 0
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> count (own, utility...)


def collect_queries(
    conn: psycopg.Connection,
    *,
    previous: Mapping[tuple[int, int], Counters],
    previous_stats_reset: datetime | None,
    previous_started_at: datetime | None,
    thresholds: Thresholds,
    own_tables: Iterable[str] = (),
) -> Collection:
    """Read the view, drop the architect's own and catalog statements, subtract `previous`."""
    stats_reset = pgss_stats_reset(conn)
    rows = pgss_read(conn)
    full_reset = (
        stats_reset is not None
        and previous_stats_reset is not None
        and stats_reset > previous_stats_reset
    )
    baseline = {} if full_reset else previous
    own = frozenset(name.lower() for name in own_tables)
    left_out: dict[str, int] = {}
    stats = []
    for row in rows:
        reason, tables = workload_exclusion(row.query, own_tables=own)
        if reason:
            left_out[reason] = left_out.get(reason, 0) + 1
            continue
        before = baseline.get((row.queryid, row.userid))
        if (
            before
            and previous_started_at
            and row.stats_since
            and row.stats_since > previous_started_at
        ):
            before = None  # the entry was reset (or evicted and re-added) since then
        stats.append(replace(counters_delta(row, before), tables=tables))
    slow = select_slow(stats, thresholds=thresholds)
    slow_keys = {(stat.queryid, stat.userid) for stat in slow}
    stats = [replace(stat, is_slow=(stat.queryid, stat.userid) in slow_keys) for stat in stats]
    slow = [replace(stat, is_slow=True) for stat in slow]
    return Collection(
        stats=stats,
        slow=slow,
        stats_reset=stats_reset,
        rows_read=len(rows),
        left_out=left_out,
    )


def counters_delta(row: Counters, before: Counters | None) -> QueryStat:
    """The activity between two readings of one entry; a reset entry counts from zero."""
    if before is None or _went_down(row, before):
        base = Counters(row.queryid, row.userid, row.query, 0, 0.0, 0, 0, 0)
    else:
        base = before
    calls = row.calls - base.calls
    total = max(row.total_time_ms - base.total_time_ms, 0.0)
    return QueryStat(
        queryid=row.queryid,
        userid=row.userid,
        query=row.query,
        calls=calls,
        total_time_ms=total,
        mean_time_ms=total / calls if calls else 0.0,
        rows=row.rows - base.rows,
        shared_blks_hit=row.shared_blks_hit - base.shared_blks_hit,
        shared_blks_read=row.shared_blks_read - base.shared_blks_read,
        cumulative_calls=row.calls,
        cumulative_total_time_ms=row.total_time_ms,
        cumulative_rows=row.rows,
        cumulative_shared_blks_hit=row.shared_blks_hit,
        cumulative_shared_blks_read=row.shared_blks_read,
    )


def _went_down(row: Counters, before: Counters) -> bool:
    return (
        row.calls < before.calls
        or row.total_time_ms < before.total_time_ms
        or row.rows < before.rows
        or row.shared_blks_hit < before.shared_blks_hit
        or row.shared_blks_read < before.shared_blks_read
    )


def select_slow(stats: Sequence[QueryStat], *, thresholds: Thresholds) -> list[QueryStat]:
    """Slow = mean over the threshold, and either frequent or a big share of the total."""
    workload_ms = sum(stat.total_time_ms for stat in stats)
    slow = [
        stat
        for stat in stats
        if stat.calls > 0
        and stat.mean_time_ms >= thresholds.min_mean_ms
        and (
            stat.calls >= thresholds.min_calls
            or (workload_ms > 0 and stat.total_time_ms / workload_ms >= thresholds.min_total_share)
        )
    ]
    slow.sort(key=lambda stat: stat.total_time_ms, reverse=True)
    return slow[: thresholds.max_queries]


def workload_exclusion(
    query: str, *, own_tables: frozenset[str] = frozenset()
) -> tuple[str | None, tuple[str, ...]]:
    """Why a statement is not the application's workload (or None), and the tables it names."""
    if not query.strip():
        return "no_text", ()  # pg_stat_statements lost the text (its file was trimmed)
    if query.lstrip().startswith(MARKER):
        return "architect", ()
    try:
        statements = parse_sql(query)
    except ParseError:  # still workload: the advisor lists it as not costed, with why
        return None, ()
    if len(statements) != 1:
        return "utility", ()
    node = statements[0].stmt
    workload = WORKLOAD_STATEMENTS + ((MERGE_STATEMENT,) if MERGE_STATEMENT else ())
    if not isinstance(node, workload):
        return "utility", ()
    names = _RelationNames()
    names(node)
    relations = [(s, n) for s, n in names.relations if s is not None or n not in names.ctes]
    if not relations:
        return "no_table", ()
    user = [(schema, name) for schema, name in relations if not _is_catalog(schema, name)]
    if not user:
        return "catalog", ()
    if all(name.lower() in own_tables for _, name in user):
        return "architect", ()
    tables = tuple(dict.fromkeys(f"{schema}.{name}" if schema else name for schema, name in user))
    return None, tables


def _is_catalog(schema: str | None, name: str) -> bool:
    if schema is not None:
        return schema in CATALOG_SCHEMAS or schema.startswith("pg_")
    # Unqualified pg_* names resolve to pg_catalog first; pg_stat_statements and the
    # hypopg views live wherever their extension was installed.
    return name.startswith(("pg_", "hypopg"))


class _RelationNames(Visitor):
    """Every relation a statement names (CTE names excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.relations: list[tuple[str | None, str]] = []
        self.ctes: set[str] = set()

    def visit_CommonTableExpr(self, ancestors, node) -> None:
        self.ctes.add(node.ctename)

    def visit_LockingClause(self, ancestors, node):
        return Skip  # FOR UPDATE OF x names an alias, not a relation

    def visit_RangeVar(self, ancestors, node) -> None:
        self.relations.append((node.schemaname, node.relname))


def _pgss_extension(conn: psycopg.Connection) -> tuple[str, tuple[int, ...]]:
    row = conn.execute(
        f"""{MARKER}
        SELECT n.nspname AS extension_schema, e.extversion AS extension_version
        FROM pg_extension AS e
        JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements'"""
    ).fetchone()
    if row is None:
        raise CollectError(
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
    query = sql.SQL("{marker} SELECT stats_reset FROM {info}").format(
        marker=sql.SQL(MARKER), info=sql.Identifier(pgss_schema(conn), "pg_stat_statements_info")
    )
    with _pgss_readable():
        row = conn.execute(query).fetchone()
    return row[0] if row else None


@contextmanager
def _pgss_readable() -> Iterator[None]:
    """The view's own refusals (not preloaded, not allowed), as what to do about them."""
    try:
        yield
    except psycopg.errors.ObjectNotInPrerequisiteState as exc:
        raise CollectError(
            "pg_stat_statements must be loaded via shared_preload_libraries on the target "
            f"server (restart needed): {exc}"
        ) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CollectError(
            f"the audit role cannot read pg_stat_statements: GRANT pg_read_all_stats TO it ({exc})"
        ) from exc


def _refuse_hidden_statements(conn: psycopg.Connection, *, view: sql.Composable) -> None:
    """A role without pg_read_all_stats sees other roles' statements without text or
    queryid: an audit of what it sees would report a clean bill of health it never saw."""
    row = conn.execute(
        sql.SQL(
            """{marker}
            SELECT quote_ident(current_user) AS role, count(*) AS hidden
            FROM {view} AS s
            WHERE s.dbid = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
              AND s.queryid IS NULL"""
        ).format(marker=sql.SQL(MARKER), view=view)
    ).fetchone()
    role, hidden = row
    if hidden:
        raise CollectError(
            f"the audit role {role} cannot see {hidden} statements of other roles in "
            f"pg_stat_statements (their text is hidden): GRANT pg_read_all_stats TO {role}"
        )


def pgss_read(conn: psycopg.Connection) -> list[Counters]:
    """Every top-level entry of the current database, cumulative counters."""
    version = pgss_version(conn)
    since = sql.SQL("s.stats_since") if version >= (1, 11) else sql.SQL("NULL::timestamptz")
    toplevel = sql.SQL("AND s.toplevel") if version >= (1, 9) else sql.SQL("")
    total = (
        sql.SQL("s.total_exec_time + s.total_plan_time")
        if version >= (1, 8)
        else sql.SQL("s.total_time")
    )
    query = sql.SQL(
        """{marker}
        SELECT s.queryid, s.userid, s.query, s.calls, {total} AS total_time_ms,
               s.rows, s.shared_blks_hit, s.shared_blks_read, {since} AS stats_since
        FROM {view} AS s
        WHERE s.dbid = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
          AND s.queryid IS NOT NULL
          {toplevel}"""
    ).format(
        marker=sql.SQL(MARKER),
        total=total,
        since=since,
        view=sql.Identifier(pgss_schema(conn), "pg_stat_statements"),
        toplevel=toplevel,
    )
    with _pgss_readable():
        rows = conn.execute(query).fetchall()
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
