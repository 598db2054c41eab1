"""POST /api/optimizations/{id}/approve|reject|apply/ through the real decision services."""

import pytest
from django.db import connection

from optimizations.models import OptimizationLog

pytestmark = pytest.mark.django_db


def _url(log: OptimizationLog, action: str) -> str:
    return f"/api/optimizations/{log.id}/{action}/"


def test_approve_records_who_decided(staff_api, staff_user, optimizations):
    proposed = optimizations[0]
    response = staff_api.post(_url(proposed, "approve"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "approved"
    assert body["decided_by"] == staff_user.username
    assert body["decided_at"] is not None
    proposed.refresh_from_db()
    assert proposed.status == "approved"


def test_a_transition_that_is_not_allowed_is_a_409_with_the_reason(staff_api, optimizations):
    rejected = optimizations[3]
    response = staff_api.post(_url(rejected, "approve"))
    assert response.status_code == 409
    assert response.json() == {
        "error": "Cannot approve a recommendation that is rejected; only proposed",
        "detail": "conflict",
    }
    rejected.refresh_from_db()
    assert rejected.status == "rejected"


def test_reject_keeps_the_reason(staff_api, optimizations):
    approved = optimizations[1]
    response = staff_api.post(_url(approved, "reject"), {"reason": "  the table is archived  "})
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert response.json()["details"]["reject_reason"] == "the table is archived"


@pytest.mark.parametrize("reason", ["x" * 2001, None])
def test_reject_refuses_a_bad_reason(staff_api, optimizations, reason):
    response = staff_api.post(_url(optimizations[0], "reject"), {"reason": reason}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["detail"]
    optimizations[0].refresh_from_db()
    assert optimizations[0].status == "proposed"


@pytest.mark.parametrize("action", ["approve", "reject", "apply"])
def test_decisions_on_an_unknown_id_are_404(super_api, targets, action):
    response = super_api.post(f"/api/optimizations/0f0f0f0f-0000-4000-8000-000000000000/{action}/")
    assert response.status_code == 404


def test_apply_refuses_a_recommendation_that_is_not_an_index(super_api, optimizations):
    rewrite = optimizations[2]
    response = super_api.post(_url(rewrite, "apply"))
    assert response.status_code == 409
    assert "not an index to build" in response.json()["error"]


def _index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        return cursor.fetchone() is not None


@pytest.mark.django_db(transaction=True)
def test_apply_builds_the_index_concurrently_and_marks_it_applied(super_api, superuser, targets):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction: this test commits for real.
    log = OptimizationLog.objects.create(
        query_text="SELECT * FROM demo_behavior_log WHERE event_type = $1",
        recommendation="index on behavior logs (event_type)",
        kind="index",
        target=targets["default"],
        ddl="CREATE INDEX CONCURRENTLY api_test_event_type_idx ON demo_behavior_log (event_type)",
    )
    try:
        response = super_api.post(_url(log, "apply"))
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["ok"] is True
        assert body["index_name"] == "api_test_event_type_idx"
        assert body["optimization"]["status"] == "applied"
        assert body["optimization"]["applied_at"] is not None
        assert _index_exists("api_test_event_type_idx")
        # Applying it again is refused: it is applied already.
        again = super_api.post(_url(log, "apply"))
        assert again.status_code == 409
        assert again.json()["error"] == "Cannot apply a recommendation that is applied"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS api_test_event_type_idx")


@pytest.mark.django_db(transaction=True)
def test_a_failed_build_is_a_409_that_says_why(super_api, targets):
    log = OptimizationLog.objects.create(
        query_text="SELECT * FROM no_such_table WHERE a = $1",
        recommendation="index on no_such_table (a)",
        kind="index",
        target=targets["default"],
        ddl="CREATE INDEX CONCURRENTLY api_test_missing_idx ON no_such_table (a)",
    )
    response = super_api.post(_url(log, "apply"))
    assert response.status_code == 409
    error = response.json()["error"]
    assert "CREATE INDEX CONCURRENTLY api_test_missing_idx failed" in error
    assert "no_such_table" in error
    log.refresh_from_db()
    assert log.status == "proposed"
