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


def _index_recommendation(targets, name: str, table: str, column: str) -> OptimizationLog:
    return OptimizationLog.objects.create(
        query_text=f"SELECT * FROM {table} WHERE {column} = $1",
        recommendation=f"index on {table} ({column})",
        kind="index",
        target=targets["default"],
        ddl=f"CREATE INDEX CONCURRENTLY {name} ON {table} ({column})",
    )


def test_apply_answers_202_with_the_recommendation_applying(super_api, targets):
    """No worker here (the test's transaction never commits): the apply stays queued."""
    log = _index_recommendation(targets, "api_queued_idx", "demo_behavior_log", "event_type")
    response = super_api.post(_url(log, "apply"))
    assert response.status_code == 202, response.content
    assert response.json() == {
        "id": str(log.id),
        "status": "applying",
        "message": "Apply of api_queued_idx queued: a Celery worker builds it (CREATE INDEX "
        "CONCURRENTLY); the recommendation shows its progress.",
        "url": f"http://testserver/api/optimizations/{log.id}/",
    }
    detail = super_api.get(response.json()["url"]).json()
    assert detail["status"] == "applying"
    assert detail["apply_progress"]["state"] == "queued"
    assert detail["details"]["apply_job"]["queued_by"] == "root"
    # A second apply while one is queued is refused, and so is a reject.
    again = super_api.post(_url(log, "apply"))
    assert again.status_code == 409
    assert again.json()["error"].startswith("This recommendation is already being applied.")
    assert super_api.post(_url(log, "reject")).status_code == 409
    assert not _index_exists("api_queued_idx")


@pytest.mark.django_db(transaction=True)
def test_apply_with_eager_celery_builds_at_once_and_says_so(super_api, superuser, targets):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction: this test commits for real.
    log = _index_recommendation(
        targets, "api_test_event_type_idx", "demo_behavior_log", "event_type"
    )
    try:
        response = super_api.post(_url(log, "apply"))
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == "applied"
        assert body["message"].startswith(
            "Applied at once (CELERY_TASK_ALWAYS_EAGER is on): Index api_test_event_type_idx "
            "built concurrently"
        )
        assert _index_exists("api_test_event_type_idx")
        detail = super_api.get(body["url"]).json()
        assert detail["applied_at"] is not None and detail["apply_progress"] is None
        # Applying it again is refused: it is applied already.
        again = super_api.post(_url(log, "apply"))
        assert again.status_code == 409
        assert again.json()["error"] == "Cannot apply a recommendation that is applied"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS api_test_event_type_idx")


@pytest.mark.django_db(transaction=True)
def test_a_failed_build_is_recorded_and_the_recommendation_can_be_applied_again(super_api, targets):
    log = _index_recommendation(targets, "api_test_missing_idx", "no_such_table", "a")
    response = super_api.post(_url(log, "apply"))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "proposed"
    assert "CREATE INDEX CONCURRENTLY api_test_missing_idx failed" in body["message"]
    detail = super_api.get(body["url"]).json()
    assert "no_such_table" in detail["details"]["apply_error"]
    assert detail["details"]["apply_job"]["ok"] is False
    # Back to proposed: it may be applied again (and fails again, saying why).
    assert super_api.post(_url(log, "apply")).json()["status"] == "proposed"
