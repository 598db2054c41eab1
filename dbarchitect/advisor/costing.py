"""Costing: the one part of the advisor that talks to the target while it advises.

Every query is costed as it runs today (its generic plan, or a representative custom one,
see parameters.py), then under sets of hypothetical indexes (HypoPG, through a what-if
session). `WhatIfCosting` is the cost oracle the selection asks; GIN, which HypoPG
cannot build, is estimated from the plan and a sampled selectivity instead.

Nothing is left behind: the costing runs in one transaction rolled back at the end, and
HypoPG's hypothetical indexes (which live in the session, not the transaction) are reset
before and after.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgaccess import generic_plan as gp
from pgaccess.hypopg import Hypothetical, WhatIfSession, used_oids
from pgaccess.qualstats import QualStat
from pgaccess.session import Savepoint

from .. import analysis as an
from .. import candidates as cd
from .. import gin, parameters
from ..candidates import Candidate
from ..workload_values import workload_form
from .advice import QueryLike, SkippedQuery, SkipReason
from .facts import TargetFacts
from .selection import Costing, QueryCost

logger = logging.getLogger(__name__)

# A what-if session's key: the candidate, and whether its stand-in is created with it.
HypoKey = tuple[Candidate, bool]


@dataclass(frozen=True)
class CostedQuery:
    query: QueryLike
    analysis: an.QueryAnalysis
    form: gp.CostForm  # how it is planned: the same form under every index set
    base: gp.PlanCost  # its plan today
    calls: int


@contextmanager
def what_if(conn: psycopg.Connection) -> Iterator[WhatIfSession[HypoKey]]:
    """A transaction rolled back at the end, generic plans forced, HypoPG clean around it."""
    session: WhatIfSession[HypoKey] = WhatIfSession(conn)
    try:
        with session, conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(sql.SQL("SAVEPOINT {}").format(sql.Identifier(Savepoint.COSTING)))
            yield session
    finally:
        gp.prepared_statements_forget(conn)


def base_costs(
    conn: psycopg.Connection,
    queries: Sequence[QueryLike],
    analyses: Mapping[int, an.QueryAnalysis],
    facts: TargetFacts,
    *,
    quals: Mapping[int, Sequence[QualStat]] | None = None,
) -> tuple[dict[int, CostedQuery], list[SkippedQuery]]:
    """Each query's plan as it runs today; the ones no form of which plans, with why.

    `quals`: what pg_qualstats saw per queryid; a query it saw the values of is costed
    with them (workload_values), its candidates drawn from what they say."""
    costed: dict[int, CostedQuery] = {}
    skipped = []
    for query in queries:
        analysis = analyses[query.queryid]
        workload = _workload_costed(conn, query, analysis, facts, (quals or {}).get(query.queryid))
        if workload is not None:
            costed[query.queryid] = workload
            continue
        try:
            form, cost = parameters.costing_form(
                conn,
                analysis,
                resolve=facts.resolve,
                stats=facts.catalog.stats,
                server_version=facts.server_version,
            )
        except gp.NotCostable as exc:
            skipped.append(_not_costed(facts, query, analysis, exc))
            continue
        costed[query.queryid] = CostedQuery(query, analysis, form, cost, max(int(query.calls), 1))
    return costed, skipped


def _workload_costed(
    conn: psycopg.Connection,
    query: QueryLike,
    analysis: an.QueryAnalysis,
    facts: TargetFacts,
    quals: Sequence[QualStat] | None,
) -> CostedQuery | None:
    """The query planned with the values pg_qualstats saw, or None (no values, or the
    server refused that form: the usual forms are tried then)."""
    if not quals:
        return None
    try:
        found = workload_form(
            conn, analysis, quals, resolve=facts.resolve, stats=facts.catalog.stats
        )
        if found is None:
            return None
        form = gp.CostForm("literal_workload", found.text)
        cost = gp.plan_cost(conn, form, server_version=facts.server_version, guarded=True)
    except (psycopg.Error, ValueError):
        return None
    return CostedQuery(query, found.analysis, form, cost, max(int(query.calls), 1))


def _not_costed(
    facts: TargetFacts, query: QueryLike, analysis: an.QueryAnalysis, exc: gp.NotCostable
) -> SkippedQuery:
    """Why a query cannot be planned, in a DBA's words where the cause is known."""
    for relation in analysis.relations:
        schemas = facts.ambiguous.get(relation.name) if relation.schema is None else None
        if schemas:
            reason = (
                f"could not be planned: {relation.name} is not on the audit's search_path "
                f"and schemas {', '.join(schemas)} each have one; pg_stat_statements does "
                "not record the search_path the application ran it with: set the audit "
                "role's search_path to the application's (ALTER ROLE ... SET search_path)"
            )
            return SkippedQuery(query.queryid, query.query, reason, SkipReason.AMBIGUOUS_NAME)
    found = {
        facts.unreadable[info.oid]
        for relation in analysis.relations
        if (info := facts.catalog.tables.get(relation)) is not None and info.oid in facts.unreadable
    }
    if found:
        role = next(iter(found))[0]
        names = ", ".join(sorted(table for _, table in found))
        reason = (
            f"could not be planned: role {role} has no SELECT privilege on {names}, which "
            f"EXPLAIN needs even without running the query; GRANT SELECT ON {names} TO {role}"
        )
        return SkippedQuery(query.queryid, query.query, reason, SkipReason.NO_SELECT_PRIVILEGE)
    reason = f"could not be planned: {exc}"
    return SkippedQuery(query.queryid, query.query, reason, SkipReason.NOT_PLANNED)


