"""Advise: from slow queries to the set of indexes that cuts the workload's cost most.

Reads top to bottom like the audit it serves: analyze every query, look its tables up in
the catalog, cost it (generic plan, see generic_plan.py), generate candidate indexes per
query (candidates.py), let the planner say which it would use with all of them present
(HypoPG), then choose greedily the indexes that cut calls x cost the most, re-costing as
indexes interact, and drop any that a wider chosen index makes redundant. GIN, which
HypoPG cannot build, is estimated from the plan and a sampled selectivity, and left for
verification to prove with a real build.

Nothing is left behind: the costing runs in one transaction rolled back at the end, and
HypoPG's hypothetical indexes (which live in the session, not the transaction) are reset
before and after.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import psycopg
from psycopg import sql

from pgaccess.extensions import hypopg_problem

from . import analysis as an
from . import candidates as cd
from . import generic_plan as gp
from . import gin
from .candidates import Candidate
from .catalog import (
    ColumnStats,
    TableInfo,
    catalog_column_stats,
    catalog_partition_roots,
    catalog_tables,
    column_resolve,
    search_path_widened,
)
from .collector import MARKER

logger = logging.getLogger(__name__)

# A chosen index is dropped again when removing it costs the workload less than this share
# of what it saved (a wider index chosen later does its job).
REDUNDANCY_TOLERANCE = 0.05
# ...or less than this share of what the queries it changes cost without any new index:
# it only polishes a plan the others made (a 15,000-row dimension next to the fact
# table's index), which is not worth its upkeep.
MIN_CONTRIBUTION = 0.1
# Planner cost charged per 8 kB page of a new index, per audit window: its upkeep and cache.
SIZE_COST_PER_PAGE = 0.1
# Planner cost charged per row the workload wrote to a table in the audit window, per new
# index on it: each written row adds an entry (a leaf page dirtied, a WAL record). Judged
# from the workload's own INSERT / UPDATE / DELETE in the same window as the reads it
# speeds up, not from lifetime counters a one-off bulk load inflates.
INDEX_WRITE_COST = 1.0
# Candidates within this share of the best gain compete on gain per byte instead.
NEAR_TIE = 0.1
# The most indexes one audit recommends.
MAX_RECOMMENDATIONS = 30
# How views are expanded: their definition is analyzed like a sub-select, this deep.
MAX_VIEW_DEPTH = 3
BTREE_METHODS = ("btree",)
COSTING = "dbarchitect_costing"  # the savepoint a failed EXPLAIN rolls back to


class AdvisorError(Exception):
    """The target cannot be advised on at all; the message says what to do."""


class QueryLike(Protocol):
    """What advise reads of a collector.QueryStat."""

    queryid: int
    query: str
    calls: int


class WorkloadLike(QueryLike, Protocol):
    """A statement of the audit window with the rows it returned or wrote (QueryStat)."""

    rows: int


@dataclass(frozen=True)
class SkippedQuery:
    queryid: int
    query: str
    reason: str


@dataclass(frozen=True)
class RewriteHint:
    queryid: int
    query: str
    # "offset_pagination", "function_on_column", "ilike", "substring", "not_distinct",
    # "hidden_constant", "text_search_config", "columns_expression", "select_star"
    kind: str
    message: str


@dataclass
class IndexRecommendation:
    schema: str
    table: str
    name: str
    columns: list[str]
    method: str
    where: str | None
    ddl: str
    fingerprint: str
    queryids: list[int]
    cost_before: float
    cost_after: float
    per_query: dict[int, tuple[float, float]]
    size_bytes: int
    needs_real_build: bool
    plan_before: dict | None
    plan_after: dict | None
    # queryid -> the statement with values in place that was costed, where the advisor
    # costed one (a LIKE prefix, a rare value): the verifier measures the same case.
    statements: dict[int, str] = field(default_factory=dict)
    # On a partitioned table: PostgreSQL cannot build the index CONCURRENTLY there.
    partitioned: bool = False
    # The text search configuration written into a to_tsvector key: pg_stat_statements hid
    # the query's own, so the index serves the query only if the application uses this one.
    assumed_text_search_config: str | None = None

    @property
    def cost_reduction(self) -> float:
        if self.cost_before <= 0:
            return 0.0
        return 1.0 - self.cost_after / self.cost_before


@dataclass
class Advice:
    recommendations: list[IndexRecommendation] = field(default_factory=list)
    rewrites: list[RewriteHint] = field(default_factory=list)
    skipped: list[SkippedQuery] = field(default_factory=list)
    query_costs: dict[int, float] = field(default_factory=dict)
    analyses: dict[int, an.QueryAnalysis] = field(default_factory=dict)


# --- the advisor ------------------------------------------------------------------------


def advise(
    conn: psycopg.Connection,
    queries: Sequence[QueryLike],
    *,
    min_table_rows: int,
    min_cost_reduction: float,
    workload: Sequence[WorkloadLike] = (),
) -> Advice:
    """Recommend indexes for `queries`; every query is costed or listed in `skipped`.

    `workload`: every statement of the audit window, slow or not (default: `queries`); its
    INSERT / UPDATE / DELETE say how much each table is written, which every new index
    there must pay for.
    """
    advice = Advice()
    queries = list({q.queryid: q for q in queries}.values())
    # Analyze: the parser's view of each query; unparseable ones are skipped with why.
    for query in queries:
        analysis = an.analyze_query(query.query)
        advice.analyses[query.queryid] = analysis
        if not analysis.ok:
            advice.skipped.append(SkippedQuery(query.queryid, query.query, analysis.error))
    live = [q for q in queries if advice.analyses[q.queryid].ok]
    if not live:
        return advice
    with conn.cursor() as cur:
        cur.execute(
            f"{MARKER} SELECT current_setting('server_version_num')::int, "
            "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')"
        )
        server_version, has_trigram = cur.fetchone()
    hypopg = hypopg_problem(conn)
    if hypopg is not None:
        raise AdvisorError(hypopg)
    relations = {rel for q in live for rel in advice.analyses[q.queryid].relations}
    with search_path_widened(conn, relations) as ambiguous:
        # Catalog: tables (views expanded into their definition), columns, indexes, stats.
        tables, views = _catalog_with_views(conn, [advice.analyses[q.queryid] for q in live])
        stats = catalog_column_stats(conn, _stat_columns(advice.analyses.values(), tables))
        context = _Context(conn, tables, stats, server_version, min_table_rows, min_cost_reduction)
        context.views = views
        context.ambiguous = ambiguous
        context.trigram = has_trigram
        context.text_search_config = gp.text_search_config(conn)
        context.rows_written = _rows_written(conn, workload or queries, tables)
        context.unreadable = _unreadable_tables(conn, tables)
        _hypopg_reset(conn)
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                conn.execute(sql.SQL("SAVEPOINT {}").format(sql.Identifier(COSTING)))
                _advise_costed(context, live, advice)
        finally:
            _hypopg_reset(conn)
            gp.prepared_statements_forget(conn)
    return advice


def _advise_costed(ctx: _Context, queries: list[QueryLike], advice: Advice) -> None:
    resolve = ctx.resolve
    # Cost every query as it runs today (its generic plan, or a representative custom one).
    for query in queries:
        analysis = advice.analyses[query.queryid]
        try:
            form, cost = gp.costing_form(
                ctx.conn,
                analysis,
                resolve=resolve,
                stats=ctx.stats,
                server_version=ctx.server_version,
            )
        except gp.NotCostable as exc:
            reason = (
                _ambiguous_reason(ctx, analysis)
                or _unreadable_reason(ctx, analysis)
                or f"could not be planned: {exc}"
            )
            advice.skipped.append(SkippedQuery(query.queryid, query.query, reason))
            continue
        ctx.forms[query.queryid] = form
        ctx.analyses[query.queryid] = analysis
        ctx.base[query.queryid] = cost
        ctx.calls[query.queryid] = max(int(query.calls), 1)
        advice.query_costs[query.queryid] = cost.total
    costed = [q for q in queries if q.queryid in ctx.forms]
    # Candidates per query: only tables big enough, never system catalogs, never a key an
    # existing valid index already leads with.
    for query in costed:
        ctx.interesting[query.queryid] = cd.interesting_keys(ctx, advice.analyses[query.queryid])
        for candidate in cd.candidates_for(ctx, advice.analyses[query.queryid]):
            table = ctx.by_oid[candidate.table_oid]
            if cd.is_covered(candidate, table):
                continue
            ctx.candidate_queries[candidate].add(query.queryid)
    advice.rewrites.extend(_rewrites(ctx, costed, advice))
    btree = [c for c in ctx.candidate_queries if c.method in BTREE_METHODS]
    gin_candidates = [c for c in ctx.candidate_queries if c.method not in BTREE_METHODS]
    # What-if, all at once: with every candidate present, the planner picks its favourites.
    options = _options_from_all_at_once(ctx, btree)
    options.extend(_gin_options(ctx, gin_candidates))
    # Greedy choice on the workload's cost, re-costing as indexes interact; then prune.
    chosen = _choose(ctx, options)
    chosen = _prune(ctx, chosen)
    advice.recommendations.extend(_recommendations(ctx, chosen))


def _ambiguous_reason(ctx: _Context, analysis: an.QueryAnalysis) -> str | None:
    """Why a query naming a table that several schemas hold cannot be planned."""
    for relation in analysis.relations:
        schemas = ctx.ambiguous.get(relation.name) if relation.schema is None else None
        if schemas:
            return (
                f"could not be planned: {relation.name} is not on the audit's search_path "
                f"and schemas {', '.join(schemas)} each have one; pg_stat_statements does "
                "not record the search_path the application ran it with: set the audit "
                "role's search_path to the application's (ALTER ROLE ... SET search_path)"
            )
    return None


def _unreadable_reason(ctx: _Context, analysis: an.QueryAnalysis) -> str | None:
    """Why a query on a table the audit's role may not read cannot be planned."""
    found = {
        ctx.unreadable[info.oid]
        for relation in analysis.relations
        if (info := ctx.tables.get(relation)) is not None and info.oid in ctx.unreadable
    }
    if not found:
        return None
    role = next(iter(found))[0]
    names = ", ".join(sorted(table for _, table in found))
    return (
        f"could not be planned: role {role} has no SELECT privilege on {names}, which "
        f"EXPLAIN needs even without running the query; GRANT SELECT ON {names} TO {role}"
    )


