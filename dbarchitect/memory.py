"""The agent's memory (RAG): never repeat a recommendation, learn from similar past ones.

A recommendation repeats when the same target already has one with the same fingerprint
that is proposed, approved, applying, applied or rejected (superseded ones may come back).
Similar past optimizations are the nearest stored ones by embedding (cosine, HNSW), over every
target: what the team decided on a look-alike elsewhere is still evidence.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

from optimizations.models import OptimizationLog
from optimizations.services import (
    SimilarOptimization,
    optimization_embed,
    optimization_list_near_vector,
)

from .confidence import PastOutcome

Status = OptimizationLog.Status
# A recommendation in one of these states is never made again for the same target.
REPEAT_STATUSES = (
    Status.PROPOSED,
    Status.APPROVED,
    Status.APPLYING,
    Status.APPLIED,
    Status.REJECTED,
)


@dataclass
class MemorySplit:
    new: list[OptimizationLog] = field(default_factory=list)
    repeats: list[OptimizationLog] = field(default_factory=list)


def memory_split_repeats(*, target_id: int, logs: Iterable[OptimizationLog]) -> MemorySplit:
    """Keep the recommendations this target has not seen; also drop repeats within the batch."""
    logs = list(logs)
    seen = set(
        OptimizationLog.objects.filter(
            target_id=target_id,
            fingerprint__in=[log.fingerprint for log in logs if log.fingerprint],
            status__in=REPEAT_STATUSES,
        ).values_list("fingerprint", flat=True)
    )
    split = MemorySplit()
    for log in logs:
        if not log.fingerprint:
            raise ValueError(f"Recommendation {log.recommendation[:60]!r} has no fingerprint")
        if log.fingerprint in seen:
            split.repeats.append(log)
        else:
            seen.add(log.fingerprint)
            split.new.append(log)
    return split


def memory_similar(
    *,
    log: OptimizationLog,
    limit: int | None = None,
    min_similarity: float | None = None,
) -> list[SimilarOptimization]:
    """Stored optimizations close to this (embedded) one, closest first."""
    if log.embedding is None:
        optimization_embed([log])
    limit = settings.DBARCHITECT_MEMORY_LIMIT if limit is None else limit
    if min_similarity is None:
        min_similarity = settings.DBARCHITECT_MEMORY_MIN_SIMILARITY
    queryset = OptimizationLog.objects.exclude(pk=log.pk)
    if log.audit_id:
        queryset = queryset.exclude(audit_id=log.audit_id)
    found = optimization_list_near_vector(vector=log.embedding, limit=limit, queryset=queryset)
    return [item for item in found if item.similarity >= min_similarity]


def outcome_signal(optimization: OptimizationLog) -> float | None:
    """How a past optimization turned out, -1..1; None while nobody has decided."""
    if optimization.status == Status.REJECTED or optimization.outcome == "regression":
        return -1.0
    if optimization.outcome == "gain":
        return 1.0
    if optimization.outcome == "no_gain":
        return 0.0
    if optimization.status in (Status.APPROVED, Status.APPLYING, Status.APPLIED):
        return 0.5  # the team trusted it; the outcome is not measured yet
    return None


def past_outcomes(similar: list[SimilarOptimization]) -> list[PastOutcome]:
    """The decided look-alikes as inputs to the confidence formula."""
    result = []
    for item in similar:
        signal = outcome_signal(item.optimization)
        if signal is not None:
            result.append(PastOutcome(similarity=item.similarity, signal=signal))
    return result
