"""The DBA's view: the largest time saved first, numbers as people read them, the audit told
on its own page (ranked recommendations, phase and frontier charts, the pull request)."""

import json
import re

import pytest
from django.template import Context, Template
from django.urls import reverse

from dbarchitect.dashboard import dashboard_top_impact
from dbarchitect.report import report_text
from optimizations.models import OptimizationLog

from .factories import make_audit, make_recommendation

pytestmark = pytest.mark.django_db
Basis = OptimizationLog.ImpactBasis
LIST = "admin:optimizations_optimizationlog_changelist"


@pytest.fixture
def ranked():
    """Newest first would put the tiny one first; impact puts the big one first."""
    audit = make_audit(slow=[(11, "SELECT 1 FROM demo_behavior_log", 80.0)])
    big = make_recommendation(
        audit=audit,
        recommendation="Create index big",
        ddl="CREATE INDEX big_idx ON demo_behavior_log (user_id, timestamp)",
        impact=3_843_535.629,
        impact_basis=Basis.MEASURED,
        size_bytes=15_700_000,
        confidence=0.92,
    )
    middle = make_recommendation(
        audit=audit,
        recommendation="Create index middle",
        ddl="CREATE INDEX middle_idx ON demo_behavior_log (event_type)",
        impact=153.74142516,
        impact_basis=Basis.ESTIMATED,
        measured=None,
        confidence=0.6,
    )
    small = make_recommendation(
        audit=audit,
        recommendation="Drop index tiny",
        ddl="DROP INDEX CONCURRENTLY IF EXISTS tiny_idx",
        kind=OptimizationLog.Kind.DROP_INDEX,
        cost=None,
        measured=None,
        size_bytes=16_384,
        confidence=0.3,
    )
    return audit, [big, middle, small]


def _row_ids(html: str) -> list[str]:
    return re.findall(r'name="_selected_action" value="([0-9a-f-]{36})"', html)


def test_the_list_puts_the_largest_time_saved_first_with_the_columns_a_dba_decides_on(
    staff_client, ranked
):
    _, (big, middle, small) = ranked
    response = staff_client.get(reverse(LIST))
    html = response.content.decode()

    assert _row_ids(html) == [str(big.pk), str(middle.pk), str(small.pk)]
    head = html.split('<table id="result_list">')[1].split("</thead>")[0]
    cells = head.split('<th scope="col"')[2:]  # after the select-all checkbox
    assert [re.sub(r"<[^>]+>", "", "<th" + cell).strip() for cell in cells] == [
        "Recommendation",
        "Kind",
        "Table",
        "Time saved",
        "Speed-up",
        "Size",
        "Confidence",
        "Status",
    ]
    assert "1.07 h/week" in html and "measured" in html  # 3,843,535 ms a week
    assert "154 ms/week" in html and "estimated" in html
    assert "94x" in html and "15.0 MB" in html and "16.0 kB" in html
    assert (
        "demo_behavior_log" in html and "public.demo_behavior_log" not in html.split("<tbody>")[1]
    )
    assert response.context["is_nav_sidebar_enabled"] is False  # the width goes to the list


def test_the_list_may_still_be_ordered_by_another_column(staff_client, ranked):
    _, (big, middle, small) = ranked
    index = _column_index("confidence_display")
    html = staff_client.get(reverse(LIST), {"o": f"{index}"}).content.decode()
    assert _row_ids(html) == [str(small.pk), str(middle.pk), str(big.pk)]


def _column_index(name: str) -> int:
    from django.contrib import admin

    model_admin = admin.site._registry[OptimizationLog]
    return model_admin.list_display.index(name) + 1  # the action checkbox is column 0


