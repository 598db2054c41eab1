"""Advise: from slow queries to the set of indexes that cuts the workload's cost most.

Reads top to bottom like the audit it serves; each step is a module of this package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psycopg

from pgaccess.catalog import catalog_heap_bytes, search_path_widened
from pgaccess.extensions import hypopg_problem
from pgaccess.qualstats import QualStat

from .. import analysis as an
from ..budget import IndexBudget
from . import costing, options, selection, sizes
from .advice import (
    Advice,
    AdvisorError,
    BudgetUse,
    FrontierStep,
    QueryLike,
    SkippedQuery,
    SkipReason,
    WorkloadLike,
)
from .facts import TargetFacts, catalog_read, server_read, target_facts_read
from .results import index_ddl, recommendations_build
from .rewrites import rewrite_hints
from .sizes import SizeEstimate

NO_BUDGET = IndexBudget()  # no limit


def advise(
    conn: psycopg.Connection,
    queries: Sequence[QueryLike],
    *,
    min_table_rows: int,
    min_cost_reduction: float,
    workload: Sequence[WorkloadLike] = (),
    budget: IndexBudget = NO_BUDGET,
    size_estimate: SizeEstimate = SizeEstimate.BUILT,
    quals: Mapping[int, Sequence[QualStat]] | None = None,
) -> Advice:
    """Recommend indexes for `queries`; every query is costed or listed in `skipped`.

    `workload`: every statement of the audit window, slow or not (default: `queries`); its
    INSERT / UPDATE / DELETE say how much each table is written, which every new index
    there must pay for. `budget`: the most the new indexes may take together (a share is
    of the audited tables' heap size), counted in `size_estimate`'s sizes.
    """
    advice = Advice()
    queries = list({q.queryid: q for q in queries}.values())
    # Analyze: the parser's view of each query; unparseable ones are skipped with why.
    for query in queries:
        analysis = an.analyze_query(query.query)
        advice.analyses[query.queryid] = analysis
        if not analysis.ok:
            advice.skipped.append(
                SkippedQuery(query.queryid, query.query, analysis.error, SkipReason.UNPARSED)
            )
    live = [q for q in queries if advice.analyses[q.queryid].ok]
    if not live:
        return advice
    server = server_read(conn)
    problem = hypopg_problem(conn)
    if problem is not None:
        raise AdvisorError(problem)
    relations = {rel for q in live for rel in advice.analyses[q.queryid].relations}
    with search_path_widened(conn, relations) as ambiguous:
        # Catalog: tables (views expanded into their definition), columns, indexes, stats.
        catalog = catalog_read(conn, [advice.analyses[q.queryid] for q in live])
        facts = target_facts_read(
            conn, catalog, server=server, ambiguous=ambiguous, workload=workload or queries
        )
        with costing.what_if(conn) as session:
            # Cost every query as it runs today (its generic plan, or a representative one).
            # pg_qualstats' values, where the target has it (workload_values).
            costed, not_costed = costing.base_costs(conn, live, advice.analyses, facts, quals=quals)
            advice.skipped.extend(not_costed)
            advice.query_costs.update({qid: q.base.total for qid, q in costed.items()})
            # Candidates per query; hints for what no index can serve as written.
            candidates = options.candidates_generate(facts, costed, min_table_rows=min_table_rows)
            advice.rewrites.extend(rewrite_hints(facts, costed.values()))
            # What-if, all at once: with every candidate present, the planner picks its
            # favourites; those (and the sets one query uses together) are the options.
            oracle = costing.WhatIfCosting(conn, session, facts, costed, candidates.generated_for)
            work = options.workload_for_selection(
                facts, costed, candidates, min_cost_reduction=min_cost_reduction
            )
            choice = options.options_build(
                oracle,
                work,
                candidates,
                size=lambda c, hypopg: sizes.index_bytes(facts, c, hypopg, estimate=size_estimate),
            )
            # The budget in bytes: a share is of the heap the audited queries read.
            tables_bytes = catalog_heap_bytes(conn, _tables(facts)) if budget.share else None
            budget_bytes = budget.bytes_for(tables_bytes or 0)
            # Greedy choice on the workload's cost under the budget, re-costing as indexes
            # interact; then drop what the others make redundant, and credit each with what
            # it does alone.
            chosen = selection.select(choice, oracle, work, budget_bytes=budget_bytes)
            chosen = selection.prune(chosen, oracle, work)
            credits = selection.credit(chosen, oracle, work)
            # What each extra MiB buys: the set at growing budgets (the costings are kept).
            curve = selection.frontier(choice, oracle, work)
    spent = {c.candidate: c.size_bytes for c in chosen.chosen}
    advice.budget = BudgetUse(
        budget=str(budget),
        budget_bytes=budget_bytes,
        used_bytes=sum(spent[c.candidate] for c in credits),
        size_estimate=str(size_estimate),
        tables_bytes=tables_bytes,
    )
    advice.frontier = [
        FrontierStep(
            budget_bytes=point.budget_bytes,
            indexes=[index_ddl(facts, c.candidate) for c in point.chosen],
            relative_cost=round(point.relative_cost, 6),
        )
        for point in curve
    ]
    advice.recommendations.extend(recommendations_build(credits, facts, costed))
    return advice


def _tables(facts: TargetFacts) -> list[int]:
    """The tables the collected queries read (views stand for the tables they read)."""
    return [oid for oid, info in facts.by_oid.items() if info.kind in ("r", "p", "m")]
