"""Before an audit records its recommendations: drop repeats, score and explain the rest.

Runs outside the recording transaction (embeddings and an LLM take a while); it only sets
fields on the unsaved OptimizationLogs, which `audit_record` then inserts in one statement.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from optimizations.models import OptimizationLog
from optimizations.services import SimilarOptimization, optimization_embed

from .confidence import confidence_compute
from .explain import rationale_write
from .memory import memory_similar, memory_split_repeats, past_outcomes

# Only the recommendations a person may build get an LLM's words; the rest speak for themselves.
LLM_KINDS = (OptimizationLog.Kind.INDEX, OptimizationLog.Kind.FK_INDEX)


@dataclass
class Review:
    new: list[OptimizationLog] = field(default_factory=list)
    repeats: list[OptimizationLog] = field(default_factory=list)

    @property
    def repeat_fingerprints(self) -> set[str]:
        return {log.fingerprint for log in self.repeats}


def workload_shares(stats: Sequence) -> tuple[dict[int, float], float]:
    """Total ms per queryid over every user, and the workload's total (collector QueryStats)."""
    per_query: dict[int, float] = defaultdict(float)
    for stat in stats:
        per_query[stat.queryid] += max(stat.total_time_ms, 0.0)
    return per_query, sum(per_query.values())


def _share(log: OptimizationLog, per_query: dict[int, float], total: float) -> float | None:
    if not log.queryids or total <= 0:
        return None
    return sum(per_query.get(queryid, 0.0) for queryid in log.queryids) / total


def _similar_summary(similar: list[SimilarOptimization]) -> list[dict]:
    return [
        {
            "id": str(item.optimization.pk),
            "similarity": round(item.similarity, 4),
            "status": item.optimization.status,
            "outcome": item.optimization.outcome,
            "recommendation": item.optimization.recommendation[:300],
        }
        for item in similar
    ]


def recommendations_review(
    *, target_id: int, logs: Sequence[OptimizationLog], stats: Sequence, use_llm: bool = True
) -> Review:
    """Split off repeats; give each new recommendation its confidence and rationale."""
    split = memory_split_repeats(target_id=target_id, logs=logs)
    review = Review(new=split.new, repeats=split.repeats)
    # One batched model call; the bulk insert reuses these embeddings.
    optimization_embed(review.new)
    per_query, total = workload_shares(stats)
    for log in review.new:
        similar = memory_similar(log=log)
        share = _share(log, per_query, total)
        cost_before, cost_after = _planner_costs(log)
        confidence = confidence_compute(
            cost_before=cost_before,
            cost_after=cost_after,
            ms_before=log.measured_ms_before,
            ms_after=log.measured_ms_after,
            workload_share=share,
            past=past_outcomes(similar),
        )
        log.confidence = confidence.total
        log.confidence_breakdown = confidence.breakdown()
        rationale = rationale_write(
            log=log,
            similar=similar,
            workload_share=share,
            use_llm=use_llm and log.kind in LLM_KINDS,
        )
        log.explanation = rationale.text
        log.details = {
            **(log.details or {}),
            "workload_share": share,
            "similar": _similar_summary(similar),
            "rationale_source": rationale.source,
            "rationale_note": rationale.note,
        }
    return review


def _planner_costs(log: OptimizationLog) -> tuple[float | None, float | None]:
    """The planner's before / after for the query verification measured, where it measured
    one: the two proofs then speak of the same query, and a second query the index also
    helps (less) does not lower its confidence. Otherwise the whole estimate."""
    details = log.details or {}
    measured = details.get("per_query_ms") or {}
    costs = details.get("per_query_cost") or {}
    if len(measured) == 1:
        [queryid] = measured
        if queryid in costs:
            before, after = costs[queryid]
            return before, after
    return log.estimated_cost_before, log.estimated_cost_after