def test_the_dashboard_opens_with_the_open_recommendations_that_save_most(staff_client, ranked):
    _, (big, middle, small) = ranked
    middle.status = OptimizationLog.Status.REJECTED
    middle.save(update_fields=["status"])

    assert dashboard_top_impact() == [big, small]
    html = staff_client.get(reverse("admin:dbarchitect_dashboard")).content.decode()
    table = html.split('id="dba-top-impact"')[1].split("</table>")[0]
    assert table.index(str(big.pk)) < table.index(str(small.pk))
    assert str(middle.pk) not in table and "1.07 h/week" in table


def test_the_audit_page_tells_the_audit_ranked_charted_and_formatted(staff_client, ranked):
    audit, (big, middle, small) = ranked
    audit.phase_seconds = {"record": 3.8435356290000004, "collect": 0.15374142516, "advise": 1.5}
    audit.report = {
        "small_drops_left_out": {"count": 5, "below_bytes": 1_048_576},
        "proposal": {
            "status": "opened",
            "branch": "dbarchitect/audit-1234abcd",
            "base": "main",
            "commit": "f93e92645a84" + "0" * 28,
            "files": ["demo/migrations/0003_dbarchitect_1234abcd.py", "demo/models.py"],
            "pushed": False,
            "pr_url": "",
        },
    }
    audit.save(update_fields=["phase_seconds", "report"])
    response = staff_client.get(reverse("admin:dbarchitect_audit_report", args=[audit.pk]))
    html = response.content.decode()

    ranked_table = html.split('id="dba-ranked"')[1].split("</table>")[0]
    positions = [ranked_table.index(str(log.pk)) for log in (big, middle, small)]
    assert positions == sorted(positions)
    assert "94x" in ranked_table and "15.0 MB" in ranked_table
    assert "3843.5356290000004" not in html and "153.74142516" not in html
    assert "8.00 s" in html  # the slow query's total (8,000 ms) in seconds
    phases = json.loads(html.split('id="dba-phase-data" type="application/json">')[1].split("<")[0])
    assert phases["labels"] == ["collect", "advise", "record"]  # the order an audit runs them
    assert phases["series"][0]["data"] == [0.154, 1.5, 3.844]
    assert 'data-dba-chart="dba-phase-data"' in html
    assert "not proposed: 5 unused or duplicate indexes smaller than 1.0 MB" in html
    proposal = html.split('id="dba-proposal"')[1].split("</td>")[0]
    assert "dbarchitect/audit-1234abcd" in proposal and "f93e92645a84" in proposal
    assert "demo/migrations/0003_dbarchitect_1234abcd.py" in proposal
    assert "needs GITHUB_TOKEN and GITHUB_REPOSITORY" in proposal
    assert 'id="dba-frontier"' not in html  # no frontier in this audit's JSON


@pytest.mark.parametrize(
    ("proposal", "shown"),
    [
        ({"status": "skipped", "reason": "DBARCHITECT_GIT_REPO is not set"}, "is not set"),
        ({"status": "failed", "error": "git push of x failed: denied"}, "push of x failed"),
        (None, "no recommendation above the confidence gate"),
    ],
)
def test_the_audit_page_says_why_there_is_no_branch(staff_client, ranked, proposal, shown):
    audit, _ = ranked
    audit.report = {"proposal": proposal} if proposal else {}
    audit.save(update_fields=["report"])
    response = staff_client.get(reverse("admin:dbarchitect_audit_report", args=[audit.pk]))
    cell = response.content.decode().split('id="dba-proposal"')[1].split("</td>")[0]
    assert shown in cell


