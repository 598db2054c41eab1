"""The admin in a real browser: log in, open the dashboard, run an audit, ask a question.

Headless Debian chromium driven by Playwright (the system browser, never a download),
against pytest-django's live server with the real PostgreSQL, the real agent and eager
Celery. With SCREENSHOT_DIR set (e.g. docs/screenshots), saves the dashboard there as
dashboard.png, the picture the README shows; a plain test run leaves the tree untouched.
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
    with connection.cursor() as cursor:
        cursor.execute(ANSWER_SQL)
        expected_rows = [[str(value) for value in row] for row in cursor.fetchall()]
    errors: list[str] = []
    # No ORM below while Playwright's event loop runs in this thread: only the browser.
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(30_000)

        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "architect")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#dba-index-panel")).to_contain_text("DB Architect")

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
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/nlsql/questionlog/ask/")
        page.fill("textarea[name=question]", QUESTION)
        page.click("#ask-form [type=submit]")
        rows = page.locator("#answer-rows tbody tr")
        expect(rows.first).to_be_visible()
        shown_rows = [
            [cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all()
        ]
        page.screenshot(path=str(tmp_path / "ask.png"), full_page=True)

        # A decision in the browser: the Approve button posts the page's form elsewhere.
        page.goto(f"{live_server.url}/admin/optimizations/optimizationlog/{pending.pk}/change/")
        expect(page.locator("#dba-status")).to_have_text("proposed")
        page.click("#dba-approve")
        expect(page.locator("#dba-status")).to_have_text("approved")
        expect(page.locator(".messagelist")).to_contain_text("1 recommendation approved.")
        page.screenshot(path=str(tmp_path / "optimization.png"), full_page=True)
        browser.close()

    assert errors == []
    assert len(expected_rows) >= 2  # the seed has several event types
    assert shown_rows == expected_rows
    pending.refresh_from_db()
    assert pending.status == "approved"
    latest = AuditRun.objects.order_by("-started_at").first()
    assert latest.status == AuditRun.Status.SUCCEEDED and latest.pk != history.pk
    if os.environ.get("SCREENSHOT_DIR"):
        target = Path(settings.BASE_DIR) / os.environ["SCREENSHOT_DIR"]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "dashboard.png", target / "dashboard.png")
