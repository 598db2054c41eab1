"""Which indexes to recommend: a greedy choice over options, given a cost oracle.

Pure: the oracle answers "what does each of these queries cost with these hypothetical
indexes added?", and everything here is arithmetic on its answers. Costing against a
database is costing.py's; a dictionary stands in for it in the unit tests.

The steps, each its own function: `select` takes the option that cuts the workload's
calls x cost the most, re-costs the others as indexes interact, and repeats; `prune`
drops a chosen index whose work the others already do; `credit` says which queries each
one serves on its own (what verification will measure), and drops one that serves none
unless a query needs it together with others.

Choices are data in, data out, so the same options can be selected again: under a
storage budget (`budget_bytes`), at growing budgets for a cost-vs-size curve, or with
narrower variants of a wide index added as options of their own.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # only its table_oid and keys are read: no import of the catalog layer
    from ..candidates import Candidate

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
PAGE_BYTES = 8192
# The bar a new index must clear, and the extra width of a wider variant over a narrower
# one (more key columns, an INCLUDE, full instead of partial): at least this net saving
# (planner cost x calls, less upkeep and size cost) per 8 kB page it adds. A wider index
# that only shaves the planner's estimate a little keeps its narrower prefix instead.
MIN_NET_PER_PAGE = 1.0
# Points of the cost-vs-size curve: budgets in a geometric series from the smallest
# option to the unconstrained set's size.
FRONTIER_POINTS = 10


@dataclass(frozen=True)
class QueryCost:
    total: float
    plan: dict | None = field(default=None, compare=False)
    uses: frozenset[Candidate] = frozenset()  # the hypothetical indexes its plan reads


@dataclass(frozen=True)
class Costing:
    """The oracle's answer. A query that could not be planned is absent from `costs`."""

    costs: Mapping[int, QueryCost]
    sizes: Mapping[Candidate, int] = field(default_factory=dict)  # estimated bytes
    refused: frozenset[Candidate] = frozenset()  # could not be created: nothing was costed


class CostOracle(Protocol):
    def costs(self, queries: Collection[int], indexes: Sequence[Candidate]) -> Costing:
        """Each query's cost with exactly these hypothetical indexes added."""
        ...


@dataclass(frozen=True)
class Workload:
    """The costed queries, as the selection sees them."""

    calls: Mapping[int, int]
    base: Mapping[int, float]  # each query's cost today
    target: Mapping[int, float]  # the cost it must get down to for an index to serve it
    # Queries each candidate may change: it leads with a key they filter, join or sort on.
    relevant: Mapping[Candidate, frozenset[int]]
    rows_written: Mapping[int, float] = field(default_factory=dict)  # table oid -> rows

    def serves(self, qid: int, cost: float) -> bool:
        return cost <= self.target[qid]


@dataclass(frozen=True)
class Option:
    """One index, or indexes one query needs together (a join may need two at once)."""

    members: frozenset[Candidate]
    queries: frozenset[int]  # the queries whose cost it may change
    size_bytes: int
    estimated: Mapping[int, float] | None = None  # GIN: estimated costs (HypoPG cannot build)


@dataclass(frozen=True)
class Chosen:
    candidate: Candidate
    size_bytes: int
    estimated: Mapping[int, float] | None = None
    gain: float = 0.0  # what it saved the workload when it was picked
    in_bundle: bool = False  # picked with others that one query needs together


@dataclass(frozen=True)
class Selection:
    chosen: tuple[Chosen, ...]
    costs: Mapping[int, float]  # each query's cost with the chosen set in place

    @property
    def hypothetical(self) -> list[Candidate]:
        """The chosen indexes HypoPG can build (GIN is estimated instead)."""
        return [c.candidate for c in self.chosen if c.estimated is None]


@dataclass(frozen=True)
class Credit:
    """A chosen index with what it does on its own for the queries it serves."""

    candidate: Candidate
    per_query: Mapping[int, tuple[float, float]]  # query -> (cost before, cost after)
    main: int  # the query it saves the most for
    plan_after: dict | None
    size_bytes: int


@dataclass(frozen=True)
class _Evaluation:
    net: float
    gain: float
    costs: Mapping[int, float]


