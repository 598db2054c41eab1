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


def test_under_a_budget_small_indexes_that_save_more_per_byte_beat_one_big_one():
    # (big) saves the most on its own but fills the budget; (x) and (y) together save more.
    big, x, y = index("big"), index("x"), index("y")
    sizes = {big: 100 * PAGE, x: 40 * PAGE, y: 40 * PAGE}
    oracle = TableOracle(
        {1: 1000.0, 2: 1000.0, 3: 1000.0},
        {
            (1, frozenset([big])): 10.0,
            (2, frozenset([x])): 10.0,
            (3, frozenset([y])): 10.0,
        },
        sizes=sizes,
    )
    work = workload(oracle, {1: 15, 2: 10, 3: 10})
    result = sel.select(singles(oracle, work), oracle, work, budget_bytes=100 * PAGE)
    assert set(chosen(result)) == {x, y}
    assert sum(c.size_bytes for c in result.chosen) <= 100 * PAGE


def test_a_budget_too_small_for_the_best_index_gets_the_best_set_that_fits():
    # By net per byte, (tiny) goes first and then (good) no longer fits; (good) alone
    # saves far more: the classic fix compares with the best single option that fits.
    tiny, good = index("tiny"), index("good")
    sizes = {tiny: 2 * PAGE, good: 90 * PAGE}
    oracle = TableOracle(
        {1: 1000.0, 2: 100_000.0},
        {(1, frozenset([tiny])): 100.0, (2, frozenset([good])): 100.0},
        sizes=sizes,
    )
    work = workload(oracle, {1: 10, 2: 1})
    result = sel.select(singles(oracle, work), oracle, work, budget_bytes=91 * PAGE)
    assert chosen(result) == [good]
    # With room for both, both.
    roomy = sel.select(singles(oracle, work), oracle, work, budget_bytes=92 * PAGE)
    assert set(chosen(roomy)) == {tiny, good}


def test_a_wider_index_is_kept_only_where_its_extra_pages_pay():
    # (a, b, c) saves a little more than its prefix (a, b) for 500 more pages: the prefix.
    ab, abc = index("a", "b"), index("a", "b", "c")
    sizes = {ab: 100 * PAGE, abc: 600 * PAGE}
    entries = {(1, frozenset([ab])): 60.0, (1, frozenset([abc])): 50.0}
    oracle = TableOracle({1: 10_000.0}, entries, sizes=sizes)
    work = workload(oracle, {1: 10})  # 100 more saved, 500 pages more: below the bar
    assert chosen(sel.select(singles(oracle, work), oracle, work)) == [ab]
    # Called a thousand times, the third column's 10 per call pays for its pages.
    busy = workload(oracle, {1: 1000})
    assert sel.MIN_NET_PER_PAGE * 500 < 1000 * 10.0
    assert chosen(sel.select(singles(oracle, busy), oracle, busy)) == [abc]


def test_narrower_variants_are_prefixes_without_include_or_partial_forms():
    wide = Candidate(TABLE, (IndexKey("a"), IndexKey("b")), include=("x",))
    assert sel.is_narrower(index("a"), wide)
    assert sel.is_narrower(index("a", "b"), wide)
    assert not sel.is_narrower(index("b"), wide)  # not a prefix
    assert not sel.is_narrower(wide, wide)
    assert not sel.is_narrower(Candidate(2, (IndexKey("a"),)), wide)  # another table
    partial = Candidate(TABLE, (IndexKey("a"),), where="flag IS NULL", where_column="flag")
    assert sel.is_narrower(partial, index("a"))
    assert not sel.is_narrower(index("a"), partial)
    # The partial form of a full index on the predicate's column and the rest.
    assert sel.is_narrower(partial, index("flag", "a"))
    assert not sel.is_narrower(partial, index("other", "a"))


def test_one_index_serving_two_queries_is_merged_in_where_two_would_cost_more():
    # (a) serves query 1, (a, b) serves both nearly as well as each alone: one index.
    a, ab, b = index("a"), index("a", "b"), index("b")
    sizes = {a: 30 * PAGE, ab: 40 * PAGE, b: 30 * PAGE}
    oracle = TableOracle(
        {1: 1000.0, 2: 1000.0},
        {
            (1, frozenset([a])): 10.0,
            (1, frozenset([ab])): 11.0,
            (2, frozenset([ab])): 10.0,
            (2, frozenset([b])): 10.0,
        },
        sizes=sizes,
    )
    work = workload(oracle, {1: 10, 2: 10})
    result = sel.prune(sel.select(singles(oracle, work), oracle, work), oracle, work)
    assert chosen(result) == [ab]
    # (a, b) and (a, c), where neither serves the other's query: two indexes stay.
    ac = index("a", "c")
    apart = TableOracle(
        {1: 1000.0, 2: 1000.0}, {(1, frozenset([ab])): 10.0, (2, frozenset([ac])): 10.0}
    )
    work = workload(apart, {1: 10, 2: 10})
    result = sel.prune(sel.select(singles(apart, work), apart, work), apart, work)
    assert set(chosen(result)) == {ab, ac}


def test_the_frontier_never_rises_and_ends_at_the_unconstrained_set():
    a, b, c = index("a"), index("b"), index("c")
    sizes = {a: 10 * PAGE, b: 50 * PAGE, c: 200 * PAGE}
    oracle = TableOracle(
        {1: 1000.0, 2: 1000.0, 3: 1000.0},
        {(1, frozenset([a])): 100.0, (2, frozenset([b])): 100.0, (3, frozenset([c])): 10.0},
        sizes=sizes,
    )
    work = workload(oracle, {1: 5, 2: 5, 3: 5})
    options = singles(oracle, work)
    curve = sel.frontier(options, oracle, work)
    assert 2 <= len(curve) <= sel.FRONTIER_POINTS
    budgets = [p.budget_bytes for p in curve]
    assert budgets == sorted(budgets) and budgets[0] == 10 * PAGE
    costs = [p.relative_cost for p in curve]
    assert costs == sorted(costs, reverse=True) and costs[0] < 1.0
    assert all(p.size_bytes <= p.budget_bytes for p in curve)
    unconstrained = sel.select(options, oracle, work)
    assert {x.candidate for x in curve[-1].chosen} == set(chosen(unconstrained)) == {a, b, c}
    assert budgets[-1] == 260 * PAGE
    assert costs[-1] == (5 * 100 + 5 * 100 + 5 * 10) / (3 * 5 * 1000)
    # Kept costings: the whole curve asks the oracle little beyond one selection.
    asked = len(oracle.asked)
    assert sel.frontier(options, oracle, work) == curve
    assert len(oracle.asked) - asked <= 3 * asked


def test_a_partial_form_that_serves_the_query_as_well_beats_the_full_index():
    # (status, created_at) against (created_at) WHERE status = 'pending': the full index
    # saves more (not a near tie), but not enough more for its 38,000 extra pages.
    full = index("status", "created_at")
    partial = Candidate(
        TABLE, (IndexKey("created_at"),), where="status = 'pending'", where_column="status"
    )
    sizes = {full: 40_000 * PAGE, partial: 2_000 * PAGE}
    oracle = TableOracle(
        {1: 10_000.0},
        {(1, frozenset([full])): 50.0, (1, frozenset([partial])): 1500.0},
        sizes=sizes,
    )
    work = workload(oracle, {1: 20})
    assert chosen(sel.select(singles(oracle, work), oracle, work)) == [partial]
    # Called fifty times as often, the full index's extra saving pays for its pages.
    busy = workload(oracle, {1: 1000})
    assert chosen(sel.select(singles(oracle, busy), oracle, busy)) == [full]
