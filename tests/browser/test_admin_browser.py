"""The admin in a real browser at 1280x800: log in, read the ranked recommendations, open
the dashboard, run an audit, read its report, ask questions and see the answers drawn.

Headless Debian chromium driven by Playwright (the system browser, never a download),
against pytest-django's live server with the real PostgreSQL, the real agent and eager
Celery. With SCREENSHOT_DIR set (e.g. docs/screenshots), saves there the pictures the README
shows (dashboard.png, recommendations.png, answer.png); a plain run leaves the tree untouched.
"""

import datetime
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from nlsql.training import training_add_pair
from optimizations.decisions import recommendation_approve
from optimizations.models import OptimizationLog
from tests.tools import requires_tool

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "browser-pass-123"
QUESTION = "How many behaviour events of each type are there?"
ANSWER_SQL = (
    "SELECT event_type, count(*) AS events FROM demo_behavior_log "
    "GROUP BY event_type ORDER BY events DESC"
)
SERIES_QUESTION = "How many users signed up each month?"
SERIES_SQL = (
    "SELECT date_trunc('month', created_at) AS month, count(*) AS signups "
    "FROM demo_user GROUP BY 1 ORDER BY 1"
)
# The pictures the README shows, copied to SCREENSHOT_DIR when it is set.
README_PICTURES = ("dashboard.png", "recommendations.png", "answer.png")
# How many non-transparent pixels a canvas has: a drawn chart has thousands, an empty one 0.
DRAWN_PIXELS = """id => {
    const canvas = document.getElementById(id);
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) drawn++; }
    return drawn;
}"""
# An audit (seconds here) runs inside the "Run audit now" request with eager Celery.
AUDIT_TIMEOUT_MS = 180_000

pytestmark = [
    requires_tool(CHROMIUM.exists(), "Debian's chromium at /usr/bin/chromium"),
    pytest.mark.django_db(transaction=True),
]


def _workload() -> None:
    call_command("run_demo_workload", repeat=8, verbosity=0)


@pytest.fixture
def history(django_user_model):
    """A small demo database with a real audit from "last week" and a staff superuser."""
    call_command("seed_demo", users=400, logs=40_000, verbosity=0)
    with connection.cursor() as cursor:
        # What autovacuum does soon after a bulk load: the planner needs the statistics.
        cursor.execute("ANALYZE demo_user, demo_behavior_log")
    _workload()
    first = run_audit(target="default", verify=True)
    assert first.status == AuditRun.Status.SUCCEEDED, first.error
    week_ago = timezone.now() - datetime.timedelta(days=8)
    AuditRun.objects.filter(pk=first.pk).update(
        started_at=week_ago, finished_at=week_ago + datetime.timedelta(seconds=30)
    )
    OptimizationLog.objects.filter(audit=first).update(created_at=week_ago)
    user = django_user_model.objects.create_superuser(
        username="architect", password=PASSWORD, email="architect@example.com"
    )
    proposed = OptimizationLog.objects.filter(audit=first).order_by("-confidence").first()
    if proposed is not None:
        recommendation_approve(recommendation=proposed, user=user)
    training_add_pair(question=QUESTION, sql=ANSWER_SQL)
    training_add_pair(question=SERIES_QUESTION, sql=SERIES_SQL)
    _workload()  # this week's traffic, for the audit the browser starts
    return first


def _browser(playwright):
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )


def test_log_in_see_the_dashboard_run_an_audit_and_ask(live_server, history, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    pending = OptimizationLog.objects.filter(status="proposed").order_by("created_at").first()
    assert pending is not None, "the first audit recorded nothing to decide on"
    largest = OptimizationLog.objects.order_by("-impact", "-created_at").first()
    assert largest.impact > 0 and largest.impact_basis == "measured"
    with connection.cursor() as cursor:
        cursor.execute(ANSWER_SQL)
        expected_rows = [[str(value) for value in row] for row in cursor.fetchall()]
    errors: list[str] = []
    # No ORM below while Playwright's event loop runs in this thread: only the browser.
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(30_000)

        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "architect")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#dba-index-panel")).to_contain_text("DB Architect")

        # The ranked list: the largest time saved first, every column on screen at 1280 px.
        page.goto(f"{live_server.url}/admin/optimizations/optimizationlog/")
        first_row = page.locator("input[name=_selected_action]").first.get_attribute("value")
        list_width = page.evaluate(
            "() => { const r = document.querySelector('#changelist .results');"
            " return [r.scrollWidth, r.clientWidth, document.documentElement.scrollWidth]; }"
        )
        expect(page.locator("#result_list th.column-status_badge")).to_be_in_viewport()
        page.screenshot(path=str(tmp_path / "recommendations.png"))
        page.goto(f"{live_server.url}/admin/")

        page.click("#dba-dashboard-link")
        expect(page.locator("h1")).to_have_text("DB Architect dashboard")
        expect(page.locator("#dba-latest-audit")).to_contain_text("succeeded")

        page.select_option("#dba-verify", "on")
        with page.expect_navigation(timeout=AUDIT_TIMEOUT_MS):
            page.click("#dba-run-button")
        progress = page.locator("#dba-progress")
        expect(progress).to_contain_text("succeeded", timeout=AUDIT_TIMEOUT_MS)
        expect(page.locator("#dba-progress-report")).to_be_visible()

        page.click("text=Refresh the dashboard")
        expect(page.locator("#dba-slow-last-week")).to_be_visible()
        page.wait_for_function(
            "() => typeof Chart !== 'undefined' && "
            "['dba-chart-status', 'dba-chart-gain', 'dba-chart-confidence', 'dba-chart-slow']"
            ".every(id => Chart.getChart(id) !== undefined)"
        )
        page.wait_for_timeout(800)  # the charts' entry animation
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

        page.click("#dba-latest-audit >> text=Report")
        expect(page.locator("#dba-found")).to_be_visible()
        page.wait_for_function("() => Chart.getChart('dba-chart-phases') !== undefined")
        phase_pixels = page.evaluate(DRAWN_PIXELS, "dba-chart-phases")
        expect(page.locator("#dba-ranked")).to_contain_text("largest time saved first")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/nlsql/questionlog/ask/")
        page.fill("textarea[name=question]", QUESTION)
        page.click("#ask-form [type=submit]")
        rows = page.locator("#answer-rows tbody tr")
        expect(rows.first).to_be_visible()
        shown_rows = [
            [cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all()
        ]
        page.wait_for_function("() => Chart.getChart('answer-chart') !== undefined")
        bar_type = page.evaluate("() => Chart.getChart('answer-chart').config.type")
        page.screenshot(path=str(tmp_path / "ask.png"), full_page=True)

        # A time series: drawn as a line, pixels on the canvas.
        page.fill("textarea[name=question]", SERIES_QUESTION)
        page.click("#ask-form [type=submit]")
        page.wait_for_function("() => Chart.getChart('answer-chart') !== undefined")
        line_type = page.evaluate("() => Chart.getChart('answer-chart').config.type")
        line_points = page.evaluate("() => Chart.getChart('answer-chart').data.labels.length")
        line_pixels = page.evaluate(DRAWN_PIXELS, "answer-chart")
        expect(page.locator("#answer-csv")).to_be_visible()
        expect(page.locator("#answer-estimate-note")).to_contain_text("planner's estimates")
        page.evaluate("() => document.querySelector('#answer').scrollIntoView()")
        page.screenshot(path=str(tmp_path / "answer.png"))

        # A decision in the browser: the Approve button posts the page's form elsewhere.
        page.goto(f"{live_server.url}/admin/optimizations/optimizationlog/{pending.pk}/change/")
        expect(page.locator("#dba-status")).to_have_text("proposed")
        page.click("#dba-approve")
        expect(page.locator("#dba-status")).to_have_text("approved")
        expect(page.locator(".messagelist")).to_contain_text("1 recommendation approved.")
        expect(page.locator("#dba-plan-before .dba-plan-tree")).to_be_visible()
        expect(page.locator("#dba-plan-after .dba-plan-tree")).to_be_visible()
        page.screenshot(path=str(tmp_path / "optimization.png"), full_page=True)
        browser.close()

    assert errors == []
    assert first_row == str(largest.pk)
    assert list_width[0] <= list_width[1] and list_width[2] <= 1280  # nothing cut off
    assert phase_pixels > 500
    assert bar_type == "bar"
    with connection.cursor() as cursor:
        cursor.execute(SERIES_SQL)
        months = len(cursor.fetchall())
    assert line_type == "line" and line_points == months >= 2
    assert line_pixels > 1000
    assert len(expected_rows) >= 2  # the seed has several event types
    assert shown_rows == expected_rows
    pending.refresh_from_db()
    assert pending.status == "approved"
    latest = AuditRun.objects.order_by("-started_at").first()
    assert latest.status == AuditRun.Status.SUCCEEDED and latest.pk != history.pk
    if os.environ.get("SCREENSHOT_DIR"):
        target = Path(settings.BASE_DIR) / os.environ["SCREENSHOT_DIR"]
        target.mkdir(parents=True, exist_ok=True)
        for name in README_PICTURES:
            shutil.copyfile(tmp_path / name, target / name)
