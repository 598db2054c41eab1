import uuid

import pytest
from celery import current_app
from django.urls import reverse

from dbarchitect.dashboard import audit_progress, dashboard_data
from dbarchitect.models import AuditRun, Target
from optimizations.models import OptimizationLog

from .factories import make_audit, make_recommendation

pytestmark = pytest.mark.django_db

USER_LOGS = "SELECT * FROM demo_behavior_log WHERE user_id = $1"
BY_EMAIL = "SELECT * FROM demo_user WHERE email = $1"
EVENTS = "SELECT count(*) FROM demo_behavior_log WHERE event_type = $1"


@pytest.fixture
def history():
    """Two weeks of audits of `default`: one slow query then, three now (one got worse)."""
    make_audit(days_ago=9, slow=[(11, USER_LOGS, 40.0)], fast=[(12, BY_EMAIL, 0.2)])
    make_audit(days_ago=3, slow=[(11, USER_LOGS, 45.0)])  # newer, but not a week old
    now = make_audit(
        days_ago=0,
        slow=[(11, USER_LOGS, 80.0), (12, BY_EMAIL, 5.0), (13, EVENTS, 120.0)],
        fast=[(14, "SELECT 1", 0.01)],
    )
    make_recommendation(audit=now, confidence=0.93)
    make_recommendation(
        audit=now,
        recommendation="Create index on demo_user (email)",
        ddl="CREATE INDEX demo_user_email_idx ON demo_user (email)",
        query=BY_EMAIL,
        confidence=0.55,
        status=OptimizationLog.Status.REJECTED,
        cost=(400.0, 100.0),
        measured=None,
    )
    make_recommendation(
        audit=now,
        recommendation="Create index on demo_behavior_log (event_type)",
        ddl="CREATE INDEX demo_behavior_log_event_type_idx ON demo_behavior_log (event_type)",
        query=EVENTS,
        confidence=1.0,
        status=OptimizationLog.Status.APPLIED,
        cost=(1000.0, 500.0),
        measured=(10.0, 2.5),
    )
    return now


def test_slow_queries_compare_the_newest_audit_with_the_one_a_week_before(history):
    data = dashboard_data()

    assert data.latest_audit == history
    assert data.slow_queries.now == 3
    assert data.slow_queries.last_week == 1
    by_id = {q.queryid: q for q in data.slow_queries.queries}
    assert [q.queryid for q in data.slow_queries.queries] == [13, 11, 12]  # heaviest first
    assert by_id[11].mean_ms_now == 80.0
    assert by_id[11].mean_ms_last_week == 40.0  # the 9-day-old audit, not the 3-day-old one
    assert by_id[12].mean_ms_last_week == 0.2  # fast then, slow now
    assert by_id[13].mean_ms_last_week is None  # new this week


def test_without_an_audit_a_week_old_there_is_nothing_to_compare():
    make_audit(days_ago=1, slow=[(11, USER_LOGS, 40.0)])
    data = dashboard_data()
    assert data.slow_queries.now == 1
    assert data.slow_queries.last_week is None


def test_recommendation_counts_gain_and_confidence(history):
    data = dashboard_data()

    assert data.by_status == {
        "proposed": 1,
        "approved": 0,
        "applying": 0,
        "applied": 1,
        "rejected": 1,
        "superseded": 0,
    }
    assert data.recommendations_total == 3
    (today,) = data.gain
    assert today.recommendations == 3
    # Estimated: mean of 99.7 %, 75 % and 50 %; measured: mean of 98.9 % and 75 %.
    expected_estimated = (100 * (18334 - 52.1) / 18334 + 75 + 50) / 3
    assert today.estimated_percent == pytest.approx(expected_estimated, abs=0.1)
    assert today.measured_percent == pytest.approx((100 * (85 - 0.9) / 85 + 75) / 2, abs=0.1)
    counts = {round(b.low, 1): b.count for b in data.confidence}
    assert counts[0.5] == 1
    assert counts[0.9] == 2  # 0.93 and 1.0 (the top bin is closed)
    assert sum(counts.values()) == 3


def test_failed_and_running_audits_are_not_compared_but_running_ones_are_followed():
    make_audit(days_ago=0, status=AuditRun.Status.FAILED, slow=[(11, USER_LOGS, 40.0)])
    running = make_audit(days_ago=0, status=AuditRun.Status.RUNNING)
    data = dashboard_data()
    assert data.slow_queries.now == 0
    assert data.running == [running]


def test_each_target_is_compared_with_its_own_history(history):
    other = Target.objects.create(name="reporting")
    make_audit(target=other, days_ago=10, slow=[(11, USER_LOGS, 400.0)])
    make_audit(target=other, days_ago=0, slow=[(11, USER_LOGS, 500.0)])
    data = dashboard_data()
    assert data.slow_queries.now == 4
    assert data.slow_queries.last_week == 2
    by_target = {(q.target, q.queryid): q for q in data.slow_queries.queries}
    assert by_target[("reporting", 11)].mean_ms_last_week == 400.0
    assert by_target[("default", 11)].mean_ms_last_week == 40.0


