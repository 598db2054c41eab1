"""Connection URLs and passwords of the targets never reach an API response."""

import uuid

import pytest

from config.celery_app import app as celery_app
from dbarchitect.models import AuditRun

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Results are not stored in backend:RuntimeWarning"),
]

PASSWORD = "s3cret-pw-7f2c"


@pytest.fixture
def secret_target(settings, targets):
    settings.DBARCHITECT_TARGETS = f"replica=postgres://auditor:{PASSWORD}@10.0.0.9:5432/shop"
    return targets["replica"]


def test_no_response_shows_a_target_url_or_password(staff_api, secret_target, optimizations):
    AuditRun.objects.create(target=secret_target, status="failed", error="could not connect")
    responses = [
        staff_api.get("/api/optimizations/"),
        staff_api.get(f"/api/optimizations/{optimizations[2].id}/"),
        staff_api.get("/api/optimizations/similar/", {"query": "pagination"}),
        staff_api.get("/api/audits/"),
        staff_api.get("/api/audits/", {"target": "replica"}),
        staff_api.post("/api/audits/", {"target": "warehouse"}, format="json"),
    ]
    for response in responses:
        text = response.content.decode()
        assert response.status_code in (200, 400)
        assert PASSWORD not in text and "10.0.0.9" not in text and "postgres://" not in text
    assert "replica" in responses[3].content.decode()  # the target is named, by name only


def test_a_worker_error_is_shown_without_the_password(staff_api, secret_target):
    task_id = str(uuid.uuid4())
    # What the result backend holds after a task raised with the URL in its message.
    celery_app.backend.store_result(
        task_id,
        ConnectionError(f"cannot reach postgres://auditor:{PASSWORD}@10.0.0.9:5432/shop"),
        "FAILURE",
    )
    try:
        body = staff_api.get(f"/api/audits/{task_id}/").json()
    finally:
        celery_app.backend.forget(task_id)
    assert body["status"] == "failed"
    assert PASSWORD not in body["error"]
    assert "auditor:***@10.0.0.9" in body["error"]
