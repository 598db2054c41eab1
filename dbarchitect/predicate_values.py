"""What pg_qualstats says about a predicate, as the advisor asks it: which values to cost
and verify with, whether one rare value calls for a partial index, whether the values
used are selective enough for an index at all. Pure: QualStats in, answers out.
"""

from pgaccess.qualstats import ConstantUse, QualStat

# A predicate run with one value at least this share of the time is "always" that value...
PARTIAL_MIN_SHARE = 0.9
# ...and a partial index on it pays when that value keeps at most this share of the rows.
PARTIAL_MAX_SELECTIVITY = 0.05
# The values used keep at most this share of the rows on average: an index can serve them
# (past about a fifth of a table a sequential scan reads less).
SELECTIVE_MAX = 0.2
# Values costed and verified per predicate: the most used ones.
COSTING_VALUES = 5


def costing_values(qual: QualStat, *, limit: int = COSTING_VALUES) -> list[tuple[str, float]]:
    """The values the workload really runs the predicate with, most used first, each with
    its share of the uses, for costing and verification; values pg_qualstats cut or never
    saw (a generic plan's parameter) are left out, the shares are of all uses."""
    total = qual.occurrences
    return [(use.value, use.occurrences / total) for use in qual.constants if use.whole and total][
        :limit
    ]


def partial_index_value(
    qual: QualStat,
    *,
    min_share: float = PARTIAL_MIN_SHARE,
    max_selectivity: float = PARTIAL_MAX_SELECTIVITY,
) -> ConstantUse | None:
    """The one rare value an equality predicate is (nearly) always run with, for a
    partial index `WHERE column = value`; None when there is no such value."""
    if qual.operator != "=" or not qual.constants or not qual.occurrences:
        return None
    top = qual.constants[0]
    selectivity = top.selectivity
    if not top.whole or top.occurrences / qual.occurrences < min_share or selectivity is None:
        return None
    return top if selectivity <= max_selectivity else None


def values_selective(qual: QualStat, *, max_selectivity: float = SELECTIVE_MAX) -> bool | None:
    """Whether the values used keep few enough rows for an index, weighted by how often
    each is used (a flag queried for its rare value is, for its common one is not); None
    when pg_qualstats counted no rows for them (index conditions, IN lists)."""
    weighted = [
        (use.selectivity, use.occurrences) for use in qual.constants if use.selectivity is not None
    ]
    uses = sum(count for _, count in weighted)
    if not uses:
        return None
    return sum(selectivity * count for selectivity, count in weighted) / uses <= max_selectivity