def _unreadable_tables(
    conn: psycopg.Connection, tables: dict[an.Relation, TableInfo]
) -> dict[int, tuple[str, str]]:
    """The tables the session's role has no SELECT on: oid -> (role, schema.table), quoted."""
    with conn.cursor() as cur:
        cur.execute(
            f"""{MARKER}
            SELECT c.oid, quote_ident(current_user), format('%%I.%%I', n.nspname, c.relname)
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.oid = ANY(%s::oid[]) AND NOT has_table_privilege(c.oid, 'SELECT')""",
            (sorted({info.oid for info in tables.values()}),),
        )
        return {oid: (role, table) for oid, role, table in cur.fetchall()}


# --- catalog ----------------------------------------------------------------------------


class _Context:
    def __init__(self, conn, tables, stats, server_version, min_table_rows, min_reduction):
        self.conn = conn
        self.tables: dict[an.Relation, TableInfo] = tables
        self.by_oid: dict[int, TableInfo] = {t.oid: t for t in tables.values()}
        self.stats: dict[tuple[str, str, str], ColumnStats] = stats
        self.server_version = server_version
        self.min_table_rows = min_table_rows
        self.min_reduction = min_reduction
        self.forms: dict[int, gp.CostForm] = {}
        self.analyses: dict[int, an.QueryAnalysis] = {}
        self.base: dict[int, gp.PlanCost] = {}
        self.calls: dict[int, int] = {}
        self.interesting: dict[int, dict[int, set[str]]] = {}
        self.candidate_queries: dict[Candidate, set[int]] = defaultdict(set)
        self.hypo: dict[Candidate, tuple[int, int]] = {}  # candidate -> (oid, size bytes)
        self.views: dict[int, an.QueryAnalysis] = {}  # a view's oid -> its definition
        self.ambiguous: dict[str, list[str]] = {}  # unqualified name -> schemas holding it
        self.unreadable: dict[int, tuple[str, str]] = {}  # oid -> (role, table) without SELECT
        self.trigram = False  # pg_trgm is installed on the target
        self.text_search_config = "simple"  # the target's default_text_search_config
        self.hypo_oids: dict[int, Candidate] = {}  # every HypoPG oid -> its candidate
        self.stand_in_oids: set[int] = set()  # HypoPG oids of partial indexes' stand-ins
        self.failed: set[Candidate] = set()
        self.rows_written: dict[int, float] = {}  # table oid -> rows the workload wrote
        self.selectivity: dict[tuple[int, str, str], float | None] = {}  # sampled, for GIN
        self.hypo_sizes: dict[Candidate, int] = {}
        self.chosen_members: set[Candidate] = set()
        self.current: dict[int, float] = {}

    def resolve(self, use: an.ColumnUse) -> tuple[TableInfo, str] | None:
        found = column_resolve(use, self.tables)
        if found is None:
            return None
        info, column = found
        if info.kind == "v":
            return _through_view(self, info, column)
        return found

    def column_stats(self, info: TableInfo, column: str) -> ColumnStats | None:
        return self.stats.get((info.schema, info.name, column))


