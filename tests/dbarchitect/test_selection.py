"""The selection on its own: greedy choice, pruning and credit over a dictionary of costs.

No database: `TableOracle` answers the cost questions HypoPG answers in an audit, from a
table of "this query costs this much once these indexes exist".
"""

from collections.abc import Collection, Mapping, Sequence

from dbarchitect.advisor import selection as sel
from dbarchitect.advisor.selection import Costing, Option, QueryCost, Workload
from dbarchitect.candidates import Candidate, IndexKey

TABLE = 1
PAGE = sel.PAGE_BYTES


def index(*columns: str) -> Candidate:
    return Candidate(TABLE, tuple(IndexKey(c) for c in columns))


class TableOracle:
    """A query costs its cheapest entry whose indexes are all present (else its base cost);
    the plan "uses" that entry's indexes. Records every question asked."""

    def __init__(
        self,
        base: Mapping[int, float],
        entries: Mapping[tuple[int, frozenset[Candidate]], float],
        *,
        sizes: Mapping[Candidate, int] | None = None,
        refused: Collection[Candidate] = (),
    ):
        self.base = base
        self.entries = entries
        self.sizes = sizes or {}
        self.refused = frozenset(refused)
        self.asked: list[tuple[frozenset[int], frozenset[Candidate]]] = []

    def costs(self, queries: Collection[int], indexes: Sequence[Candidate]) -> Costing:
        present = frozenset(indexes)
        self.asked.append((frozenset(queries), present))
        if present & self.refused:
            return Costing({}, refused=present & self.refused)
        result = {}
        for qid in queries:
            cost, uses = self.base[qid], frozenset()
            for (entry_qid, needs), entry_cost in self.entries.items():
                if entry_qid == qid and needs <= present and entry_cost < cost:
                    cost, uses = entry_cost, needs
            result[qid] = QueryCost(cost, {"Node Type": "Index Scan"}, uses)
        return Costing(result, {c: self.sizes.get(c, PAGE) for c in present})


def workload(oracle: TableOracle, calls: Mapping[int, int], **kwargs) -> Workload:
    """Every query served once an index halves its cost; relevant = what its entries name."""
    relevant: dict[Candidate, set[int]] = {}
    for qid, needs in oracle.entries:
        for candidate in needs:
            relevant.setdefault(candidate, set()).add(qid)
    return Workload(
        calls=calls,
        base=oracle.base,
        target={qid: cost * 0.5 for qid, cost in oracle.base.items()},
        relevant={c: frozenset(q) for c, q in relevant.items()},
        **kwargs,
    )


def singles(oracle: TableOracle, work: Workload) -> list[Option]:
    return [
        Option(frozenset([c]), work.relevant[c], oracle.sizes.get(c, PAGE)) for c in work.relevant
    ]


def chosen(selection: sel.Selection) -> list[Candidate]:
    return [c.candidate for c in selection.chosen]


def test_the_option_that_saves_the_most_is_taken_and_each_query_gets_its_own():
    a, b, c = index("a"), index("b"), index("c")
    oracle = TableOracle(
        {1: 1000.0, 2: 500.0},
        {(1, frozenset([a])): 100.0, (1, frozenset([b])): 300.0, (2, frozenset([c])): 50.0},
    )
    work = workload(oracle, {1: 10, 2: 1})
    result = sel.select(singles(oracle, work), oracle, work)
    assert chosen(result) == [a, c]  # b would serve query 1 too, but a does it better
    assert result.costs == {1: 100.0, 2: 50.0}
    assert result.chosen[0].gain == 10 * 900.0


def test_an_index_another_makes_useless_is_not_chosen_after_re_costing():
    # (a, b) serves both queries; (a) alone serves query 1 nearly as well, and on its own
    # it is a good option. Once (a, b) is in, re-costing (a) finds it saves nothing.
    a, ab = index("a"), index("a", "b")
    oracle = TableOracle(
        {1: 1000.0, 2: 1000.0},
        {(1, frozenset([a])): 110.0, (1, frozenset([ab])): 100.0, (2, frozenset([ab])): 100.0},
    )
    work = workload(oracle, {1: 1, 2: 1})
    result = sel.select(singles(oracle, work), oracle, work)
    assert chosen(result) == [ab]
    # (a) was asked again with (a, b) present before the loop gave up on it.
    assert (work.relevant[a], frozenset([ab, a])) in oracle.asked


def test_two_indexes_that_only_pay_together_are_chosen_as_a_bundle_and_credited():
    # A join: neither side's index alone changes the plan; both together do.
    left, right = index("left_id"), index("right_id")
    oracle = TableOracle({1: 1000.0}, {(1, frozenset([left, right])): 10.0})
    work = workload(oracle, {1: 5})
    options = [*singles(oracle, work), Option(frozenset([left, right]), frozenset([1]), 2 * PAGE)]
    result = sel.select(options, oracle, work)
    assert set(chosen(result)) == {left, right}
    assert all(c.in_bundle for c in result.chosen)
    credits = sel.credit(result, oracle, work)
    # Alone, neither serves the query; as a bundle each is kept, with what it does alone.
    assert {c.candidate for c in credits} == {left, right}
    assert all(c.per_query == {1: (1000.0, 1000.0)} for c in credits)


def test_an_index_that_only_polishes_another_ones_plan_is_not_credited():
    # (b) lowers query 1 further, but only once (a) is there: not on its own. (The lazy
    # greedy would not take it after (a), whose gain it needs; a selection made with it
    # in, say by a budget's frontier, still credits only what each index does alone.)
    a, b = index("a"), index("b")
    oracle = TableOracle({1: 1000.0}, {(1, frozenset([a])): 100.0, (1, frozenset([a, b])): 20.0})
    work = workload(oracle, {1: 100})
    both = sel.Selection((sel.Chosen(a, PAGE), sel.Chosen(b, PAGE)), {1: 20.0})
    credits = sel.credit(both, oracle, work)
    assert [c.candidate for c in credits] == [a]
    assert credits[0].per_query == {1: (1000.0, 100.0)} and credits[0].main == 1
    assert credits[0].plan_after == {"Node Type": "Index Scan"}


