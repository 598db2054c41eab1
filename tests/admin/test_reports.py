import pytest
from django.urls import reverse

from dbarchitect.reports import audit_report_markdown, plan_text

from .factories import PLAN_AFTER, PLAN_BEFORE, make_audit, make_recommendation

pytestmark = pytest.mark.django_db

USER_LOGS = "SELECT * FROM demo_behavior_log WHERE user_id = $1"


@pytest.fixture
def audit():
    audit = make_audit(
        slow=[(11, USER_LOGS, 80.0), (12, "SELECT * FROM demo_user WHERE name->>'vi' | $1", 9.0)],
        skipped=[
            {"queryid": 77, "query": "SELECT * FROM pg_temp.t", "reason": "temporary table"},
        ],
    )
    make_recommendation(audit=audit)
    return audit


def test_plan_text_reads_like_psql():
    assert plan_text(PLAN_BEFORE) == (
        "Seq Scan on demo_behavior_log  (cost=0.00..18334.00 rows=12)\n  Filter: (user_id = $1)"
    )
    assert "Index Scan using demo_behavior_log_user_ts_idx" in plan_text(PLAN_AFTER)
    assert plan_text(None) == ""


def test_markdown_has_findings_recommendations_plans_and_skips(audit):
    text = audit_report_markdown(audit=audit)

    assert text.startswith("# Audit report: default, ")
    assert (
        "| 11 | 100 | 80.00 | 8000.0 | SELECT * FROM demo_behavior_log WHERE user_id = $1 |" in text
    )
    assert "name->>'vi' \\| $1" in text  # a pipe in a query does not break the table
    assert "### 1. Create index on demo_behavior_log (user_id, timestamp)" in text
    assert "Why: Every call scans the whole table for one user's rows." in text
    assert "CREATE INDEX demo_behavior_log_user_ts_idx ON demo_behavior_log" in text
    assert "- Measured: 85.000 ms -> 0.900 ms (98.9% faster)" in text
    assert "| measured_speedup | 1.200 | 0.350 | 1.000 |" in text
    assert "Plan before:\n\n```\nSeq Scan on demo_behavior_log" in text
    assert "Plan after:\n\n```\nIndex Scan using demo_behavior_log_user_ts_idx" in text
    assert "| 77 | SELECT * FROM pg_temp.t | temporary table |" in text


def test_an_audit_without_findings_says_so():
    text = audit_report_markdown(audit=make_audit())
    assert "No query passed the slow-query thresholds." in text
    assert "Nothing new was recommended." in text


def test_recommendations_found_again_are_listed_from_the_stored_report():
    audit = make_audit()
    audit.report = {
        "verification": "skipped: verification is off for this audit",
        "recommendations": [
            {"recommendation": "Create index ix on t (a)", "already_recorded": True},
            {"recommendation": "Create index iy on t (b)", "already_recorded": False},
        ],
    }
    audit.save(update_fields=["report"])
    text = audit_report_markdown(audit=audit)
    assert "Verification: skipped: verification is off for this audit" in text
    assert "- Create index ix on t (a)" in text
    assert "Create index iy on t (b)" not in text


def test_report_page_and_markdown_download(staff_client, audit):
    page = staff_client.get(reverse("admin:dbarchitect_audit_report", args=[audit.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Create index on demo_behavior_log (user_id, timestamp)" in html
    assert "temporary table" in html
    # The plans as trees, the node the index changed marked.
    assert (
        '<strong>Seq Scan</strong> on <span class="dba-plan-rel">demo_behavior_log</span>' in html
    )
    assert "(changed nodes marked)" in html and 'class="dba-plan-changed"' in html

    download = staff_client.get(reverse("admin:dbarchitect_audit_report_markdown", args=[audit.pk]))
    assert download.status_code == 200
    assert download["Content-Type"] == "text/markdown; charset=utf-8"
    assert download["Content-Disposition"].startswith('attachment; filename="audit-default-')
    assert (
        "### 1. Create index on demo_behavior_log (user_id, timestamp)" in download.content.decode()
    )
