"""What staff decide about a recommendation: approve, reject; and whether an apply paid off.

Applying an index is a background job (optimizations.applying). The next audit after an
apply compares the served queries' mean time before and after it (from pg_stat_statements
counters) and sets the outcome: gain, no_gain or regression.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dbarchitect.models import AuditRun, QuerySnapshot

from .models import OptimizationLog

Status = OptimizationLog.Status
# The longest reject reason kept; the API and the admin refuse longer ones.
MAX_REJECT_REASON_LENGTH = 2000


class DecisionError(Exception):
    """This decision is not allowed for this recommendation; str() says why."""


def _decide(log: OptimizationLog, *, allowed: tuple, to: str, user, action: str) -> None:
    if log.status not in allowed:
        names = " or ".join(str(s) for s in allowed)
        raise DecisionError(f"Cannot {action} a recommendation that is {log.status}; only {names}")
    log.status = to
    log.decided_by = user
    log.decided_at = timezone.now()


def recommendation_approve(*, recommendation: OptimizationLog, user) -> OptimizationLog:
    with transaction.atomic():
        log = OptimizationLog.objects.select_for_update().get(pk=recommendation.pk)
        _decide(log, allowed=(Status.PROPOSED,), to=Status.APPROVED, user=user, action="approve")
        log.save(update_fields=["status", "decided_by", "decided_at"])
    return log


def recommendation_reject(
    *, recommendation: OptimizationLog, user, reason: str = ""
) -> OptimizationLog:
    """Rejected recommendations are never proposed again for the same target."""
    with transaction.atomic():
        log = OptimizationLog.objects.select_for_update().get(pk=recommendation.pk)
        _decide(
            log,
            allowed=(Status.PROPOSED, Status.APPROVED),
            to=Status.REJECTED,
            user=user,
            action="reject",
        )
        log.details = {
            **(log.details or {}),
            "reject_reason": reason.strip()[:MAX_REJECT_REASON_LENGTH],
        }
        log.save(update_fields=["status", "decided_by", "decided_at", "details"])
    return log


def _mean_after(log: OptimizationLog, snapshots: list[QuerySnapshot]) -> float | None:
    """Mean ms of the served queries since the apply, from cumulative counters when possible."""
    baseline = (log.details or {}).get("apply_counters") or {}
    calls = total = 0.0
    for snap in snapshots:
        before = baseline.get(str(snap.queryid))
        if before and snap.cumulative_calls >= before[0]:
            calls += snap.cumulative_calls - before[0]
            total += snap.cumulative_total_time_ms - before[1]
        else:  # no baseline, or the stats were reset since: the audit's own delta
            calls += snap.calls
            total += snap.total_time_ms
    return total / calls if calls > 0 else None


def outcome_judge(*, before_ms: float, after_ms: float) -> str:
    """gain, no_gain or regression, with the thresholds from settings."""
    if after_ms <= before_ms * (1 - settings.DBARCHITECT_OUTCOME_MIN_GAIN):
        return "gain"
    if after_ms >= before_ms * (1 + settings.DBARCHITECT_OUTCOME_REGRESSION):
        return "regression"
    return "no_gain"


def recommendation_outcomes_check(*, audit: AuditRun) -> list[OptimizationLog]:
    """After an audit is recorded: judge the applied recommendations of its target."""
    pending = OptimizationLog.objects.filter(
        target_id=audit.target_id,
        status=Status.APPLIED,
        outcome="",
        applied_at__lt=audit.started_at,
    )
    judged = []
    for log in pending:
        snapshots = [s for s in audit.snapshots.all() if s.queryid in set(log.queryids)]
        before = (log.details or {}).get("mean_ms_before_apply") or log.measured_ms_before
        after = _mean_after(log, snapshots)
        if before is None or after is None:
            continue  # the queries did not run since the apply, or nothing to compare with
        log.mean_ms_after_apply = round(after, 4)
        log.outcome = outcome_judge(before_ms=before, after_ms=after)
        log.details = {
            **(log.details or {}),
            "outcome_check": {"audit_id": str(audit.id), "before_ms": before, "after_ms": after},
        }
        judged.append(log)
    OptimizationLog.objects.bulk_update(judged, ["mean_ms_after_apply", "outcome", "details"])
    return judged