class WhatIfCosting:
    """The cost oracle on the target: EXPLAIN under hypothetical indexes.

    The session holds exactly the indexes last asked for: a new question drops the ones
    it does not name and creates the ones missing, so the chosen set, asked for again and
    again, is created once.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        session: WhatIfSession[HypoKey],
        facts: TargetFacts,
        costed: Mapping[int, CostedQuery],
        generated_for: Mapping[Candidate, Collection[int]],
    ) -> None:
        self._conn = conn
        self._session = session
        self._facts = facts
        self._costed = costed
        self._generated_for = generated_for  # a stand-in serves only these queries
        self._ddl: dict[HypoKey, tuple[str, list[str]]] = {}
        self._selectivity: dict[tuple[int, str, str], float | None] = {}  # sampled, for GIN
        self._known: dict[frozenset[Candidate], dict[int, QueryCost | None]] = {}
        self._sizes: dict[Candidate, int] = {}  # HypoPG's estimate, the same in every set
        self._refused: set[Candidate] = set()

    def costs(self, queries: Collection[int], indexes: Sequence[Candidate]) -> Costing:
        """Each query's cost with these indexes (a partial one with its stand-in).

        Answers are kept per index set: the selection asks the same questions again under
        each budget of the frontier, and a plan does not change between them."""
        present = frozenset(indexes)
        if present & self._refused:
            return Costing({}, refused=present & self._refused)
        known = self._known.setdefault(present, {})
        missing = [qid for qid in queries if qid not in known]
        if missing or not present <= self._sizes.keys():
            keys = [(candidate, True) for candidate in indexes]
            self._keep_only(keys)
            for key in keys:
                if self._create(key) is None:
                    self._refused.add(key[0])
                    return Costing({}, refused=frozenset([key[0]]))
            costing = self._costing(missing, keys)
            known.update({qid: costing.costs.get(qid) for qid in missing})
            self._sizes.update(costing.sizes)
        costs = {qid: known[qid] for qid in queries if known[qid] is not None}
        return Costing(costs, {c: self._sizes[c] for c in present})

    def with_all(self, queries: Collection[int], candidates: Sequence[Candidate]) -> Costing:
        """Each query's cost with every candidate HypoPG accepts present at once (no
        stand-ins): the indexes the planner reaches for among all of them."""
        keys = [(candidate, False) for candidate in candidates]
        self._keep_only(keys)
        refused = frozenset(key[0] for key in keys if self._create(key) is None)
        costing = self._costing(queries, [key for key in keys if key[0] not in refused])
        return Costing(costing.costs, costing.sizes, refused)

    def estimated(self, candidate: Candidate, queries: Collection[int]) -> Costing:
        """A GIN candidate's estimated cost for each query and its estimated size."""
        info = self._facts.by_oid[candidate.table_oid]
        costs = {}
        for qid in queries:
            rows = self._gin_rows(candidate, qid)
            estimate = gin.estimated_cost(self._costed[qid].base.plan, info, rows)
            if estimate is not None:
                costs[qid] = QueryCost(estimate)
        return Costing(costs, {candidate: gin.estimated_size(info)})

    def _costing(self, queries: Collection[int], keys: Sequence[HypoKey]) -> Costing:
        costs = {}
        for qid in queries:
            cost = self._plan(qid)
            if cost is not None:
                uses = {self._session.owner(oid) for oid in used_oids(cost.plan)}
                uses.discard(None)
                costs[qid] = QueryCost(cost.total, cost.plan, frozenset(k[0] for k in uses))
        sizes = {key[0]: self._session.index(key).size_bytes for key in keys}
        return Costing(costs, sizes)

    def _keep_only(self, keys: Sequence[HypoKey]) -> None:
        wanted = set(keys)
        for key in self._session.held():
            if key not in wanted:
                self._session.drop(key)

    def _create(self, key: HypoKey) -> Hypothetical | None:
        if key not in self._ddl:
            candidate, stand_in = key
            info = self._facts.by_oid[candidate.table_oid]
            ddl = cd.index_statement(info, candidate).as_string(self._conn)
            twin = cd.costing_stand_in(candidate) if stand_in else candidate
            stand_ins = [cd.index_statement(info, twin).as_string(self._conn)]
            self._ddl[key] = (ddl, stand_ins if twin != candidate else [])
        ddl, stand_ins = self._ddl[key]
        return self._session.create(key, ddl, stand_ins)

    def _plan(self, qid: int) -> gp.PlanCost | None:
        """The query's plan now. A failure rolls back to the costing savepoint (set once,
        kept: a savepoint per EXPLAIN would double the round trips of the whole advisor)."""
        try:
            cost = gp.plan_cost(
                self._conn, self._costed[qid].form, server_version=self._facts.server_version
            )
        except psycopg.Error as exc:
            logger.info("re-costing query %s failed: %s", qid, exc.diag.message_primary)
            with self._conn.cursor() as cur:
                cur.execute(
                    sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(Savepoint.COSTING))
                )
            return None
        # A stand-in serves only the queries that carry its partial predicate; for any other
        # query, plan again without it.
        stand_ins = self._session.stand_ins()
        foreign = [
            oid
            for oid in used_oids(cost.plan)
            if oid in stand_ins and qid not in self._generated_for.get(stand_ins[oid][0], ())
        ]
        if not foreign:
            return cost
        with self._session.stand_ins_dropped(foreign):
            return self._plan(qid)

    def _gin_rows(self, candidate: Candidate, qid: int) -> float | None:
        """The rows a containment filter matches in a sample of the table; None (the
        planner's own estimate) for a substring or full-text search, which no operand
        sample stands for."""
        key = candidate.keys[0]
        if key.expression or key.opclass == cd.TRIGRAM_OPCLASS:
            return None
        info = self._facts.by_oid[candidate.table_oid]
        operator = self._contains_operator(self._costed[qid].analysis, info, key.text)
        sample = (info.oid, key.text, operator)
        if sample not in self._selectivity:
            self._selectivity[sample] = gin.sampled_selectivity(
                self._conn, info, key.text, operator
            )
        selectivity = self._selectivity[sample]
        return None if selectivity is None else max(1.0, selectivity * max(info.rows, 1))

    def _contains_operator(self, analysis: an.QueryAnalysis, info, column: str) -> str:
        for scope in analysis.scopes:
            for predicate in scope.predicates:
                if predicate.kind != an.FilterKind.CONTAINS:
                    continue
                found = self._facts.resolve(predicate.column)
                if found is not None and found[0].oid == info.oid and found[1] == column:
                    return predicate.operator
        return "@>"
