"""Every admin page of the agent loads for staff and sends anyone else to the login page."""

import pytest
from django.contrib import admin
from django.urls import reverse

from dbarchitect.models import AuditRun, QuerySnapshot, Target
from optimizations.models import OptimizationLog

from .factories import make_audit, make_recommendation

pytestmark = pytest.mark.django_db

MODELS = [Target, AuditRun, QuerySnapshot, OptimizationLog]


@pytest.fixture
def objects():
    audit = make_audit(slow=[(11, "SELECT * FROM demo_user WHERE email = $1", 12.0)])
    log = make_recommendation(audit=audit)
    return {
        Target: audit.target,
        AuditRun: audit,
        QuerySnapshot: audit.snapshots.get(),
        OptimizationLog: log,
    }


def _pages(objects) -> list[str]:
    urls = []
    for model in MODELS:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_change".format(*info), args=[objects[model].pk]))
    audit = objects[AuditRun]
    urls += [
        reverse("admin:dbarchitect_dashboard"),
        reverse("admin:dbarchitect_audit_report", args=[audit.pk]),
        reverse("admin:dbarchitect_audit_report_markdown", args=[audit.pk]),
        reverse("admin:dbarchitect_audit_progress", args=[audit.pk]),
    ]
    return urls


def test_every_model_of_the_agent_is_registered():
    registered = {
        model
        for model in admin.site._registry
        if model._meta.app_label in {"dbarchitect", "optimizations"}
    }
    assert registered == set(MODELS)


def test_every_page_loads_for_a_staff_user_without_model_permissions(staff_client, objects):
    for url in _pages(objects):
        assert staff_client.get(url).status_code == 200, url


def test_anonymous_users_are_sent_to_the_login_page(client, objects):
    login = reverse("admin:login")
    for url in _pages(objects):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(login), url


def test_a_non_staff_user_is_sent_to_the_login_page(client, django_user_model, objects):
    client.force_login(django_user_model.objects.create_user(username="plain", password="x-123"))
    for url in _pages(objects):
        assert client.get(url).status_code == 302, url


def test_search_and_filters_work(staff_client, objects):
    log = objects[OptimizationLog]
    changelist = reverse("admin:optimizations_optimizationlog_changelist")
    found = staff_client.get(changelist, {"q": "demo_behavior_log_user_ts_idx"})
    assert log.recommendation in found.content.decode()
    missing = staff_client.get(changelist, {"q": "no such index anywhere"})
    assert log.recommendation not in missing.content.decode()
    rejected = staff_client.get(changelist, {"status__exact": "rejected"})
    assert log.recommendation not in rejected.content.decode()

    snapshots = reverse("admin:dbarchitect_querysnapshot_changelist")
    by_queryid = staff_client.get(snapshots, {"q": "11"}).content.decode()
    assert "demo_user WHERE email" in by_queryid


def test_records_are_read_only(staff_client, superuser, client, objects):
    client.force_login(superuser)
    log = objects[OptimizationLog]
    change = reverse("admin:optimizations_optimizationlog_change", args=[log.pk])
    client.post(change, {"status": "applied", "recommendation": "edited"})
    log.refresh_from_db()
    assert (log.status, log.recommendation) == (
        "proposed",
        make_recommendation.__kwdefaults__["recommendation"],
    )
    assert client.get(reverse("admin:optimizations_optimizationlog_add")).status_code == 403
    assert client.get(reverse("admin:dbarchitect_auditrun_add")).status_code == 403


def test_optimization_page_shows_query_ddl_plans_breakdown_and_similar(staff_client, objects):
    log = objects[OptimizationLog]
    similar = make_recommendation(
        recommendation="Create index on demo_behavior_log (user_id)",
        ddl="CREATE INDEX demo_behavior_log_user_idx ON demo_behavior_log (user_id)",
        query="SELECT * FROM demo_behavior_log WHERE user_id = $1",
    )
    unrelated = make_recommendation(
        recommendation="Create index on demo_user (created_at)",
        ddl="CREATE INDEX demo_user_created_idx ON demo_user (created_at)",
        query="SELECT count(*) FROM demo_user WHERE created_at > now() - interval '7 days'",
    )
    response = staff_client.get(
        reverse("admin:optimizations_optimizationlog_change", args=[log.pk])
    )
    html = response.content.decode()

    assert log.query_text in html
    assert log.ddl in html
    trees = response.context["plan_trees"]
    assert (
        "<strong>Seq Scan</strong>" in trees.before and "<strong>Index Scan</strong>" in trees.after
    )
    assert "demo_behavior_log_user_ts_idx" in trees.after and trees.before in html
    assert trees.changed == 2  # a seq scan became an index scan: both nodes marked
    assert "measured_speedup" in html and "0.350" in html
    rows = response.context["similar"]
    assert [row.optimization for row in rows] == [similar, unrelated]  # nearest first, not itself
    assert rows[0].similarity > rows[1].similarity
    assert f"{rows[0].similarity:.3f}" in html
    assert 'id="dba-approve"' in html
    assert 'id="dba-apply"' not in html  # staff, not superuser
