"""A recommendation's impact: the workload time it saves per week (calls per week x ms saved).

One pure function over what a recommendation stores in `details` (the served queries with
their calls and mean time, the planner's cost per query, the measured milliseconds per query),
so the audit that records it and the migration that backfills older rows compute it alike.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from .models import ImpactBasis

DAY_SECONDS = 24 * 3600
WEEK_SECONDS = 7 * DAY_SECONDS
# A window shorter than a day is scaled as a day: a burst (a demo run, a batch job) is not
# a weekly rate, and extrapolating minutes to a week would rank bursts above steady load.
MIN_WINDOW_SECONDS = DAY_SECONDS


@dataclass(frozen=True)
class Impact:
    ms_per_week: float
    basis: str
    calls_per_week: float


def calls_per_week(calls: float, window_seconds: float | None) -> float:
    """The calls of the collection window as a weekly rate (an unknown window: one week)."""
    if window_seconds is None:
        return float(calls)
    return calls * WEEK_SECONDS / max(window_seconds, MIN_WINDOW_SECONDS)


def impact_compute(*, details: Mapping, window_seconds: float | None) -> Impact:
    """Sum over the served queries of calls per week x ms saved per call.

    A query measured before and after counts its measured saving; any other its mean time
    times the planner's cost reduction, and then the whole impact reads as estimated.
    """
    queries = details.get("queries") or []
    costs = details.get("per_query_cost") or {}
    measured = details.get("per_query_ms") or {}
    total = weekly_calls = 0.0
    all_measured = bool(queries)
    for query in queries:
        key = str(query.get("queryid"))
        rate = calls_per_week(query.get("calls") or 0, window_seconds)
        if key in measured:
            before, after = measured[key]
            saved = max(before - after, 0.0)
        else:
            all_measured = False
            before, after = costs.get(key) or (0.0, 0.0)
            reduction = max(1.0 - after / before, 0.0) if before else 0.0
            saved = (query.get("mean_ms") or 0.0) * reduction
        total += rate * saved
        weekly_calls += rate
    if not queries:
        return Impact(ms_per_week=0.0, basis=ImpactBasis.NONE, calls_per_week=0.0)
    basis = ImpactBasis.MEASURED if all_measured else ImpactBasis.ESTIMATED
    return Impact(ms_per_week=round(total, 3), basis=basis, calls_per_week=round(weekly_calls, 1))


def impact_fields(*, details: dict, window_seconds: float | None) -> dict:
    """An OptimizationLog's `impact` and `impact_basis` for these details, which get the
    calls per week and the window it was judged over (`details["impact"]`)."""
    impact = impact_compute(details=details, window_seconds=window_seconds)
    details["impact"] = {"calls_per_week": impact.calls_per_week, "window_seconds": window_seconds}
    return {"impact": impact.ms_per_week, "impact_basis": impact.basis}
