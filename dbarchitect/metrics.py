"""The agent's Prometheus metrics, read from the database at scrape time.

Audits run in Celery workers, maybe on other machines, so counters kept in a worker's memory
would never reach the web process that serves /metrics. Everything an audit does is recorded
in AuditRun, QuerySnapshot and OptimizationLog rows, so each scrape computes the numbers from
those rows: right in whichever process answers, unchanged by restarts, no shared directory,
and nothing for the agent to call after an audit.
"""

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import DatabaseError
from django.db.models import (
    Avg,
    Count,
    Exists,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Extract
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from optimizations.models import OptimizationLog

from .models import AuditRun, QuerySnapshot, Target

logger = logging.getLogger(__name__)

# An audit takes seconds on a small database and minutes on a large one; the Celery time
# limit (CELERY_TASK_TIME_LIMIT, one hour by default) caps it.
AUDIT_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# Tenths: the alert threshold (0.6) and the pull-request threshold (0.8) fall on bucket edges.
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# The target label of a recommendation stored without a target (e.g. by hand).
NO_TARGET = "none"
SUCCEEDED = AuditRun.Status.SUCCEEDED.value
FAILED = AuditRun.Status.FAILED.value
FINISHED = (SUCCEEDED, FAILED)


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound (the +Inf bucket is `count`), and the sum."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total: float


@dataclass
class AgentMetrics:
    """Every number /metrics shows for the agent, keyed by label values."""

    # target -> slow queries found by all succeeded audits / by the latest one.
    slow_queries: dict[str, int] = field(default_factory=dict)
    slow_queries_last_audit: dict[str, int] = field(default_factory=dict)
    # (target, kind) -> recommendations ever made.
    recommendations: dict[tuple[str, str], int] = field(default_factory=dict)
    # (target, status) -> recommendations in that status now.
    recommendations_by_status: dict[tuple[str, str], int] = field(default_factory=dict)
    # (target, kind) -> mean over the latest succeeded audit that recommended anything.
    confidence_score: dict[tuple[str, str], float] = field(default_factory=dict)
    performance_gain_percent: dict[tuple[str, str], float] = field(default_factory=dict)
    # target -> distribution of every recommendation's confidence.
    confidence: dict[str, Histogram] = field(default_factory=dict)
    # (target, status) of finished audits.
    audits: dict[tuple[str, str], int] = field(default_factory=dict)
    audit_duration_seconds: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    last_audit_timestamp: dict[tuple[str, str], float] = field(default_factory=dict)
    # target -> 1 when its most recently finished audit failed.
    last_audit_failed: dict[str, int] = field(default_factory=dict)
    target_enabled: dict[str, int] = field(default_factory=dict)


def agent_metrics_read() -> AgentMetrics:
    """Compute every agent metric from the database (a handful of aggregate queries)."""
    metrics = AgentMetrics()
    latest = _read_targets(metrics)
    _read_slow_queries(metrics, latest_audit_ids=latest.audits)
    _read_recommendations(metrics, latest_audit_ids=latest.recommending)
    _read_audits(metrics)
    return metrics


@dataclass
class _LatestAudits:
    """Per target, its latest succeeded audit, and the latest that recommended anything."""

    audits: list[uuid.UUID] = field(default_factory=list)
    recommending: list[uuid.UUID] = field(default_factory=list)


def _read_targets(metrics: AgentMetrics) -> _LatestAudits:
    """Fill the per-target gauges (every target, audited or not) in one query."""
    succeeded = AuditRun.objects.filter(target=OuterRef("pk"), status=SUCCEEDED)
    latest = succeeded.order_by("-started_at").values("pk")[:1]
    recommending = (
        succeeded.filter(Exists(OptimizationLog.objects.filter(audit=OuterRef("pk"))))
        .order_by("-started_at")
        .values("pk")[:1]
    )
    last_finished = (
        AuditRun.objects.filter(
            target=OuterRef("pk"), status__in=FINISHED, finished_at__isnull=False
        )
        .order_by("-finished_at")
        .values("status")[:1]
    )
    rows = Target.objects.annotate(
        latest_audit=Subquery(latest),
        latest_recommending=Subquery(recommending),
        last_status=Subquery(last_finished),
    ).values("name", "enabled", "latest_audit", "latest_recommending", "last_status")
    latest_audits = _LatestAudits()
    for row in rows:
        name = row["name"]
        metrics.target_enabled[name] = int(row["enabled"])
        metrics.slow_queries[name] = 0
        for status in FINISHED:
            metrics.audits[(name, status)] = 0
        for kind in OptimizationLog.Kind.values:
            metrics.recommendations[(name, kind)] = 0
        if row["last_status"] is not None:
            metrics.last_audit_failed[name] = int(row["last_status"] == FAILED)
        if row["latest_audit"] is not None:
            latest_audits.audits.append(row["latest_audit"])
            metrics.slow_queries_last_audit[name] = 0
        if row["latest_recommending"] is not None:
            latest_audits.recommending.append(row["latest_recommending"])
    return latest_audits


def _read_slow_queries(metrics: AgentMetrics, *, latest_audit_ids: list[uuid.UUID]) -> None:
    slow = QuerySnapshot.objects.filter(is_slow=True, audit__status=SUCCEEDED)
    for row in slow.values("audit__target__name").annotate(n=Count("pk")).order_by():
        metrics.slow_queries[row["audit__target__name"]] = row["n"]
    latest = slow.filter(audit_id__in=latest_audit_ids)
    for row in latest.values("audit__target__name").annotate(n=Count("pk")).order_by():
        metrics.slow_queries_last_audit[row["audit__target__name"]] = row["n"]


def _read_recommendations(metrics: AgentMetrics, *, latest_audit_ids: list[uuid.UUID]) -> None:
    logs = OptimizationLog.objects.annotate(
        target_name=Coalesce("target__name", "audit__target__name", Value(NO_TARGET))
    )
    for row in logs.values("target_name", "kind").annotate(n=Count("pk")).order_by():
        metrics.recommendations[(row["target_name"], row["kind"])] = row["n"]
    for row in logs.values("target_name", "status").annotate(n=Count("pk")).order_by():
        metrics.recommendations_by_status[(row["target_name"], row["status"])] = row["n"]

    latest = logs.filter(audit_id__in=latest_audit_ids)
    means = latest.values("target_name", "kind").annotate(
        confidence=Avg("confidence"), gain=Avg("performance_gain")
    )
    for row in means.order_by():
        key = (row["target_name"], row["kind"])
        metrics.confidence_score[key] = row["confidence"]
        metrics.performance_gain_percent[key] = row["gain"]

    buckets = _bucket_counts("confidence", CONFIDENCE_BUCKETS)
    rows = logs.values("target_name").annotate(n=Count("pk"), total=Sum("confidence"), **buckets)
    for row in rows.order_by():
        metrics.confidence[row["target_name"]] = _histogram(row, CONFIDENCE_BUCKETS)


def _read_audits(metrics: AgentMetrics) -> None:
    finished = AuditRun.objects.filter(status__in=FINISHED, finished_at__isnull=False).annotate(
        seconds=Extract(F("finished_at") - F("started_at"), "epoch", output_field=FloatField())
    )
    buckets = _bucket_counts("seconds", AUDIT_DURATION_BUCKETS)
    rows = finished.values("target__name", "status").annotate(
        n=Count("pk"), total=Sum("seconds"), last=Max("finished_at"), **buckets
    )
    for row in rows.order_by():
        key = (row["target__name"], row["status"])
        metrics.audits[key] = row["n"]
        metrics.audit_duration_seconds[key] = _histogram(row, AUDIT_DURATION_BUCKETS)
        metrics.last_audit_timestamp[key] = row["last"].timestamp()


def _bucket_counts(column: str, bounds: tuple[float, ...]) -> dict[str, Count]:
    return {f"le_{i}": Count("pk", filter=Q(**{f"{column}__lte": b})) for i, b in enumerate(bounds)}


def _histogram(row: dict, bounds: tuple[float, ...]) -> Histogram:
    return Histogram(
        bounds=bounds,
        cumulative=tuple(row[f"le_{i}"] for i in range(len(bounds))),
        count=row["n"],
        total=float(row["total"] or 0.0),
    )


class AgentMetricsCollector:
    """A prometheus_client collector: one database read per scrape.

    When the database cannot be read the scrape still answers, with
    db_architect_metrics_up 0 and the error in the log, so Prometheus can alert on it.
    """

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = agent_metrics_read()
        except DatabaseError:
            logger.exception("could not read the agent's metrics from the database")
            yield _up(0)
            return
        yield _up(1)
        yield from metric_families(metrics)

    def describe(self) -> list[Metric]:
        # Nothing up front: registering must not read the database.
        return []


def _up(value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "db_architect_metrics_up",
        "1 when the agent's metrics were read from the database at this scrape.",
        value=value,
    )


def metric_families(metrics: AgentMetrics) -> Iterator[Metric]:
    """Turn the numbers into Prometheus metric families (names, help, labels)."""
    yield _counter(
        "db_architect_slow_queries",
        "Slow queries (past the audit thresholds) found by succeeded audits.",
        ["target"],
        {(t,): v for t, v in metrics.slow_queries.items()},
    )
    yield _gauge(
        "db_architect_slow_queries_last_audit",
        "Slow queries found by the latest succeeded audit of the target.",
        ["target"],
        {(t,): v for t, v in metrics.slow_queries_last_audit.items()},
    )
    yield _counter(
        "db_architect_recommendations",
        "Recommendations the agent made, by kind.",
        ["target", "kind"],
        metrics.recommendations,
    )
    yield _gauge(
        "db_architect_recommendations_by_status",
        "Recommendations in each status now (proposed, approved, applying, applied, ...).",
        ["target", "status"],
        metrics.recommendations_by_status,
    )
    yield _gauge(
        "db_architect_confidence_score",
        "Mean confidence (0..1) of the latest succeeded audit's recommendations, by kind.",
        ["target", "kind"],
        metrics.confidence_score,
    )
    yield _gauge(
        "db_architect_performance_gain_percent",
        "Mean gain in percent (measured, else estimated) of the latest audit's "
        "recommendations, by kind.",
        ["target", "kind"],
        metrics.performance_gain_percent,
    )
    yield _histogram_family(
        "db_architect_recommendation_confidence",
        "Confidence of every recommendation made.",
        ["target"],
        {(t,): h for t, h in metrics.confidence.items()},
    )
    yield _counter(
        "db_architect_audits",
        "Finished audits, by status.",
        ["target", "status"],
        metrics.audits,
    )
    yield _histogram_family(
        "db_architect_audit_duration_seconds",
        "Wall-clock duration of finished audits.",
        ["target", "status"],
        metrics.audit_duration_seconds,
    )
    yield _gauge(
        "db_architect_last_audit_timestamp_seconds",
        "When the target's latest audit with this status finished (Unix time).",
        ["target", "status"],
        metrics.last_audit_timestamp,
    )
    yield _gauge(
        "db_architect_last_audit_failed",
        "1 when the target's most recently finished audit failed.",
        ["target"],
        {(t,): v for t, v in metrics.last_audit_failed.items()},
    )
    yield _gauge(
        "db_architect_target_enabled",
        "1 when the weekly schedule audits the target.",
        ["target"],
        {(t,): v for t, v in metrics.target_enabled.items()},
    )


def _counter(name: str, doc: str, labels: list[str], values: dict) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _gauge(name: str, doc: str, labels: list[str], values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _histogram_family(
    name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, hist in sorted(values.items()):
        buckets = [(_bound(b), c) for b, c in zip(hist.bounds, hist.cumulative, strict=True)]
        buckets.append(("+Inf", hist.count))
        family.add_metric(list(key), buckets, sum_value=hist.total)
    return family


def _bound(value: float) -> str:
    return f"{value:g}"
