"""GET /api/audits/ and /api/audits/{id}/: recorded audits, queued ones, unknown ids."""

import datetime
import uuid

import pytest
from django.utils import timezone

from config.celery_app import app as celery_app
from dbarchitect.models import AuditRun

pytestmark = [
    pytest.mark.django_db,
    # Tests run Celery eagerly; the API still asks the result backend about unknown ids.
    pytest.mark.filterwarnings("ignore:Results are not stored in backend:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored"),
]

LIST = "/api/audits/"


@pytest.fixture
def audits(targets, audit) -> list[AuditRun]:
    """Three more audits: running and failed on default, succeeded on replica, older."""
    now = timezone.now()
    rows = [audit]
    for target, status, age_hours in [
        ("default", "running", 1),
        ("replica", "succeeded", 24),
        ("default", "failed", 48),
    ]:
        run = AuditRun.objects.create(target=targets[target], status=status)
        AuditRun.objects.filter(pk=run.pk).update(
            started_at=now - datetime.timedelta(hours=age_hours)
        )
        rows.append(run)
    return rows


def _ids(response) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


def test_list_is_newest_first_with_counts_and_duration(staff_api, audits):
    response = staff_api.get(LIST)
    assert response.status_code == 200
    assert response.json()["count"] == 4
    # audit (5 minutes ago), running (1 h), replica (24 h), failed (48 h)
    assert _ids(response) == [str(run.id) for run in audits]
    first = response.json()["results"][0]
    assert first["target"] == "default"
    assert first["status"] == "succeeded"
    assert first["duration_seconds"] == 42.5
    assert first["queries_collected"] == 12
    assert first["recommendations_count"] == 2
    assert response.json()["results"][1]["duration_seconds"] is None  # still running


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"target": "replica"}, [2]),
        ({"status": "failed"}, [3]),
        ({"target": "default", "status": "running"}, [1]),
        ({"target": "replica", "status": "failed"}, []),
    ],
)
def test_list_filters(staff_api, audits, params, expected):
    response = staff_api.get(LIST, params)
    assert _ids(response) == [str(audits[i].id) for i in expected]


def test_list_pages(staff_api, audits):
    page = staff_api.get(LIST, {"page_size": 3, "page": 2}).json()
    assert page["count"] == 4
    assert [item["id"] for item in page["results"]] == [str(audits[3].id)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "queued"}, "status"),
        ({"target": "nowhere"}, "target"),
        ({"page_size": "0"}, "page_size"),
    ],
)
def test_list_rejects_bad_filters(staff_api, audits, params, field):
    response = staff_api.get(LIST, params)
    assert response.status_code == 400
    assert field in response.json()["detail"]


def test_detail_shows_timings_skips_and_its_recommendations(staff_api, audit, optimizations):
    response = staff_api.get(f"{LIST}{audit.id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["phase_seconds"] == {
        "collect": 0.5,
        "analyze": 1.25,
        "advise": 30.0,
        "verify": 10.75,
    }
    assert body["skipped"] == [{"queryid": 99, "reason": "table has fewer than 10000 rows"}]
    assert body["duration_seconds"] == 42.5
    assert body["error"] == ""
    # The audit's own recommendations (the two of target default it made), best first.
    ours = [log for log in optimizations if log.audit_id == audit.id]
    assert len(ours) == 2
    assert [item["id"] for item in body["recommendations"]] == [
        str(log.id) for log in sorted(ours, key=lambda log: -log.confidence)
    ]


def test_detail_of_a_failed_audit_carries_its_error(staff_api, targets):
    run = AuditRun.objects.create(
        target=targets["default"], status="failed", error="statement timeout while collecting"
    )
    body = staff_api.get(f"{LIST}{run.id}/").json()
    assert body["status"] == "failed"
    assert body["error"] == "statement timeout while collecting"
    assert body["recommendations"] == []


@pytest.fixture
def unconsumed_queue():
    """A queue no worker reads, removed afterwards, so a published task just waits there."""
    name = f"test-api-unconsumed-{uuid.uuid4().hex}"
    yield name
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete(name)


def test_a_queued_task_without_an_audit_row_reads_as_queued(staff_api, targets, unconsumed_queue):
    task_id = str(uuid.uuid4())
    # Published for real (send_task is never eager): the publish hook records it as SENT.
    celery_app.send_task(
        "optimizations.backfill_embeddings", task_id=task_id, queue=unconsumed_queue
    )
    try:
        response = staff_api.get(f"{LIST}{task_id}/")
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == task_id
        assert body["status"] == "queued"
        assert body["target"] is None and body["recommendations"] == []
    finally:
        celery_app.backend.forget(task_id)


@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "nope", "0"])
def test_an_unknown_audit_is_a_json_404(staff_api, targets, bad_id):
    response = staff_api.get(f"{LIST}{bad_id}/")
    assert response.status_code == 404
    assert response.json() == {"error": f"No audit with id {bad_id!r}.", "detail": "not_found"}
