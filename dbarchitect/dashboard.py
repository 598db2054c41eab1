"""Selectors for the admin dashboard: what the agent saw and proposed, read in a few queries.

Every function reads; none writes. The admin view calls `dashboard_data` and renders it;
the charts get the same numbers through `Dashboard.charts()` as JSON.
"""

import datetime
import logging
import uuid
from dataclasses import dataclass, field

from celery import current_app
from celery.result import AsyncResult
from django.db.models import Avg, Count, ExpressionWrapper, F, FloatField, IntegerField, Q
from django.db.models.functions import Floor, Least, TruncDate
from django.utils import timezone
from redis.exceptions import RedisError

from optimizations.models import OptimizationLog

from .models import AuditRun, QuerySnapshot

# "Last week" is the newest finished audit at least this old, per target.
COMPARE_AFTER = datetime.timedelta(days=7)
# The gain chart covers this many days back from now.
GAIN_WINDOW_DAYS = 90
# The confidence histogram splits 0..1 into this many equal bins.
CONFIDENCE_BINS = 10
logger = logging.getLogger(__name__)

# The slow-query comparison lists the heaviest queries of the newest audits, this many.
TOP_SLOW_QUERIES = 10
# The dashboard opens with this many open recommendations, the largest time saved first.
TOP_IMPACT = 5
# Recommendations still waiting for a decision or an apply.
OPEN_STATUSES = (OptimizationLog.Status.PROPOSED, OptimizationLog.Status.APPROVED)


@dataclass(frozen=True)
class SlowQuery:
    queryid: int
    target: str
    query: str
    calls: int
    mean_ms_now: float
    mean_ms_last_week: float | None


@dataclass(frozen=True)
class SlowQueryComparison:
    now: int
    last_week: int | None
    queries: list[SlowQuery]


@dataclass(frozen=True)
class GainPoint:
    day: datetime.date
    estimated_percent: float | None
    measured_percent: float | None
    recommendations: int


@dataclass(frozen=True)
class ConfidenceBin:
    low: float
    high: float
    count: int


@dataclass
class Dashboard:
    latest_audit: AuditRun | None
    slow_queries: SlowQueryComparison
    by_status: dict[str, int]
    gain: list[GainPoint]
    confidence: list[ConfidenceBin]
    running: list[AuditRun] = field(default_factory=list)
    top_impact: list[OptimizationLog] = field(default_factory=list)

    @property
    def has_gain(self) -> bool:
        """Whether any recommendation of the window was costed or measured (else: no chart)."""
        return any(
            p.estimated_percent is not None or p.measured_percent is not None for p in self.gain
        )

    @property
    def recommendations_total(self) -> int:
        return sum(self.by_status.values())

    def charts(self) -> dict:
        """The chart series, JSON-ready (the template passes them through json_script)."""
        return {
            "byStatus": {"labels": list(self.by_status), "values": list(self.by_status.values())},
            "gain": {
                "labels": [point.day.isoformat() for point in self.gain],
                "estimated": [point.estimated_percent for point in self.gain],
                "measured": [point.measured_percent for point in self.gain],
            },
            "confidence": {
                "labels": [f"{b.low:.1f}-{b.high:.1f}" for b in self.confidence],
                "values": [b.count for b in self.confidence],
            },
            "slowQueries": {
                "labels": [f"#{q.queryid}" for q in self.slow_queries.queries],
                "queries": [q.query[:200] for q in self.slow_queries.queries],
                "now": [q.mean_ms_now for q in self.slow_queries.queries],
                "lastWeek": [q.mean_ms_last_week for q in self.slow_queries.queries],
            },
        }


def dashboard_latest_audits(*, before: datetime.datetime | None = None) -> list[AuditRun]:
    """The newest finished audit of each target (started at or before `before`, if given)."""
    audits = AuditRun.objects.filter(status=AuditRun.Status.SUCCEEDED)
    if before is not None:
        audits = audits.filter(started_at__lte=before)
    newest = audits.order_by("target_id", "-started_at").distinct("target_id")
    return list(AuditRun.objects.filter(pk__in=newest.values("pk")).select_related("target"))


def dashboard_slow_queries(*, now: datetime.datetime) -> SlowQueryComparison:
    """Slow queries in each target's newest audit against its newest audit a week earlier."""
    current = dashboard_latest_audits()
    previous = dashboard_latest_audits(before=now - COMPARE_AFTER)
    slow_now = QuerySnapshot.objects.filter(audit__in=current, is_slow=True)
    top = list(
        slow_now.select_related("audit__target").order_by("-total_time_ms")[:TOP_SLOW_QUERIES]
    )
    # One row per query and role (pg_stat_statements keys on both), as in the newest audit.
    then = {
        (row["audit__target_id"], row["queryid"], row["userid"]): row["mean_time_ms"]
        for row in QuerySnapshot.objects.filter(
            audit__in=previous, queryid__in=[q.queryid for q in top]
        ).values("audit__target_id", "queryid", "userid", "mean_time_ms")
    }
    queries = [
        SlowQuery(
            queryid=snap.queryid,
            target=snap.audit.target.name,
            query=snap.query,
            calls=snap.calls,
            mean_ms_now=round(snap.mean_time_ms, 3),
            mean_ms_last_week=_round(then.get((snap.audit.target_id, snap.queryid, snap.userid))),
        )
        for snap in top
    ]
    last_week = (
        QuerySnapshot.objects.filter(audit__in=previous, is_slow=True).count() if previous else None
    )
    return SlowQueryComparison(now=slow_now.count(), last_week=last_week, queries=queries)


