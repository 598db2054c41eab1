"""Collect: what the target database did since the previous audit, from pg_stat_statements.

The view is cumulative, so each audit stores the counters it read (QuerySnapshot) and the
next one subtracts them. A reset (of the whole view or of one entry) shows as a newer
`stats_reset`, a newer per-entry `stats_since` (PostgreSQL 17+) or counters that went down;
the delta is then the counters themselves, never a negative number.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.visitors import Skip, Visitor

from pgaccess.catalog import is_system_schema
from pgaccess.marker import MARKER
from pgaccess.pgss import Counters, pgss_read, pgss_stats_reset

logger = logging.getLogger(__name__)

# Statements that read or write rows; everything else (SET, BEGIN, EXPLAIN, DDL) is utility.
WORKLOAD_STATEMENTS = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)
MERGE_STATEMENT = getattr(ast, "MergeStmt", None)


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
    # Times the server's log saw it cancelled by statement_timeout (timed_out.py): such a
    # statement has no pg_stat_statements entry, its queryid is derived from its shape.
    timeouts: int = 0

    def served_detail(self) -> dict:
        """What a recommendation's details say of a query it serves (its impact is summed
        over these)."""
        return {
            "queryid": self.queryid,
            "calls": self.calls,
            "mean_ms": self.mean_time_ms,
            "timeouts": self.timeouts,
            "query": self.query,
        }


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
        return is_system_schema(schema)
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
