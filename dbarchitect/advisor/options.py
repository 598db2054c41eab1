"""From candidate indexes to the options the selection weighs.

Candidates per query come from candidates.py: only tables big enough, never system
catalogs, never a key an existing valid index already leads with. With every B-tree
candidate present at once, the planner says which it reaches for: each is an option,
and so is the whole set one query uses, since a join may need two indexes before either
pays on its own. GIN, which HypoPG cannot build, is an option where its estimate serves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .. import candidates as cd
from ..candidates import Candidate
from .costing import CostedQuery
from .facts import TargetFacts
from .selection import Costing, CostOracle, Option, Workload

BTREE_METHODS = ("btree",)


class OptionsOracle(CostOracle, Protocol):
    def with_all(self, queries: Collection[int], candidates: Sequence[Candidate]) -> Costing: ...

    def estimated(self, candidate: Candidate, queries: Collection[int]) -> Costing: ...


@dataclass(frozen=True)
class Candidates:
    """Every candidate of the workload, with the queries it was generated for."""

    generated_for: Mapping[Candidate, frozenset[int]]
    interesting: Mapping[int, Mapping[int, set[str]]]  # query -> table oid -> its keys

    def relevant(self, candidate: Candidate) -> frozenset[int]:
        """The queries it may change: those it was generated for, and any that filters,
        joins, sorts or groups on its leading key."""
        lead = candidate.keys[0].text
        return frozenset(
            qid
            for qid, per_table in self.interesting.items()
            if lead in per_table.get(candidate.table_oid, ())
        ) | self.generated_for.get(candidate, frozenset())


def candidates_generate(
    facts: TargetFacts, costed: Mapping[int, CostedQuery], *, min_table_rows: int
) -> Candidates:
    generated: dict[Candidate, set[int]] = defaultdict(set)
    interesting = {}
    for qid, query in costed.items():
        interesting[qid] = cd.interesting_keys(facts, query.analysis, min_table_rows=min_table_rows)
        for candidate in cd.candidates_for(facts, query.analysis, min_table_rows=min_table_rows):
            # A wide candidate's narrower forms too: its extra width must pay for its bytes.
            for shape in {candidate, *cd.narrower_variants(candidate)}:
                if not cd.is_covered(shape, facts.by_oid[shape.table_oid]):
                    generated[shape].add(qid)
    return Candidates({c: frozenset(q) for c, q in generated.items()}, interesting)


def workload_for_selection(
    facts: TargetFacts,
    costed: Mapping[int, CostedQuery],
    candidates: Candidates,
    *,
    min_cost_reduction: float,
) -> Workload:
    return Workload(
        calls={qid: q.calls for qid, q in costed.items()},
        base={qid: q.base.total for qid, q in costed.items()},
        # The cost a query must get down to for an index to count as serving it.
        target={qid: q.base.total * (1.0 - min_cost_reduction) for qid, q in costed.items()},
        relevant={c: candidates.relevant(c) for c in candidates.generated_for},
        rows_written=facts.rows_written,
    )


def options_build(
    oracle: OptionsOracle,
    workload: Workload,
    candidates: Candidates,
    *,
    size: Callable[[Candidate, int], int] = lambda _candidate, hypopg_bytes: hypopg_bytes,
) -> list[Option]:
    """The B-tree options the planner reached for, then the GIN options that serve.

    `size`: a candidate and HypoPG's estimate -> the bytes it counts for (sizes.py)."""
    btree = [c for c in candidates.generated_for if c.method in BTREE_METHODS]
    others = [c for c in candidates.generated_for if c.method not in BTREE_METHODS]
    options = _btree_options(oracle, workload, candidates, btree, size)
    for candidate in others:
        costing = oracle.estimated(candidate, candidates.generated_for[candidate])
        estimated = {
            qid: cost.total
            for qid, cost in costing.costs.items()
            if workload.serves(qid, cost.total)
        }
        if estimated:
            size = costing.sizes[candidate]
            options.append(Option(frozenset([candidate]), frozenset(estimated), size, estimated))
    return options


def _btree_options(
    oracle: OptionsOracle,
    workload: Workload,
    candidates: Candidates,
    btree: list[Candidate],
    size: Callable[[Candidate, int], int],
) -> list[Option]:
    """Create every candidate, plan every query once, keep what the planner reached for."""
    wanted = set().union(*(candidates.generated_for[c] for c in btree))
    costing = oracle.with_all([qid for qid in workload.base if qid in wanted], btree)
    sizes = costing.sizes
    queries: dict[frozenset[Candidate], set[int]] = {}
    for candidate in sizes:
        # Every candidate on its own too: the planner breaks near ties (a partial index and
        # a plain one, say) one way, the workload's cost per byte may prefer the other.
        queries[frozenset([candidate])] = set(workload.relevant[candidate])
    for qid, cost in costing.costs.items():
        if not cost.uses or not workload.serves(qid, cost.total):
            continue
        singles = [frozenset([c]) for c in cost.uses]
        for members in singles + ([cost.uses] if len(cost.uses) > 1 else []):
            if members not in queries:
                queries[members] = set().union(*(workload.relevant[c] for c in members))
            queries[members].add(qid)
    return [
        Option(members, frozenset(found), sum(size(c, sizes[c]) for c in members))
        for members, found in queries.items()
    ]
