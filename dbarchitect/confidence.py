"""How sure the agent is of one recommendation: a documented formula, never an LLM's guess.

    confidence = clamp(0, 1,
          0.35 * cost_reduction      # planner: 1 - cost_after / cost_before, clamped 0..1,
                                     #   of the measured query where one was measured
        + 0.35 * measured_speedup    # EXPLAIN ANALYZE: log10(ms_before / ms_after) / log10(10),
                                     #   clamped 0..1 (10x faster = 1); 0 when unmeasured or slower
        + 0.15 * workload_share      # the query's share of the workload's time / 10 %, clamped 0..1
        + 0.15 * past_outcomes)      # similar past optimizations: 0.5 + 0.5 * the similarity-
                                     #   weighted mean of their outcomes (applied with a gain +1,
                                     #   applied without one 0, regression or rejected -1);
                                     #   0.5 (neutral) when there are none

Why these weights: the two proofs (the planner's estimate and the measured run) carry most of
the weight, so a recommendation that was not measured tops out at 0.65 and never passes the
default pull-request threshold (0.8); the workload share says whether the fix matters; the
past outcomes let the team's approvals and rejections move the score of look-alikes.
"""

import math
from dataclasses import asdict, dataclass

WEIGHTS = {
    "cost_reduction": 0.35,
    "measured_speedup": 0.35,
    "workload_share": 0.15,
    "past_outcomes": 0.15,
}
# A measured speed-up this large (before / after) scores 1.
SPEEDUP_SATURATION = 10.0
# A query taking this share of the workload's total time scores 1.
WORKLOAD_SHARE_SATURATION = 0.10
FORMULA = (
    "clamp(0.35*cost_reduction + 0.35*measured_speedup + 0.15*workload_share "
    "+ 0.15*past_outcomes, 0, 1); cost_reduction = 1 - cost_after/cost_before "
    "(of the measured query where one was measured); "
    "measured_speedup = log10(ms_before/ms_after)/log10(10), 0 when unmeasured or slower; "
    "workload_share = share/0.10; past_outcomes = 0.5 + 0.5*weighted mean of similar "
    "past outcomes (gain +1, no gain 0, regression/rejected -1), 0.5 when none"
)


@dataclass(frozen=True)
class PastOutcome:
    """One similar past optimization: how close it is and how it turned out (-1..1)."""

    similarity: float
    signal: float


@dataclass(frozen=True)
class Component:
    value: float | None
    weight: float
    score: float


@dataclass(frozen=True)
class Confidence:
    total: float
    components: dict[str, Component]

    def breakdown(self) -> dict:
        """The JSON stored in OptimizationLog.confidence_breakdown."""
        return {
            "formula": FORMULA,
            "components": {name: asdict(part) for name, part in self.components.items()},
            "total": self.total,
        }


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def score_cost_reduction(cost_before: float | None, cost_after: float | None) -> Component:
    if not cost_before or cost_after is None or cost_before <= 0:
        return Component(value=None, weight=WEIGHTS["cost_reduction"], score=0.0)
    value = 1.0 - cost_after / cost_before
    return Component(value=value, weight=WEIGHTS["cost_reduction"], score=_clamp(value))


def score_measured_speedup(ms_before: float | None, ms_after: float | None) -> Component:
    weight = WEIGHTS["measured_speedup"]
    if ms_before is None or ms_after is None or ms_before <= 0:
        return Component(value=None, weight=weight, score=0.0)
    # A run that rounds to 0 ms is as fast as it gets: count it as the saturation speed-up.
    ratio = ms_before / ms_after if ms_after > 0 else SPEEDUP_SATURATION
    score = _clamp(math.log10(ratio) / math.log10(SPEEDUP_SATURATION)) if ratio > 1 else 0.0
    return Component(value=ratio, weight=weight, score=score)


def score_workload_share(share: float | None) -> Component:
    weight = WEIGHTS["workload_share"]
    if share is None or share < 0:
        return Component(value=None, weight=weight, score=0.0)
    return Component(value=share, weight=weight, score=_clamp(share / WORKLOAD_SHARE_SATURATION))


def score_past_outcomes(past: list[PastOutcome]) -> Component:
    weight = WEIGHTS["past_outcomes"]
    weighted = [(max(p.similarity, 0.0), p.signal) for p in past if p.similarity > 0]
    total_weight = sum(w for w, _ in weighted)
    if not total_weight:
        return Component(value=None, weight=weight, score=0.5)
    mean = sum(w * s for w, s in weighted) / total_weight
    return Component(value=mean, weight=weight, score=_clamp(0.5 + 0.5 * mean))


def confidence_compute(
    *,
    cost_before: float | None,
    cost_after: float | None,
    ms_before: float | None,
    ms_after: float | None,
    workload_share: float | None,
    past: list[PastOutcome],
) -> Confidence:
    components = {
        "cost_reduction": score_cost_reduction(cost_before, cost_after),
        "measured_speedup": score_measured_speedup(ms_before, ms_after),
        "workload_share": score_workload_share(workload_share),
        "past_outcomes": score_past_outcomes(past),
    }
    total = _clamp(sum(part.weight * part.score for part in components.values()))
    return Confidence(total=round(total, 4), components=components)