def test_a_narrow_index_a_wider_one_chosen_later_does_the_work_of_is_pruned():
    # (a) is taken first for the heavy query 1; (a, b) then pays for query 2 and serves
    # query 1 almost as well: without (a), query 1 loses less than 5 % of (a)'s gain.
    a, ab = index("a"), index("a", "b")
    oracle = TableOracle(
        {1: 1000.0, 2: 100.0},
        {(1, frozenset([a])): 10.0, (1, frozenset([ab])): 20.0, (2, frozenset([ab])): 40.0},
    )
    work = workload(oracle, {1: 10, 2: 1})
    result = sel.select(singles(oracle, work), oracle, work)
    assert chosen(result) == [a, ab]
    pruned = sel.prune(result, oracle, work)
    assert chosen(pruned) == [ab]
    assert pruned.costs == {1: 20.0, 2: 40.0}


def test_an_index_that_is_not_redundant_survives_pruning():
    a, b = index("a"), index("b")
    oracle = TableOracle(
        {1: 1000.0, 2: 1000.0}, {(1, frozenset([a])): 10.0, (2, frozenset([b])): 10.0}
    )
    work = workload(oracle, {1: 1, 2: 1})
    result = sel.prune(sel.select(singles(oracle, work), oracle, work), oracle, work)
    assert set(chosen(result)) == {a, b}


def test_near_ties_go_to_the_index_that_saves_more_per_byte():
    # (a, b) saves slightly more in all, (a) nearly as much at a tenth of the size.
    a, ab = index("a"), index("a", "b")
    sizes = {a: 10 * PAGE, ab: 1000 * PAGE}
    oracle = TableOracle(
        {1: 1000.0}, {(1, frozenset([a])): 100.0, (1, frozenset([ab])): 90.0}, sizes=sizes
    )
    work = workload(oracle, {1: 10})
    result = sel.select(singles(oracle, work), oracle, work)
    # Both nets are within NEAR_TIE; afterwards the 10-point gain of (a, b) does not pay
    # for its 1,000 pages.
    assert chosen(result) == [a]


def test_the_writes_a_table_takes_are_charged_to_each_new_index_on_it():
    a = index("a")
    oracle = TableOracle({1: 1000.0}, {(1, frozenset([a])): 100.0})
    read_only = workload(oracle, {1: 10})
    written = workload(oracle, {1: 10}, rows_written={TABLE: 10_000.0})
    assert chosen(sel.select(singles(oracle, read_only), oracle, read_only)) == [a]
    assert chosen(sel.select(singles(oracle, written), oracle, written)) == []


def test_an_index_hypopg_refuses_is_never_chosen():
    a, b = index("a"), index("b")
    oracle = TableOracle(
        {1: 1000.0}, {(1, frozenset([a])): 10.0, (1, frozenset([b])): 400.0}, refused=[a]
    )
    work = workload(oracle, {1: 1})
    assert chosen(sel.select(singles(oracle, work), oracle, work)) == [b]


def test_an_estimated_option_is_weighed_on_its_estimate_without_asking_the_oracle():
    gin = Candidate(TABLE, (IndexKey("tags"),), "gin")
    oracle = TableOracle({1: 1000.0}, {})
    work = Workload({1: 3}, {1: 1000.0}, {1: 500.0}, {gin: frozenset([1])})
    option = Option(frozenset([gin]), frozenset([1]), 4 * PAGE, estimated={1: 30.0})
    result = sel.select([option], oracle, work)
    assert chosen(result) == [gin] and result.costs == {1: 30.0}
    assert oracle.asked == []
    (credit,) = sel.credit(result, oracle, work)
    assert credit.per_query == {1: (1000.0, 30.0)} and credit.size_bytes == 4 * PAGE


def test_no_more_than_max_recommendations_are_chosen():
    many = {qid: index(f"c{qid}") for qid in range(sel.MAX_RECOMMENDATIONS + 10)}
    oracle = TableOracle(
        {qid: 1000.0 + qid for qid in many},
        {(qid, frozenset([c])): 1.0 for qid, c in many.items()},
    )
    work = workload(oracle, dict.fromkeys(many, 1))
    result = sel.select(singles(oracle, work), oracle, work)
    assert len(result.chosen) == sel.MAX_RECOMMENDATIONS
    # The most costly queries' indexes first.
    assert chosen(result)[0] == many[max(many)]


def test_a_budget_passes_over_the_options_that_do_not_fit_and_none_keeps_every_one():
    a, b = index("a"), index("b")
    sizes = {a: 100 * PAGE, b: 10 * PAGE}
    oracle = TableOracle(
        {1: 1000.0, 2: 1000.0},
        {(1, frozenset([a])): 10.0, (2, frozenset([b])): 500.0},
        sizes=sizes,
    )
    work = workload(oracle, {1: 10, 2: 1})
    unlimited = sel.select(singles(oracle, work), oracle, work)
    assert chosen(unlimited) == [a, b]
    assert chosen(sel.select(singles(oracle, work), oracle, work, budget_bytes=None)) == [a, b]
    tight = sel.select(singles(oracle, work), oracle, work, budget_bytes=50 * PAGE)
    assert chosen(tight) == [b]
    assert chosen(sel.select(singles(oracle, work), oracle, work, budget_bytes=PAGE)) == []