def _catalog_with_views(
    conn: psycopg.Connection, analyses: list[an.QueryAnalysis]
) -> tuple[dict[an.Relation, TableInfo], dict[int, an.QueryAnalysis]]:
    """Look every relation up; a view's definition joins the query as extra scopes.

    Returns the tables by name as written, and each expanded view's analysis by oid.
    """
    tables: dict[an.Relation, TableInfo] = {}
    pending = {rel for a in analyses for rel in a.relations}
    expanded: dict[int, an.QueryAnalysis] = {}
    for _depth in range(MAX_VIEW_DEPTH + 1):
        new = catalog_tables(conn, [r for r in pending if r not in tables])
        tables.update(new)
        pending = set()
        for info in {t.oid: t for t in new.values()}.values():
            if info.kind == "v" and info.view_definition and info.oid not in expanded:
                view = an.analyze_query(info.view_definition)
                if view.ok:
                    expanded[info.oid] = view
                    pending.update(view.relations)
        if not pending:
            break
    done: set[int] = set()  # views whose own nested views are expanded already
    for analysis in analyses:
        _expand_views(analysis, tables, expanded, 0, done)
    return tables, expanded


def _expand_views(analysis, tables, expanded, depth, done: set[int]) -> None:
    """Append each view's scopes to the query, with the query's filters on the view's
    columns carried into the view's own SELECT (so they combine into composite keys)."""
    if depth > MAX_VIEW_DEPTH:
        return
    for scope in list(analysis.scopes):
        for relation in scope.relations:
            info = tables.get(relation)
            if info is None or info.oid not in expanded:
                continue
            view = expanded[info.oid]
            if info.oid not in done:
                done.add(info.oid)
                _expand_views(view, tables, expanded, depth + 1, done)
            main = next((v for v in view.scopes if v.kind == "select"), None)
            for view_scope in view.scopes:
                merged = _copy_scope(view_scope, kind="view")
                if view_scope is main:
                    _carry_into_view(scope, merged, info, tables)
                analysis.scopes.append(merged)


def _carry_into_view(outer: an.Scope, inner: an.Scope, view: TableInfo, tables) -> None:
    def mapped(use: an.ColumnUse) -> an.ColumnUse | None:
        found = column_resolve(use, tables)
        if found is None or found[0].oid != view.oid:
            return None
        return inner.outputs.get(found[1])

    for predicate in outer.predicates:
        column = mapped(predicate.column)
        if column is not None:
            inner.predicates.append(replace(predicate, column=column))
    sort = [mapped(key.column) if key.column is not None else None for key in outer.order_by]
    if outer.order_by and all(sort):
        inner.order_by = [
            replace(key, column=column) for key, column in zip(outer.order_by, sort, strict=True)
        ]
        inner.limit = outer.limit


def _copy_scope(scope: an.Scope, kind: str) -> an.Scope:
    return an.Scope(
        relations=list(scope.relations),
        predicates=list(scope.predicates),
        joins=list(scope.joins),
        order_by=list(scope.order_by),
        group_by=list(scope.group_by),
        limit=scope.limit,
        offset=scope.offset,
        select_star=scope.select_star,
        correlated=scope.correlated,
        kind=kind,
        outputs=dict(scope.outputs),
    )


def _through_view(ctx: _Context, view: TableInfo, column: str) -> tuple[TableInfo, str] | None:
    """A view's output column that is a plain column of one of its tables: that column."""
    analysis = ctx.views.get(view.oid)
    use = None
    for scope in analysis.scopes if analysis is not None else ():
        if scope.kind == "select" and column in scope.outputs:
            use = scope.outputs[column]
            break
    if use is None:
        return None
    found = column_resolve(use, ctx.tables)
    if found is None or found[0].kind == "v":
        return None
    return found