class _Chooser:
    """One run of `select`: the chosen set so far and each query's cost with it."""

    def __init__(self, oracle: CostOracle, workload: Workload, options: Sequence[Option]):
        self.oracle = oracle
        self.workload = workload
        self.sizes = {next(iter(o.members)): o.size_bytes for o in options if len(o.members) == 1}
        self.current = dict(workload.base)
        self.chosen: list[Chosen] = []
        self.members: set[Candidate] = set()

    def evaluate(self, option: Option) -> _Evaluation:
        if option.estimated is not None:
            costs = dict(option.estimated)
        else:
            present = [c.candidate for c in self.chosen if c.estimated is None]
            added = [c for c in option.members if c not in present]
            costing = self.oracle.costs(option.queries, [*present, *added])
            if costing.refused:
                return _Evaluation(-math.inf, 0.0, {})
            costs = {qid: cost.total for qid, cost in costing.costs.items()}
        gain = sum(
            self.workload.calls[qid] * (self.current[qid] - cost)
            for qid, cost in costs.items()
            if self.workload.serves(qid, cost) and cost < self.current[qid]
        )
        # Every write to the table updates each new index on it: the upkeep is paid from the
        # same window's read savings.
        written = self.workload.rows_written
        upkeep = INDEX_WRITE_COST * sum(written.get(c.table_oid, 0.0) for c in self._new(option))
        size_cost = SIZE_COST_PER_PAGE * self.new_bytes(option) / PAGE_BYTES
        return _Evaluation(gain - size_cost - upkeep, gain, costs)

    def new_bytes(self, option: Option) -> int:
        """What the option adds to the chosen set's size."""
        return sum(self.sizes.get(c, 0) for c in self._new(option)) or option.size_bytes

    def _new(self, option: Option) -> list[Candidate]:
        return [c for c in option.members if c not in self.members]

    def take(self, option: Option, evaluation: _Evaluation) -> set[int]:
        """Add the option's new members; the queries whose cost it lowered."""
        for member in option.members:
            if member in self.members:
                continue
            self.members.add(member)
            size = self.sizes.get(member, option.size_bytes)
            bundle = len(option.members) > 1
            self.chosen.append(Chosen(member, size, option.estimated, evaluation.gain, bundle))
        changed = set()
        for qid, cost in evaluation.costs.items():
            if cost < self.current[qid] and self.workload.serves(qid, cost):
                self.current[qid] = cost
                changed.add(qid)
        return changed


def select(
    options: Sequence[Option],
    oracle: CostOracle,
    workload: Workload,
    *,
    budget_bytes: int | None = None,
    max_indexes: int = MAX_RECOMMENDATIONS,
) -> Selection:
    """Greedy: take the option that cuts calls x cost most, re-cost the rest, repeat.

    `budget_bytes`: the most the chosen indexes may take together (None: no limit). Under
    a budget the options are ranked by net saving per byte, and the result is compared
    with the set grown from the best single option that fits (the classic fix for a
    greedy knapsack: a budget too small for the best index still gets the best set that
    fits, and one big index that beats many small ones is not passed over).
    """
    by_ratio = _greedy(options, oracle, workload, budget_bytes, max_indexes)
    if budget_bytes is None:
        return by_ratio.selection
    fitting = [o for o in options if o.size_bytes <= budget_bytes]
    first = max(fitting, key=lambda o: by_ratio.initial[id(o)].net, default=None)
    if first is None or _score(by_ratio.initial[id(first)], first) <= 0:
        return by_ratio.selection
    if first.members <= {c.candidate for c in by_ratio.selection.chosen}:
        return by_ratio.selection
    seeded = _greedy(options, oracle, workload, budget_bytes, max_indexes, first=first)
    return max((by_ratio, seeded), key=lambda run: run.net).selection


@dataclass(frozen=True)
class _Run:
    selection: Selection
    net: float  # what the chosen set saves the workload, less its upkeep and size cost
    initial: Mapping[int, _Evaluation]  # each option's evaluation with nothing chosen


def _score(evaluation: _Evaluation, option: Option) -> float:
    """Net saving beyond the bar every page must clear (MIN_NET_PER_PAGE)."""
    return evaluation.net - MIN_NET_PER_PAGE * option.size_bytes / PAGE_BYTES