def test_the_audit_page_draws_the_budget_frontier_when_the_audit_carries_one(staff_client, ranked):
    audit, _ = ranked
    audit.report = {
        "frontier": [
            {"budget_bytes": 104_857_600, "indexes": ["a_idx", "b_idx"], "relative_cost": 0.31},
            {"budget_bytes": 0, "indexes": [], "relative_cost": 1.0},
            {"budget_bytes": 16_777_216, "indexes": ["a_idx"], "relative_cost": 0.52},
        ]
    }
    audit.save(update_fields=["report"])
    html = staff_client.get(
        reverse("admin:dbarchitect_audit_report", args=[audit.pk])
    ).content.decode()

    assert 'data-dba-chart="dba-frontier-data"' in html
    spec = json.loads(
        html.split('id="dba-frontier-data" type="application/json">')[1].split("<")[0]
    )
    assert spec["kind"] == "line"
    assert spec["labels"] == ["0 bytes", "16.0 MB", "100.0 MB"]  # by budget, sizes readable
    assert spec["series"][0]["data"] == [1.0, 0.52, 0.31]
    assert spec["extra"]["indexes"] == [0, 1, 2]


def test_the_audit_page_says_which_budget_was_applied_beside_the_frontier(staff_client, ranked):
    audit, _ = ranked
    audit.report = {
        "frontier": [{"budget_bytes": 16_777_216, "indexes": ["a_idx"], "relative_cost": 0.5}],
        "budget": {
            "budget": "10% of the audited tables",
            "budget_bytes": 104_857_600,
            "used_bytes": 16_777_216,
            "size_estimate": "built",
            "tables_bytes": 1_048_576_000,
        },
    }
    audit.save(update_fields=["report"])
    html = staff_client.get(
        reverse("admin:dbarchitect_audit_report", args=[audit.pk])
    ).content.decode()

    text = " ".join(html.replace("\xa0", " ").split())
    assert (
        "Budget applied: 10% of the audited tables (100.0 MB); the recommended set takes "
        "16.0 MB (built sizes)."
    ) in text


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ("{{ v|ms }}", 153.74142516, "154 ms"),
        ("{{ v|ms }}", 3843.5356290000004, "3.84 s"),
        ("{{ v|ms }}", 4.68, "4.68 ms"),
        ("{{ v|ms }}", 0.0123, "0.012 ms"),
        ("{{ v|ms }}", None, "-"),
        ("{{ v|seconds }}", 0.0456, "45.6 ms"),
        ("{{ v|seconds }}", 125.0, "2.08 min"),
        ("{{ v|impact }}", 7_260_000, "2.02 h/week"),
        ("{{ v|impact }}", 0.0, "-"),
        ("{{ v|bytes }}", 8192, "8.0 kB"),
        ("{{ v|bytes }}", 3 * 1024**3, "3.0 GB"),
        ("{{ v|count }}", 1_000_000, "1,000,000"),
        ("{{ v|count }}", 17450.0, "17,450"),
        ("{{ v|speedup:0.02 }}", 4.68, "234x"),
        ("{{ v|speedup:2.0 }}", 1.0, "0.50x"),
        ("{{ v|speedup:None }}", 4.68, "-"),
    ],
)
def test_numbers_read_as_people_read_them(template, value, expected):
    rendered = Template("{% load dba_format %}" + template).render(Context({"v": value}))
    assert rendered == expected


def test_the_text_report_counts_small_drops_and_shows_the_proposal_commit():
    text = report_text(
        {
            "audit_id": "a",
            "target": "default",
            "status": "succeeded",
            "small_drops_left_out": {"count": 5, "below_bytes": 1_048_576},
            "proposal": {
                "status": "opened",
                "branch": "dbarchitect/audit-1234abcd",
                "commit": "f93e92645a84" + "0" * 28,
                "files": ["demo/migrations/0003_dbarchitect_1234abcd.py"],
                "notes": ["GITHUB_TOKEN / GITHUB_REPOSITORY not set: no pull request"],
            },
        }
    )
    assert "Not proposed: 5 unused or duplicate index(es) smaller than 1.0 MB" in text
    assert "Proposal: opened dbarchitect/audit-1234abcd" in text
    assert "  commit f93e92645a84: demo/migrations/0003_dbarchitect_1234abcd.py" in text
    assert "  GITHUB_TOKEN / GITHUB_REPOSITORY not set: no pull request" in text