def _stat_columns(analyses: Iterable[an.QueryAnalysis], tables) -> list[tuple[str, str, str]]:
    wanted = []
    for analysis in analyses:
        if not analysis.ok:
            continue
        uses = [p.column for s in analysis.scopes for p in s.predicates]
        uses += [j.left for s in analysis.scopes for j in s.joins]
        uses += [j.right for s in analysis.scopes for j in s.joins]
        uses += [u.column for u in analysis.params.values() if u.column is not None]
        for use in uses:
            found = column_resolve(use, tables)
            if found is not None:
                wanted.append((found[0].schema, found[0].name, found[1]))
    return wanted


# --- costing ----------------------------------------------------------------------------


def _hypopg_reset(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute(f"{MARKER} SELECT hypopg_reset()")


def _hypo_create(ctx: _Context, candidate: Candidate, *, stand_in: bool = True) -> bool:
    """Create the candidate in HypoPG (a partial one with its stand-in); False if refused."""
    if candidate in ctx.hypo:
        return True
    if candidate in ctx.failed:
        return False
    created = []
    shapes = [candidate, cd.costing_stand_in(candidate)] if stand_in else [candidate]
    try:
        for shape in dict.fromkeys(shapes):
            created.append(_hypopg_create(ctx, shape))
    except psycopg.Error as exc:
        logger.info("hypothetical index %s refused: %s", candidate, exc.diag.message_primary)
        for oid, _size in created:
            _hypopg_drop(ctx, oid)
        ctx.failed.add(candidate)
        return False
    ctx.hypo[candidate] = created[0]
    ctx.hypo_oids.update({oid: candidate for oid, _size in created})
    ctx.stand_in_oids.update(oid for oid, _size in created[1:])
    return True


def _hypopg_create(ctx: _Context, candidate: Candidate) -> tuple[int, int]:
    statement = cd.index_statement(ctx.by_oid[candidate.table_oid], candidate)
    statement = statement.as_string(ctx.conn)
    with ctx.conn.transaction(savepoint_name="dbarchitect_hypo"), ctx.conn.cursor() as cur:
        cur.execute(
            f"{MARKER} SELECT h.indexrelid, hypopg_relation_size(h.indexrelid) "
            "FROM hypopg_create_index(%s) AS h",
            (statement,),
        )
        oid, size = cur.fetchone()
    return int(oid), int(size)


def _hypopg_drop(ctx: _Context, oid: int) -> None:
    with ctx.conn.cursor() as cur:
        cur.execute(f"{MARKER} SELECT hypopg_drop_index(%s)", (oid,))


def _hypo_drop(ctx: _Context, candidate: Candidate) -> None:
    if ctx.hypo.pop(candidate, None) is None:
        return
    for oid in [o for o, c in ctx.hypo_oids.items() if c == candidate]:
        del ctx.hypo_oids[oid]
        ctx.stand_in_oids.discard(oid)
        _hypopg_drop(ctx, oid)


def _cost(ctx: _Context, queryid: int) -> gp.PlanCost | None:
    """The query's plan now. A failure rolls back to the costing savepoint (set once, kept:
    a savepoint per EXPLAIN would double the round trips of the whole advisor)."""
    try:
        cost = gp.plan_cost(ctx.conn, ctx.forms[queryid], server_version=ctx.server_version)
    except psycopg.Error as exc:
        logger.info("re-costing query %s failed: %s", queryid, exc.diag.message_primary)
        with ctx.conn.cursor() as cur:
            cur.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(COSTING)))
        return None
    # A stand-in serves only the queries that carry its partial predicate; for any other
    # query, plan again without it.
    foreign = [
        oid
        for oid in _used_indexes(cost.plan) & ctx.stand_in_oids
        if queryid not in ctx.candidate_queries.get(ctx.hypo_oids[oid], ())
    ]
    if not foreign:
        return cost
    owners = [ctx.hypo_oids.pop(oid) for oid in foreign]
    for oid in foreign:
        ctx.stand_in_oids.discard(oid)
        _hypopg_drop(ctx, oid)
    try:
        return _cost(ctx, queryid)
    finally:
        for owner in owners:
            oid, _size = _hypopg_create(ctx, cd.costing_stand_in(owner))
            ctx.hypo_oids[oid] = owner
            ctx.stand_in_oids.add(oid)


def _used_indexes(plan: dict) -> set[int]:
    """Oids of the hypothetical indexes a plan uses ("<oid>btree_..." index names)."""
    used = set()
    stack = [plan]
    while stack:
        node = stack.pop()
        name = node.get("Index Name")
        if name and name.startswith("<") and ">" in name:
            digits = name[1 : name.index(">")]
            if digits.isdigit():
                used.add(int(digits))
        stack.extend(node.get("Plans", ()))
    return used


@dataclass
class _Option:
    members: frozenset[Candidate]
    queries: set[int]  # the queries whose cost it may change
    size_bytes: int = 0
    estimated: dict[int, float] | None = None  # GIN: estimated costs (HypoPG cannot build)
    plans: dict[int, dict] = field(default_factory=dict)


def _relevant_queries(ctx: _Context, candidate: Candidate) -> set[int]:
    lead = candidate.keys[0].text
    return {
        qid
        for qid, per_table in ctx.interesting.items()
        if lead in per_table.get(candidate.table_oid, ())
    } | ctx.candidate_queries.get(candidate, set())


