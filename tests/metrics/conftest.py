"""Audit history built as the agent records it: Target, AuditRun, QuerySnapshot, OptimizationLog."""

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dbarchitect.models import AuditRun, QuerySnapshot, Target
from dbarchitect.targets import target_sync
from optimizations.models import OptimizationLog

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def make_audit(
    target: Target, *, status: str, started: datetime, seconds: float | None
) -> AuditRun:
    audit = AuditRun.objects.create(target=target, status=status)
    # started_at is auto_now_add: set the history's own times afterwards.
    finished = started + timedelta(seconds=seconds) if seconds is not None else None
    AuditRun.objects.filter(pk=audit.pk).update(started_at=started, finished_at=finished)
    audit.refresh_from_db()
    return audit


def make_snapshots(audit: AuditRun, *, slow: int, fast: int) -> None:
    rows = [
        QuerySnapshot(
            audit=audit,
            queryid=1000 + i,
            query=f"SELECT * FROM t{i} WHERE id = $1",
            calls=10,
            total_time_ms=100.0,
            mean_time_ms=10.0,
            rows=10,
            shared_blks_hit=1,
            shared_blks_read=1,
            cumulative_calls=10,
            cumulative_total_time_ms=100.0,
            cumulative_rows=10,
            cumulative_shared_blks_hit=1,
            cumulative_shared_blks_read=1,
            is_slow=i < slow,
        )
        for i in range(slow + fast)
    ]
    QuerySnapshot.objects.bulk_create(rows)


def make_log(audit: AuditRun | None, *, kind: str, confidence: float, gain: float, **fields):
    return OptimizationLog.objects.create(
        query_text="SELECT * FROM demo_behaviorlog WHERE event_type = $1",
        recommendation=f"{kind} recommendation",
        kind=kind,
        confidence=confidence,
        performance_gain=gain,
        target=audit.target if audit else None,
        audit=audit,
        **fields,
    )


@pytest.fixture
def history(db):
    """Two targets; 'shop' has an old and a new succeeded audit and a failed one in between.

    Numbers the tests expect (shop):
      slow queries: old audit 3 + new audit 2 (+ 4 in the failed audit, not counted) = 5
      recommendations: old audit index 0.4/10%, new audit index 0.9/80% + 0.5/40%, rewrite 0/0
      audit durations: 20.25 s and 200.5 s succeeded, 45 s failed
    """
    target_sync()  # the "default" target, also after a transactional test flushed it
    shop = Target.objects.create(name="shop", allow_verify=False)
    Target.objects.create(name="idle", enabled=False)
    old = make_audit(shop, status="succeeded", started=T0, seconds=20.25)
    make_snapshots(old, slow=3, fast=2)
    make_log(old, kind="index", confidence=0.4, gain=10.0, status="rejected")
    failed = make_audit(shop, status="failed", started=T0 + timedelta(days=1), seconds=45)
    make_snapshots(failed, slow=4, fast=0)
    new = make_audit(shop, status="succeeded", started=T0 + timedelta(days=7), seconds=200.5)
    make_snapshots(new, slow=2, fast=7)
    make_log(new, kind="index", confidence=0.9, gain=80.0, status="applied")
    make_log(new, kind="index", confidence=0.5, gain=40.0)
    make_log(new, kind="rewrite", confidence=0.0, gain=0.0)
    make_audit(shop, status="running", started=T0 + timedelta(days=8), seconds=None)
    return {"shop": shop, "old": old, "failed": failed, "new": new}


def scrape(client, **extra) -> dict[str, dict[tuple, float]]:
    """GET /metrics and parse it with prometheus_client's parser: sample name -> labels -> value."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def parse(text: str) -> dict[str, dict[tuple, float]]:
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def labels(**values: str) -> tuple:
    return tuple(sorted(values.items()))
