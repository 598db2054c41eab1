"""API clients for each kind of caller, and recommendations with real embeddings."""

import datetime

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dbarchitect.models import AuditRun, Target
from optimizations.models import OptimizationLog
from optimizations.services import optimization_bulk_store


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def user_api(django_user_model):
    """Authenticated, but not staff."""
    return _token_client(django_user_model.objects.create_user(username="plain", password="x"))


@pytest.fixture
def staff_api(staff_user):
    return _token_client(staff_user)


@pytest.fixture
def super_api(superuser):
    return _token_client(superuser)


@pytest.fixture
def targets(db) -> dict[str, Target]:
    default, _ = Target.objects.get_or_create(name="default", defaults={"allow_verify": True})
    replica, _ = Target.objects.get_or_create(name="replica")
    return {"default": default, "replica": replica}


@pytest.fixture
def audit(targets) -> AuditRun:
    started = timezone.now() - datetime.timedelta(minutes=5)
    run = AuditRun.objects.create(target=targets["default"], queries_collected=12)
    AuditRun.objects.filter(pk=run.pk).update(
        status=AuditRun.Status.SUCCEEDED,
        started_at=started,
        finished_at=started + datetime.timedelta(seconds=42.5),
        queries_analyzed=7,
        recommendations_count=2,
        phase_seconds={"collect": 0.5, "analyze": 1.25, "advise": 30.0, "verify": 10.75},
        skipped=[{"queryid": 99, "reason": "table has fewer than 10000 rows"}],
    )
    run.refresh_from_db()
    return run


# Recommendations with known fields: (query, recommendation, kind, status, target,
# confidence, gain, age in days).
KNOWN = [
    (
        "SELECT * FROM demo_user WHERE lower(email) = $1",
        "expression index on lower(email) of users",
        "index",
        "proposed",
        "default",
        0.92,
        88.0,
        1,
    ),
    (
        "SELECT * FROM demo_behavior_log WHERE user_id = $1 ORDER BY timestamp DESC LIMIT $2",
        "composite index on behavior logs (user_id, timestamp DESC)",
        "index",
        "approved",
        "default",
        0.81,
        95.5,
        3,
    ),
    (
        "SELECT * FROM demo_behavior_log ORDER BY timestamp DESC OFFSET $1 LIMIT $2",
        "keyset pagination instead of OFFSET on behavior logs",
        "rewrite",
        "proposed",
        "replica",
        0.55,
        40.0,
        10,
    ),
    (
        "SELECT count(*) FROM invoices WHERE status = $1",
        "index on invoices (status)",
        "index",
        "rejected",
        "replica",
        0.30,
        12.5,
        20,
    ),
    (
        "SELECT * FROM demo_behavior_log WHERE event_type = $1",
        "drop the unused index behavior_log_event_type_old",
        "drop_index",
        "applied",
        "default",
        0.70,
        0.0,
        40,
    ),
]


@pytest.fixture
def optimizations(targets, audit) -> list[OptimizationLog]:
    """The KNOWN recommendations, embedded by the real model, created at known times."""
    now = timezone.now()
    logs = [
        OptimizationLog(
            query_text=query,
            recommendation=recommendation,
            kind=kind,
            status=status,
            target=targets[target],
            audit=audit if target == "default" and status != "applied" else None,
            confidence=confidence,
            performance_gain=gain,
            ddl=f"-- {recommendation}",
        )
        for query, recommendation, kind, status, target, confidence, gain, _ in KNOWN
    ]
    created = optimization_bulk_store(logs)
    for position, (log, row) in enumerate(zip(created, KNOWN, strict=True)):
        log.created_at = now - datetime.timedelta(days=row[-1])
        log.impact = 1000.0 * (len(KNOWN) - position)  # the default order: largest first
    OptimizationLog.objects.bulk_update(created, ["created_at", "impact"])
    return created