def _options_from_all_at_once(ctx: _Context, candidates: list[Candidate]) -> list[_Option]:
    """Create every candidate, plan every query once, keep what the planner reached for.

    Each index a plan uses is an option; so is the whole set one query uses, since a join
    may need two indexes before either pays on its own.
    """
    for candidate in candidates:
        _hypo_create(ctx, candidate, stand_in=False)
    by_oid = dict(ctx.hypo_oids)
    per_query_used: dict[int, frozenset[Candidate]] = {}
    for qid in ctx.forms:
        if not any(qid in ctx.candidate_queries[c] for c in ctx.hypo):
            continue
        cost = _cost(ctx, qid)
        if cost is None or cost.total > _target(ctx, qid):
            continue
        used = frozenset(by_oid[o] for o in _used_indexes(cost.plan) if o in by_oid)
        if used:
            per_query_used[qid] = used
    sizes = {c: size for c, (_oid, size) in ctx.hypo.items()}
    for candidate in list(ctx.hypo):
        _hypo_drop(ctx, candidate)
    options: dict[frozenset[Candidate], _Option] = {}
    for candidate, size in sizes.items():
        # Every candidate on its own too: the planner breaks near ties (a partial index and
        # a plain one, say) one way, the workload's cost per byte may prefer the other.
        relevant = _relevant_queries(ctx, candidate)
        options[frozenset([candidate])] = _Option(frozenset([candidate]), relevant, size)
    for qid, used in per_query_used.items():
        for member in [frozenset([c]) for c in used] + ([used] if len(used) > 1 else []):
            option = options.get(member)
            if option is None:
                relevant = set().union(*(_relevant_queries(ctx, c) for c in member))
                option = _Option(member, relevant, sum(sizes[c] for c in member))
                options[member] = option
            option.queries.add(qid)
    return list(options.values())


def _target(ctx: _Context, qid: int) -> float:
    """The cost a query must get down to for an index to count as serving it."""
    return ctx.base[qid].total * (1.0 - ctx.min_reduction)


def _gin_options(ctx: _Context, candidates: list[Candidate]) -> list[_Option]:
    """HypoPG cannot build GIN: estimate from the baseline plan and a sampled selectivity."""
    options = []
    for candidate in candidates:
        info = ctx.by_oid[candidate.table_oid]
        estimated = {}
        for qid in ctx.candidate_queries[candidate]:
            estimate = gin.estimated_cost(ctx.base[qid].plan, info, _gin_rows(ctx, candidate, qid))
            if estimate is not None and estimate <= _target(ctx, qid):
                estimated[qid] = estimate
        if estimated:
            size = gin.estimated_size(info)
            options.append(
                _Option(frozenset([candidate]), set(estimated), size, estimated=estimated)
            )
    return options


def _gin_rows(ctx: _Context, candidate: Candidate, qid: int) -> float | None:
    """The rows a containment filter matches in a sample of the table; None (the planner's
    own estimate) for a substring or full-text search, which no operand sample stands for."""
    key = candidate.keys[0]
    if key.expression or key.opclass == cd.TRIGRAM_OPCLASS:
        return None
    info = ctx.by_oid[candidate.table_oid]
    operator = _contains_operator(ctx, ctx.analyses[qid], info, key.text)
    sample = (info.oid, key.text, operator)
    if sample not in ctx.selectivity:
        ctx.selectivity[sample] = gin.sampled_selectivity(ctx.conn, info, key.text, operator)
    selectivity = ctx.selectivity[sample]
    return None if selectivity is None else max(1.0, selectivity * max(info.rows, 1))


def _contains_operator(ctx, analysis: an.QueryAnalysis, info: TableInfo, column: str) -> str:
    for scope in analysis.scopes:
        for predicate in scope.predicates:
            if predicate.kind != an.CONTAINS:
                continue
            found = ctx.resolve(predicate.column)
            if found is not None and found[0].oid == info.oid and found[1] == column:
                return predicate.operator
    return "@>"


# --- choosing ---------------------------------------------------------------------------


@dataclass
class _Evaluation:
    net: float
    gain: float
    costs: dict[int, float]
    plans: dict[int, dict]


def _rows_written(
    conn: psycopg.Connection, workload: Sequence[WorkloadLike], tables: dict[an.Relation, TableInfo]
) -> dict[int, float]:
    """Rows the workload's own writes put into each table (partitions count for their
    root): what a new index there has to keep up with."""
    by_relation: dict[an.Relation, float] = defaultdict(float)
    for statement in workload:
        rows = float(getattr(statement, "rows", 0) or 0)
        if rows <= 0:
            continue
        for relation in dict.fromkeys(an.analyze_query(statement.query).written):
            by_relation[relation] += rows
    if not by_relation:
        return {}
    table_relations = {an.Relation(t.schema, t.name): t.oid for t in tables.values()}
    roots = catalog_partition_roots(conn, [*by_relation, *table_relations])
    written_by_root: dict[int, float] = defaultdict(float)
    for relation, rows in by_relation.items():
        if relation in roots:
            written_by_root[roots[relation]] += rows
    return {
        oid: written_by_root[roots[relation]]
        for relation, oid in table_relations.items()
        if relation in roots and roots[relation] in written_by_root
    }


def _evaluate(ctx: _Context, option: _Option, current: dict[int, float]) -> _Evaluation:
    costs: dict[int, float] = {}
    plans: dict[int, dict] = {}
    if option.estimated is not None:
        costs = dict(option.estimated)
    else:
        created = [c for c in option.members if c not in ctx.hypo]
        if not all(_hypo_create(ctx, c) for c in created):
            for c in created:
                _hypo_drop(ctx, c)
            return _Evaluation(-math.inf, 0.0, {}, {})
        try:
            for qid in option.queries:
                cost = _cost(ctx, qid)
                if cost is not None:
                    costs[qid] = cost.total
                    plans[qid] = cost.plan
        finally:
            for c in created:
                _hypo_drop(ctx, c)
    gain = 0.0
    for qid, cost in costs.items():
        if cost <= _target(ctx, qid) and cost < current[qid]:
            gain += ctx.calls[qid] * (current[qid] - cost)
    new = [c for c in option.members if c not in ctx.chosen_members]
    size = sum(ctx.hypo_sizes.get(c, 0) for c in new) or option.size_bytes
    # Every write to the table updates each new index on it: the upkeep is paid from the
    # same window's read savings.
    upkeep = INDEX_WRITE_COST * sum(ctx.rows_written.get(c.table_oid, 0.0) for c in new)
    net = gain - SIZE_COST_PER_PAGE * size / 8192 - upkeep
    return _Evaluation(net, gain, costs, plans)


