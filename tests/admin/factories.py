"""Audits, snapshots and recommendations as an audit would leave them, for the admin tests."""

import datetime

from django.utils import timezone

from dbarchitect.models import AuditRun, QuerySnapshot, Target
from optimizations.models import OptimizationLog
from optimizations.services import optimization_bulk_store

# A real EXPLAIN (FORMAT JSON) shape: a sequential scan before, an index scan after.
PLAN_BEFORE = [
    {
        "Plan": {
            "Node Type": "Seq Scan",
            "Relation Name": "demo_behavior_log",
            "Alias": "demo_behavior_log",
            "Startup Cost": 0.0,
            "Total Cost": 18334.0,
            "Plan Rows": 12,
            "Filter": "(user_id = $1)",
        }
    }
]
PLAN_AFTER = [
    {
        "Plan": {
            "Node Type": "Index Scan",
            "Index Name": "demo_behavior_log_user_ts_idx",
            "Relation Name": "demo_behavior_log",
            "Alias": "demo_behavior_log",
            "Startup Cost": 0.42,
            "Total Cost": 52.1,
            "Plan Rows": 12,
            "Index Cond": "(user_id = $1)",
        }
    }
]
BREAKDOWN = {
    "formula": "clamp(0.35*cost_reduction + 0.35*measured_speedup + ...)",
    "components": {
        "cost_reduction": {"value": 0.997, "weight": 0.35, "score": 0.997},
        "measured_speedup": {"value": 1.2, "weight": 0.35, "score": 1.0},
        "workload_share": {"value": 0.4, "weight": 0.15, "score": 1.0},
        "past_outcomes": {"value": None, "weight": 0.15, "score": 0.5},
    },
    "total": 0.924,
}


def default_target() -> Target:
    """The migration's `default` target (recreated after a transactional test's flush)."""
    target, _ = Target.objects.get_or_create(name="default", defaults={"allow_verify": True})
    return target


def make_audit(
    *,
    target: Target | None = None,
    days_ago: float = 0,
    status: str = AuditRun.Status.SUCCEEDED,
    slow: list[tuple[int, str, float]] = (),
    fast: list[tuple[int, str, float]] = (),
    skipped: list | None = None,
) -> AuditRun:
    """An audit `days_ago` with snapshots: (queryid, query, mean ms) for slow and fast ones."""
    started = timezone.now() - datetime.timedelta(days=days_ago)
    audit = AuditRun.objects.create(
        target=target or default_target(),
        status=status,
        queries_collected=len(slow) + len(fast),
        queries_analyzed=len(slow),
        skipped=skipped or [],
        phase_seconds={"collect": 0.12, "advise": 1.5},
    )
    finished = started + datetime.timedelta(seconds=42) if status != "running" else None
    AuditRun.objects.filter(pk=audit.pk).update(started_at=started, finished_at=finished)
    audit.refresh_from_db()
    rows = [(*row, True) for row in slow] + [(*row, False) for row in fast]
    QuerySnapshot.objects.bulk_create(
        QuerySnapshot(
            audit=audit,
            queryid=queryid,
            query=query,
            calls=100,
            total_time_ms=mean * 100,
            mean_time_ms=mean,
            rows=100,
            shared_blks_hit=10,
            shared_blks_read=5,
            cumulative_calls=100,
            cumulative_total_time_ms=mean * 100,
            cumulative_rows=100,
            cumulative_shared_blks_hit=10,
            cumulative_shared_blks_read=5,
            is_slow=is_slow,
            tables=["demo_behavior_log"],
        )
        for queryid, query, mean, is_slow in rows
    )
    return audit


def make_recommendation(
    *,
    audit: AuditRun | None = None,
    query: str = "SELECT * FROM demo_behavior_log WHERE user_id = $1 ORDER BY timestamp DESC",
    recommendation: str = "Create index on demo_behavior_log (user_id, timestamp)",
    ddl: str = "CREATE INDEX demo_behavior_log_user_ts_idx ON demo_behavior_log "
    "(user_id, timestamp)",
    confidence: float = 0.92,
    status: str = OptimizationLog.Status.PROPOSED,
    kind: str = OptimizationLog.Kind.INDEX,
    cost: tuple[float, float] | None = (18334.0, 52.1),
    measured: tuple[float, float] | None = (85.0, 0.9),
    impact: float = 0.0,
    impact_basis: str = OptimizationLog.ImpactBasis.NONE,
    size_bytes: int | None = None,
) -> OptimizationLog:
    """One recommendation with a real embedding, plans and a confidence breakdown."""
    log = OptimizationLog(
        query_text=query,
        recommendation=recommendation,
        performance_gain=99.0,
        confidence=confidence,
        impact=impact,
        impact_basis=impact_basis,
        index_size_bytes=size_bytes,
        status=status,
        kind=kind,
        ddl=ddl,
        target=audit.target if audit else default_target(),
        audit=audit,
        table_name="public.demo_behavior_log",
        columns=["user_id", "timestamp"],
        estimated_cost_before=cost[0] if cost else None,
        estimated_cost_after=cost[1] if cost else None,
        measured_ms_before=measured[0] if measured else None,
        measured_ms_after=measured[1] if measured else None,
        plan_before=PLAN_BEFORE,
        plan_after=PLAN_AFTER,
        confidence_breakdown=BREAKDOWN,
        explanation="Every call scans the whole table for one user's rows.",
        fingerprint=ddl,
    )
    (stored,) = optimization_bulk_store([log])
    return stored