def _greedy(
    options: Sequence[Option],
    oracle: CostOracle,
    workload: Workload,
    budget_bytes: int | None,
    max_indexes: int,
    *,
    first: Option | None = None,
) -> _Run:
    run = _Chooser(oracle, workload, options)
    initial = {id(o): run.evaluate(o) for o in options}
    evaluations = dict(initial)
    if logger.isEnabledFor(logging.DEBUG):
        for option in options:
            e = evaluations[id(option)]
            logger.debug("option %s: net %.0f gain %.0f", option.members, e.net, e.gain)
    remaining = list(options)
    stale: set[int] = set()  # options whose evaluation predates the last pick
    spent, net = 0, 0.0

    def ratio(option: Option) -> float:
        return evaluations[id(option)].net / max(run.new_bytes(option), PAGE_BYTES)

    while remaining and len(run.chosen) < max_indexes:
        fitting = remaining
        if budget_bytes is not None:
            fitting = [o for o in remaining if spent + run.new_bytes(o) <= budget_bytes]
        fitting = [o for o in fitting if _score(evaluations[id(o)], o) > 0]
        if first is not None:
            best, first = first, None
        elif not fitting:
            break
        else:
            # Lazy greedy: a pick only lowers the others' gains, so an option is re-costed
            # only when its stale value would still put it near the top.
            if budget_bytes is None:
                top = max(evaluations[id(o)].net for o in fitting)
                near = [o for o in fitting if evaluations[id(o)].net >= top * (1 - NEAR_TIE)]
            else:
                top = max(ratio(o) for o in fitting)
                near = [o for o in fitting if ratio(o) >= top * (1 - NEAR_TIE)]
            outdated = [o for o in near if id(o) in stale]
            if outdated:
                for option in outdated:
                    evaluations[id(option)] = run.evaluate(option)
                    stale.discard(id(option))
                continue
            best = max(near, key=ratio)
            best = _width_that_pays(best, fitting, evaluations, stale, run)
        evaluation = evaluations[id(best)]
        spent += run.new_bytes(best)
        net += evaluation.net
        changed = run.take(best, evaluation)
        remaining = [o for o in remaining if not o.members <= run.members]
        stale.update(id(o) for o in remaining if o.queries & changed)
    return _Run(Selection(tuple(run.chosen), run.current), net, initial)


def _width_that_pays(
    best: Option,
    fitting: Sequence[Option],
    evaluations: dict[int, _Evaluation],
    stale: set[int],
    run: _Chooser,
) -> Option:
    """The best option or a narrower or wider variant of it: a wider one is taken only
    where its extra net saving per extra page clears MIN_NET_PER_PAGE, the bar of a new
    index (so a near tie's cheaper-per-byte pick still gets the width that pays)."""
    if len(best.members) != 1 or best.estimated is not None:
        return best
    picked = next(iter(best.members))
    family = [best]
    for option in fitting:
        if len(option.members) != 1 or option is best or option.estimated is not None:
            continue
        other = next(iter(option.members))
        if is_narrower(other, picked) or is_narrower(picked, other):
            if id(option) in stale:
                evaluations[id(option)] = run.evaluate(option)
                stale.discard(id(option))
            family.append(option)
    return max(
        family,
        key=lambda o: (
            evaluations[id(o)].net - MIN_NET_PER_PAGE * run.new_bytes(o) / PAGE_BYTES,
            -run.new_bytes(o),
        ),
    )


def is_narrower(narrow: Candidate, wide: Candidate) -> bool:
    """`narrow` is a narrower variant of `wide`: the same table and method, its keys a
    prefix of the wide one's, no INCLUDE column the wide one lacks, and the same
    predicate or a partial one where the wide one is full (whose key column for the
    predicate's column the partial one does without)."""
    if narrow == wide or (narrow.table_oid, narrow.method) != (wide.table_oid, wide.method):
        return False
    wide_keys = wide.keys
    if narrow.where is not None and wide.where is None and narrow.where_column is not None:
        wide_keys = tuple(k for k in wide.keys if k.text != narrow.where_column)
    if narrow.keys != wide_keys[: len(narrow.keys)]:
        return False
    if not set(narrow.include) <= set(wide.include):
        return False
    return narrow.where == wide.where or (narrow.where is not None and wide.where is None)


@dataclass(frozen=True)
class FrontierPoint:
    """The set chosen under one budget and the workload's cost with it, relative to today."""

    budget_bytes: int
    chosen: tuple[Chosen, ...]
    relative_cost: float

    @property
    def size_bytes(self) -> int:
        return sum(c.size_bytes for c in self.chosen)


def frontier(
    options: Sequence[Option],
    oracle: CostOracle,
    workload: Workload,
    *,
    points: int = FRONTIER_POINTS,
    max_indexes: int = MAX_RECOMMENDATIONS,
) -> list[FrontierPoint]:
    """The cost-vs-size curve: the set chosen at growing budgets, from the smallest option
    to the unconstrained set's size, and the workload's cost with each relative to today.

    Never rising: a set that fits one budget fits every larger one, so a point whose own
    greedy choice does worse than the point before keeps that one's set.
    """
    unconstrained = select(options, oracle, workload, max_indexes=max_indexes)
    top = sum(c.size_bytes for c in unconstrained.chosen)
    sizes = [o.size_bytes for o in options if o.size_bytes > 0]
    if top <= 0 or not sizes:
        return []
    low = min(min(sizes), top)
    steps = max(points - 1, 1)
    budgets = sorted({round(low * (top / low) ** (i / steps)) for i in range(steps)} | {top})
    today = _workload_cost(workload, workload.base)
    curve: list[FrontierPoint] = []
    for budget in budgets:
        chosen = select(options, oracle, workload, budget_bytes=budget, max_indexes=max_indexes)
        tried = [chosen, unconstrained] if budget == top else [chosen]
        point = min(
            (
                FrontierPoint(budget, s.chosen, _workload_cost(workload, s.costs) / today)
                for s in tried
            ),
            key=lambda p: p.relative_cost,
        )
        if curve and curve[-1].relative_cost <= point.relative_cost:
            point = FrontierPoint(budget, curve[-1].chosen, curve[-1].relative_cost)
        curve.append(point)
    return curve