def _choose(ctx: _Context, options: list[_Option]) -> list[_Chosen]:
    """Greedy: take the option that cuts calls x cost most, re-cost the rest, repeat."""
    ctx.hypo_sizes = {}
    ctx.chosen_members = set()
    for option in options:
        if len(option.members) == 1:
            (member,) = option.members
            ctx.hypo_sizes[member] = option.size_bytes
    current = {qid: cost.total for qid, cost in ctx.base.items()}
    evaluations = {id(o): _evaluate(ctx, o, current) for o in options}
    if logger.isEnabledFor(logging.DEBUG):
        for option in options:
            e = evaluations[id(option)]
            logger.debug(
                "option %s: net %.0f gain %.0f costs %s",
                [cd.fingerprint(ctx.by_oid[c.table_oid], c) for c in option.members],
                e.net,
                e.gain,
                {q: round(c) for q, c in e.costs.items()},
            )
    chosen: list[_Chosen] = []
    remaining = list(options)
    stale: set[int] = set()  # options whose evaluation predates the last pick
    while remaining and len(chosen) < MAX_RECOMMENDATIONS:
        # Lazy greedy: a pick only lowers the others' gains, so an option is re-costed
        # only when its stale value would still put it near the top.
        best_net = max(evaluations[id(o)].net for o in remaining)
        if best_net <= 0:
            break
        near = [o for o in remaining if evaluations[id(o)].net >= best_net * (1 - NEAR_TIE)]
        outdated = [o for o in near if id(o) in stale]
        if outdated:
            for option in outdated:
                evaluations[id(option)] = _evaluate(ctx, option, current)
                stale.discard(id(option))
            continue
        best = max(near, key=lambda o: evaluations[id(o)].net / max(o.size_bytes, 8192))
        evaluation = evaluations[id(best)]
        changed = set()
        for member in best.members:
            if member in ctx.chosen_members:
                continue
            if best.estimated is None:
                _hypo_create(ctx, member)
            ctx.chosen_members.add(member)
            chosen.append(_Chosen(member, best.estimated, evaluation.gain, len(best.members) > 1))
        for qid, cost in evaluation.costs.items():
            if cost < current[qid] and cost <= _target(ctx, qid):
                current[qid] = cost
                changed.add(qid)
        remaining = [o for o in remaining if not o.members <= ctx.chosen_members]
        stale.update(id(o) for o in remaining if o.queries & changed)
    ctx.current = current
    return chosen


@dataclass
class _Chosen:
    candidate: Candidate
    estimated: dict[int, float] | None = None
    gain: float = 0.0  # what it saved the workload when it was picked
    in_bundle: bool = False  # picked with others that one query needs together


def _prune(ctx: _Context, chosen: list[_Chosen]) -> list[_Chosen]:
    """Drop a chosen index whose work the others already do (a wider composite, say)."""
    kept = list(chosen)
    for item in sorted(chosen, key=lambda c: len(c.candidate.keys)):
        if item.estimated is not None or len(kept) < 2:
            continue
        relevant = _relevant_queries(ctx, item.candidate) & set(ctx.forms)
        before = {qid: ctx.current[qid] for qid in relevant}
        _hypo_drop(ctx, item.candidate)
        after = {}
        for qid in relevant:
            cost = _cost(ctx, qid)
            after[qid] = cost.total if cost is not None else math.inf
        # Redundant when the others now do (nearly) all it did when it was picked, or all
        # but a sliver of what its queries cost.
        loss = sum(ctx.calls[q] * max(0.0, after[q] - before[q]) for q in relevant)
        changed = sum(ctx.calls[q] * ctx.base[q].total for q in relevant if after[q] > before[q])
        still_served = all(
            after[q] <= _target(ctx, q) for q in relevant if before[q] <= _target(ctx, q)
        )
        logger.debug(
            "prune %s: loss %.0f of gain %.0f, still served %s",
            item.candidate,
            loss,
            item.gain,
            still_served,
        )
        polish = loss <= MIN_CONTRIBUTION * changed
        if still_served and (loss <= REDUNDANCY_TOLERANCE * max(item.gain, 1.0) or polish):
            kept.remove(item)
            ctx.chosen_members.discard(item.candidate)
            for qid in relevant:
                ctx.current[qid] = after[qid]
        else:
            _hypo_create(ctx, item.candidate)
    return kept


# --- the result -------------------------------------------------------------------------