def test_audit_progress_reads_the_audit_row_or_says_queued():
    audit = make_audit(days_ago=0, slow=[(11, USER_LOGS, 40.0)])
    done = audit_progress(audit_id=audit.pk)
    assert (done.status, done.finished, done.exists, done.queries_collected) == (
        "succeeded",
        True,
        True,
        1,
    )
    unknown = audit_progress(audit_id=uuid.uuid4())
    assert (unknown.status, unknown.finished, unknown.exists) == ("queued", False, False)


def test_audit_progress_reports_a_task_that_failed_before_recording(monkeypatch):
    """Through the real Redis result backend: a task that died before the agent created the
    AuditRun (a bad target, a crash) reads as failed with its error, not as queued forever."""
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    failed, sent = uuid.uuid4(), uuid.uuid4()
    current_app.backend.mark_as_failure(str(failed), ValueError("Unknown target 'gone'"))
    current_app.backend.store_result(str(sent), None, "SENT")
    try:
        progress = audit_progress(audit_id=failed)
        assert (progress.status, progress.finished) == ("failed", True)
        assert "Unknown target 'gone'" in progress.error
        assert audit_progress(audit_id=sent).status == "queued"
    finally:
        current_app.backend.forget(str(failed))
        current_app.backend.forget(str(sent))


def test_dashboard_page_shows_the_numbers_and_the_chart_data(staff_client, history):
    response = staff_client.get(reverse("admin:dbarchitect_dashboard"))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<span id="dba-slow-now">3</span> now' in html
    assert '<span id="dba-slow-last-week">1</span> a week ago' in html
    assert '<span id="dba-recommendations-total">3</span> in total' in html
    assert "1 rejected" in html
    assert reverse("admin:dbarchitect_audit_report", args=[history.pk]) in html
    assert 'id="dba-chart-data"' in html
    charts = response.context["charts"]
    assert charts["byStatus"]["values"] == [1, 0, 0, 1, 1, 0]
    assert charts["slowQueries"]["now"] == [120.0, 80.0, 5.0]
    assert charts["slowQueries"]["lastWeek"] == [None, 40.0, 0.2]
    assert "dbarchitect/vendor/chart.umd.js" in html


def test_index_links_to_the_dashboard(staff_client):
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert reverse("admin:dbarchitect_dashboard") in response.content.decode()


def test_progress_endpoint_is_json_for_staff_and_closed_to_others(client, staff_client):
    audit = make_audit(days_ago=0, slow=[(11, USER_LOGS, 40.0)])
    url = reverse("admin:dbarchitect_audit_progress", args=[audit.pk])

    body = staff_client.get(url).json()
    assert body["status"] == "succeeded"
    assert body["report_url"] == reverse("admin:dbarchitect_audit_report", args=[audit.pk])
    assert staff_client.post(url).status_code == 405

    client.logout()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_run_audit_now_queues_the_task_and_the_progress_shows_its_result(
    staff_client, django_capture_on_commit_callbacks
):
    """Eager Celery here: the real task runs the real agent on the test database."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff_client.post(
            reverse("admin:dbarchitect_audit_run"), {"target": "default", "verify": "off"}
        )
    assert len(callbacks) == 1
    assert response.status_code == 302
    audit = AuditRun.objects.get()
    assert response["Location"] == f"{reverse('admin:dbarchitect_dashboard')}?audit={audit.pk}"
    assert audit.verify is False

    progress = staff_client.get(reverse("admin:dbarchitect_audit_progress", args=[audit.pk]))
    body = progress.json()
    assert body["finished"] is True
    assert body["status"] == audit.status == "succeeded", audit.error
    page = staff_client.get(response["Location"])
    assert f'data-follow="{audit.pk}"' in page.content.decode()


def test_run_audit_now_refuses_an_unknown_or_disabled_target(staff_client):
    response = staff_client.post(
        reverse("admin:dbarchitect_audit_run"), {"target": "nope"}, follow=True
    )
    (message,) = (str(m) for m in response.context["messages"])
    assert "Unknown target 'nope'" in message
    Target.objects.filter(name="default").update(enabled=False)
    response = staff_client.post(
        reverse("admin:dbarchitect_audit_run"), {"target": "default"}, follow=True
    )
    (message,) = (str(m) for m in response.context["messages"])
    assert "is disabled" in message
    response = staff_client.post(
        reverse("admin:dbarchitect_audit_run"),
        {"target": "default", "verify": "maybe"},
        follow=True,
    )
    (message,) = (str(m) for m in response.context["messages"])
    assert "verify: on, off or empty" in message
    assert not AuditRun.objects.exists()
    assert staff_client.get(reverse("admin:dbarchitect_audit_run")).status_code == 405