def _workload_cost(workload: Workload, costs: Mapping[int, float]) -> float:
    return sum(workload.calls[q] * costs.get(q, base) for q, base in workload.base.items()) or 1.0


def prune(selection: Selection, oracle: CostOracle, workload: Workload) -> Selection:
    """Drop a chosen index whose work the others already do (a wider composite, say)."""
    kept = list(selection.chosen)
    current = dict(selection.costs)
    for item in sorted(selection.chosen, key=lambda c: len(c.candidate.keys)):
        if item.estimated is not None or len(kept) < 2:
            continue
        relevant = workload.relevant[item.candidate]
        others = [c.candidate for c in kept if c.estimated is None and c is not item]
        costing = oracle.costs(relevant, others)
        after = {
            qid: costing.costs[qid].total if qid in costing.costs else math.inf for qid in relevant
        }
        before = {qid: current[qid] for qid in relevant}
        # Redundant when the others now do (nearly) all it did when it was picked, or all
        # but a sliver of what its queries cost.
        loss = sum(workload.calls[q] * max(0.0, after[q] - before[q]) for q in relevant)
        changed = sum(
            workload.calls[q] * workload.base[q] for q in relevant if after[q] > before[q]
        )
        still_served = all(
            workload.serves(q, after[q]) for q in relevant if workload.serves(q, before[q])
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
            current.update(after)
    return Selection(tuple(kept), current)


def credit(selection: Selection, oracle: CostOracle, workload: Workload) -> list[Credit]:
    """Each chosen index with the queries it serves and what it does for them on its own.

    Which queries it serves: those whose plan uses it with the whole chosen set in place.
    What it does: their cost with this index alone, the way verification builds it, so
    an index that only helps next to another one does not take credit for that one.
    """
    chosen = selection.chosen
    relevant_all = set().union(*(workload.relevant[c.candidate] for c in chosen))
    together = oracle.costs(sorted(relevant_all), selection.hypothetical)
    served: dict[Candidate, set[int]] = defaultdict(set)
    for qid in sorted(relevant_all):
        cost = together.costs.get(qid)
        if cost is None or not workload.serves(qid, cost.total):
            continue
        # A correlated sub-select in an expression (CASE WHEN EXISTS ...) is planned both
        # ways and EXPLAIN shows only its hashed alternative: the plan is cheaper but
        # names no index. Each chosen index it could use is then measured alone.
        used = cost.uses or {c.candidate for c in chosen if qid in workload.relevant[c.candidate]}
        for candidate in used:
            served[candidate].add(qid)
    credits = []
    for item in chosen:
        if item.estimated is not None:
            per_query = {q: (workload.base[q], cost) for q, cost in item.estimated.items()}
            plans: Mapping[int, dict | None] = {}
            size = item.size_bytes
        else:
            per_query, plans = _alone(oracle, workload, item.candidate, served[item.candidate])
            size = together.sizes.get(item.candidate, 0)
            # The queries it serves on its own: where it only polished a plan another chosen
            # index made, that one takes the credit. Serving none on its own, it is worth
            # its upkeep only as part of a bundle one query needs together.
            alone = {q: costs for q, costs in per_query.items() if workload.serves(q, costs[1])}
            if alone:
                per_query = alone
            elif not item.in_bundle:
                continue
        if not per_query:
            continue
        main = max(per_query, key=lambda q: workload.calls[q] * (per_query[q][0] - per_query[q][1]))
        credits.append(Credit(item.candidate, per_query, main, plans.get(main), size))
    return credits


def _alone(
    oracle: CostOracle, workload: Workload, candidate: Candidate, queries: set[int]
) -> tuple[dict[int, tuple[float, float]], dict[int, dict | None]]:
    """(before, after) cost and the after-plan of each query with only this index added."""
    if not queries:
        return {}, {}
    costing = oracle.costs(sorted(queries), [candidate])
    per_query = {
        qid: (workload.base[qid], min(cost.total, workload.base[qid]))
        for qid, cost in costing.costs.items()
    }
    return per_query, {qid: cost.plan for qid, cost in costing.costs.items()}