def _recommendations(ctx: _Context, chosen: list[_Chosen]) -> list[IndexRecommendation]:
    """Each chosen index with the queries it serves and what it does for them on its own.

    Which queries it serves: those whose plan uses it with the whole chosen set in place.
    What it does: their cost with this index alone, the way verification builds it, so
    an index that only helps next to another one does not take credit for that one.
    """
    sizes = {c: size for c, (_oid, size) in ctx.hypo.items()}
    served: dict[Candidate, set[int]] = defaultdict(set)
    relevant_all = set()
    for item in chosen:
        relevant_all |= _relevant_queries(ctx, item.candidate)
    for qid in sorted(relevant_all & set(ctx.forms)):
        cost = _cost(ctx, qid)
        if cost is None or cost.total > _target(ctx, qid):
            continue
        used = {ctx.hypo_oids[o] for o in _used_indexes(cost.plan) if o in ctx.hypo_oids}
        # A correlated sub-select in an expression (CASE WHEN EXISTS ...) is planned both
        # ways and EXPLAIN shows only its hashed alternative: the plan is cheaper but
        # names no index. Each chosen index it could use is then measured alone.
        used = used or {c.candidate for c in chosen if qid in _relevant_queries(ctx, c.candidate)}
        for candidate in used:
            served[candidate].add(qid)
    for candidate in list(ctx.hypo):
        _hypo_drop(ctx, candidate)
    names_taken = _relation_names(ctx, {c.candidate.table_oid for c in chosen})
    recommendations = []
    for item in chosen:
        candidate = item.candidate
        if item.estimated is not None:
            per_query = {q: (ctx.base[q].total, cost) for q, cost in item.estimated.items()}
            plans: dict[int, dict] = {}
            size = gin.estimated_size(ctx.by_oid[candidate.table_oid])
        else:
            per_query, plans = _alone(ctx, candidate, served.get(candidate, set()))
            size = sizes.get(candidate, 0)
            # The queries it serves on its own: where it only polished a plan another chosen
            # index made, that one takes the credit. Serving none on its own, it is worth
            # its upkeep only as part of a bundle one query needs together.
            alone = {q: costs for q, costs in per_query.items() if costs[1] <= _target(ctx, q)}
            if alone:
                per_query = alone
            elif not item.in_bundle:
                continue
        if not per_query:
            continue
        main = max(per_query, key=lambda q: ctx.calls[q] * (per_query[q][0] - per_query[q][1]))
        recommendations.append(
            _recommendation(ctx, candidate, per_query, size, main, plans.get(main), names_taken)
        )
    recommendations.sort(key=lambda r: r.cost_before - r.cost_after, reverse=True)
    return recommendations


def _alone(
    ctx: _Context, candidate: Candidate, queries: set[int]
) -> tuple[dict[int, tuple[float, float]], dict[int, dict]]:
    """(before, after) cost and the after-plan of each query with only this index added."""
    per_query: dict[int, tuple[float, float]] = {}
    plans: dict[int, dict] = {}
    if not queries or not _hypo_create(ctx, candidate):
        return per_query, plans
    try:
        for qid in sorted(queries):
            cost = _cost(ctx, qid)
            if cost is not None:
                per_query[qid] = (ctx.base[qid].total, min(cost.total, ctx.base[qid].total))
                plans[qid] = cost.plan
    finally:
        _hypo_drop(ctx, candidate)
    return per_query, plans


def _relation_names(ctx: _Context, table_oids: set[int]) -> set[str]:
    """Every relation name in the schemas of these tables: an index name must be new there,
    or CREATE INDEX ... IF NOT EXISTS would quietly do nothing."""
    schemas = sorted({ctx.by_oid[oid].schema for oid in table_oids})
    with ctx.conn.cursor() as cur:
        cur.execute(
            f"{MARKER} SELECT c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s)",
            (schemas,),
        )
        return {row[0] for row in cur.fetchall()}


def _recommendation(ctx, candidate, per_query, size, main, plan_after, names_taken):
    info = ctx.by_oid[candidate.table_oid]
    identity = cd.fingerprint(info, candidate)
    name = cd.index_name(info, candidate, identity, names_taken)
    names_taken.add(name)
    create = cd.index_statement(info, candidate, name=name).as_string(ctx.conn)
    # A partitioned table's index can only be built in one go (it blocks writes while it
    # builds), or partition by partition then attached: the DDL says the one that runs.
    partitioned = info.kind == "p"
    how = "IF NOT EXISTS " if partitioned else "CONCURRENTLY IF NOT EXISTS "
    ddl = create.replace("CREATE INDEX ", f"CREATE INDEX {how}", 1)
    queryids = sorted(per_query, key=lambda q: -ctx.calls[q])
    return IndexRecommendation(
        schema=info.schema,
        table=info.name,
        name=name,
        columns=[cd.key_sql(k).as_string(ctx.conn) for k in candidate.keys],
        method=candidate.method,
        where=candidate.where,
        ddl=ddl,
        fingerprint=identity,
        queryids=queryids,
        cost_before=sum(ctx.calls[q] * before for q, (before, _a) in per_query.items()),
        cost_after=sum(ctx.calls[q] * after for q, (_b, after) in per_query.items()),
        per_query=per_query,
        size_bytes=int(size),
        needs_real_build=candidate.method not in BTREE_METHODS,
        plan_before=ctx.base[main].plan,
        plan_after=plan_after,
        statements={q: ctx.forms[q].text for q in per_query if ctx.forms[q].is_literal},
        partitioned=partitioned,
        assumed_text_search_config=(
            ctx.text_search_config
            if any(k.expression and k.text.startswith("to_tsvector(") for k in candidate.keys)
            else None
        ),
    )


# --- rewrites ---------------------------------------------------------------------------