def dashboard_recommendations_by_status() -> dict[str, int]:
    """Every status in its lifecycle order, zero included, so the chart keeps its shape."""
    counts = dict(OptimizationLog.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in OptimizationLog.Status.values}


def dashboard_gain_over_time(*, now: datetime.datetime, days: int = GAIN_WINDOW_DAYS) -> list:
    """Per day: mean estimated gain (planner cost) and mean measured gain (EXPLAIN ANALYZE)."""
    estimated = ExpressionWrapper(
        100.0
        * (F("estimated_cost_before") - F("estimated_cost_after"))
        / F("estimated_cost_before"),
        output_field=FloatField(),
    )
    measured = ExpressionWrapper(
        100.0 * (F("measured_ms_before") - F("measured_ms_after")) / F("measured_ms_before"),
        output_field=FloatField(),
    )
    rows = (
        OptimizationLog.objects.filter(created_at__gte=now - datetime.timedelta(days=days))
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            estimated=Avg(
                estimated,
                filter=Q(estimated_cost_before__gt=0, estimated_cost_after__isnull=False),
            ),
            measured=Avg(
                measured, filter=Q(measured_ms_before__gt=0, measured_ms_after__isnull=False)
            ),
            n=Count("id"),
        )
        .order_by("day")
    )
    return [
        GainPoint(
            day=row["day"],
            estimated_percent=_round(row["estimated"], 1),
            measured_percent=_round(row["measured"], 1),
            recommendations=row["n"],
        )
        for row in rows
    ]


def dashboard_confidence_distribution(*, bins: int = CONFIDENCE_BINS) -> list[ConfidenceBin]:
    """How many recommendations fall in each confidence bin (1.0 counts in the top bin)."""
    bucket = Least(Floor(F("confidence") * bins), bins - 1, output_field=IntegerField())
    counts = dict(
        OptimizationLog.objects.annotate(bucket=bucket)
        .values_list("bucket")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        ConfidenceBin(low=i / bins, high=(i + 1) / bins, count=counts.get(i, 0))
        for i in range(bins)
    ]


def dashboard_top_impact(*, limit: int = TOP_IMPACT) -> list[OptimizationLog]:
    """The open recommendations that save the most workload time per week."""
    return list(
        OptimizationLog.objects.filter(status__in=OPEN_STATUSES)
        .select_related("target")
        .defer("embedding", "plan_before", "plan_after")
        .order_by("-impact", "-confidence", "id")[:limit]
    )


def dashboard_data(*, now: datetime.datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    return Dashboard(
        latest_audit=AuditRun.objects.select_related("target").first(),
        slow_queries=dashboard_slow_queries(now=now),
        by_status=dashboard_recommendations_by_status(),
        gain=dashboard_gain_over_time(now=now),
        confidence=dashboard_confidence_distribution(),
        running=list(
            AuditRun.objects.filter(status=AuditRun.Status.RUNNING).select_related("target")
        ),
        top_impact=dashboard_top_impact(),
    )


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class AuditProgress:
    """Where one queued audit is: queued, running, succeeded or failed, with its counts."""

    id: uuid.UUID
    status: str
    exists: bool
    target: str = ""
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    queries_collected: int = 0
    queries_analyzed: int = 0
    recommendations_count: int = 0
    phase_seconds: dict = field(default_factory=dict)
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status in (AuditRun.Status.SUCCEEDED, AuditRun.Status.FAILED)

    def as_dict(self) -> dict:
        return {
            "id": str(self.id),
            "status": self.status,
            "finished": self.finished,
            "target": self.target,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "queries_collected": self.queries_collected,
            "queries_analyzed": self.queries_analyzed,
            "recommendations_count": self.recommendations_count,
            "phase_seconds": self.phase_seconds,
            "error": self.error,
        }


def audit_progress(*, audit_id: uuid.UUID) -> AuditProgress:
    """The AuditRun once the worker created it; before that, what Celery knows of the task
    (queued with task_id = the audit id, so a task that failed before recording shows too)."""
    audit = AuditRun.objects.select_related("target").filter(pk=audit_id).first()
    if audit is not None:
        return AuditProgress(
            id=audit.pk,
            status=audit.status,
            exists=True,
            target=audit.target.name,
            started_at=audit.started_at,
            finished_at=audit.finished_at,
            queries_collected=audit.queries_collected,
            queries_analyzed=audit.queries_analyzed,
            recommendations_count=audit.recommendations_count,
            phase_seconds=audit.phase_seconds or {},
            error=audit.error,
        )
    if current_app.conf.task_always_eager:  # eager tasks store no result to read
        return AuditProgress(id=audit_id, status="queued", exists=False)
    try:
        result = AsyncResult(str(audit_id))
        if result.state == "FAILURE":
            return AuditProgress(
                id=audit_id, status=AuditRun.Status.FAILED, exists=False, error=str(result.result)
            )
    except RedisError:
        logger.warning("Celery result backend unreachable; audit %s reads as queued", audit_id)
    return AuditProgress(id=audit_id, status="queued", exists=False)