def _rewrites(ctx: _Context, queries: list[QueryLike], advice: Advice) -> list[RewriteHint]:
    hints = []
    for query in queries:
        analysis = advice.analyses[query.queryid]
        for scope in analysis.scopes:
            if scope.offset == "param" or (isinstance(scope.offset, int) and scope.offset > 0):
                hints.append(
                    RewriteHint(
                        query.queryid,
                        query.query,
                        "offset_pagination",
                        "OFFSET reads and throws away every skipped row; page with a keyset "
                        "(WHERE (sort_col, id) > (last_seen...) ORDER BY sort_col, id LIMIT n).",
                    )
                )
            for predicate in scope.predicates:
                found = ctx.resolve(predicate.column)
                if found is None:
                    continue
                info, column = found
                if predicate.expression is not None and _has_plain_index(info, column):
                    hints.append(
                        RewriteHint(
                            query.queryid,
                            query.query,
                            "function_on_column",
                            f"{predicate.expression} hides the index on "
                            f"{info.name}.{column}: compare the column as stored, or index "
                            "the expression.",
                        )
                    )
                searched = (
                    predicate.kind == an.PARAM_EXPRESSION
                    and predicate.operator == "@@"
                    and an.text_search_expression(predicate.expression, ctx.text_search_config)
                )
                if searched:
                    hints.append(
                        RewriteHint(
                            query.queryid,
                            query.query,
                            "text_search_config",
                            f"{predicate.expression} on {info.name}.{column}: "
                            "pg_stat_statements hid the text search configuration; its GIN "
                            "index was costed with this database's default_text_search_config "
                            f"({ctx.text_search_config}), as {searched}: if the application "
                            "passes another one, write that one in the index, or the query "
                            "will not use it.",
                        )
                    )
                elif predicate.kind == an.PARAM_EXPRESSION:
                    table = sql.Identifier(info.schema, info.name).as_string(ctx.conn)
                    method = " USING gin" if predicate.operator in an.GIN_OPERATORS else ""
                    hints.append(
                        RewriteHint(
                            query.queryid,
                            query.query,
                            "hidden_constant",
                            f"{predicate.expression} on {info.name}.{column}: "
                            "pg_stat_statements replaced the constants in it by parameters, "
                            "so no expression index could be costed for it; if the "
                            "application always passes the same constants there, index the "
                            f"expression written with them (CREATE INDEX ON {table}{method} "
                            "((<the expression>)))",
                        )
                    )
                if predicate.kind == an.COLUMNS_EXPRESSION:
                    table = sql.Identifier(info.schema, info.name).as_string(ctx.conn)
                    hints.append(
                        RewriteHint(
                            query.queryid,
                            query.query,
                            "columns_expression",
                            f"{predicate.expression} {predicate.operator} ... on {info.name}: "
                            "an expression over several columns, which no index on a column "
                            "serves; an index on the expression can (CREATE INDEX ON "
                            f"{table} (({predicate.expression}))). Not costed: the planner "
                            "has statistics for an expression only once an index on it "
                            "exists and the table is analyzed.",
                        )
                    )
                if predicate.kind == an.NOT_DISTINCT:
                    hints.append(
                        RewriteHint(
                            query.queryid,
                            query.query,
                            "not_distinct",
                            f"IS NOT DISTINCT FROM on {info.name}.{column} has no index "
                            f"operator: write {column} = <value> (with OR {column} IS NULL only "
                            "where the value may be NULL) so an index can serve it.",
                        )
                    )
                if predicate.kind == an.ILIKE:
                    hints.append(
                        RewriteHint(
                            query.queryid,
                            query.query,
                            "ilike",
                            f"ILIKE on {info.name}.{column} cannot use a btree index: use "
                            f"lower({column}) LIKE lower($1) with an index on lower({column}) "
                            f"text_pattern_ops, or a pg_trgm GIN index.{_trigram_note(ctx)}",
                        )
                    )
                if predicate.kind == an.SUBSTRING and not ctx.trigram:
                    like = "ILIKE" if predicate.operator == "~~*" else "LIKE"
                    hints.append(
                        RewriteHint(
                            query.queryid,
                            query.query,
                            "substring",
                            f"{like} with a leading wildcard on "
                            f"{info.name}.{column}: no btree index can serve it, only a "
                            f"pg_trgm GIN index.{_trigram_note(ctx)}",
                        )
                    )
    return list({(h.queryid, h.kind, h.message): h for h in hints}.values())


def _trigram_note(ctx: _Context) -> str:
    """Why no pg_trgm index was costed, when that is the reason."""
    if ctx.trigram:
        return ""
    return (
        " The extension pg_trgm is not installed on this database, so no such index was "
        "costed: CREATE EXTENSION pg_trgm there, then CREATE INDEX ... USING gin "
        "(<column> gin_trgm_ops)."
    )


def _has_plain_index(info: TableInfo, column: str) -> bool:
    return any(
        index.valid and index.keys and cd.existing_key(index.keys[0]) == column
        for index in info.indexes
    )


# --- for verification -------------------------------------------------------------------


@dataclass(frozen=True)
class RepresentativeStatement:
    queryid: int
    text: str | None  # the query with representative literal values, ready to EXPLAIN
    is_select: bool
    error: str | None = None


def representative_statements(
    conn: psycopg.Connection, queries: Sequence[QueryLike]
) -> dict[int, RepresentativeStatement]:
    """Each query with its $n replaced by values from pg_stats (or a sampled row)."""
    result: dict[int, RepresentativeStatement] = {}
    analyses = {q.queryid: an.analyze_query(q.query) for q in queries}
    for qid, analysis in analyses.items():
        if not analysis.ok:
            result[qid] = RepresentativeStatement(qid, None, False, analysis.error)
    live = [a for q, a in analyses.items() if q not in result]
    if not live:
        return result
    tables, views = _catalog_with_views(conn, live)
    stats = catalog_column_stats(conn, _stat_columns(live, tables))
    ctx = _Context(conn, tables, stats, 0, 0, 0.0)
    ctx.views = views
    for qid, analysis in analyses.items():
        if qid in result:
            continue
        try:
            values = gp.representative_values(conn, analysis, ctx.resolve, stats)
            text = gp.literal_text(analysis, values)
        except (psycopg.Error, ValueError) as exc:
            result[qid] = RepresentativeStatement(
                qid, None, False, f"no representative values: {exc}"
            )
            continue
        result[qid] = RepresentativeStatement(qid, text, analysis.is_select)
    return result
