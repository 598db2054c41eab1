"""`make demo` shows the pull-request path: the confident recommendations become a migration
committed on a branch of a scratch repository under .local/, never in the user's checkout."""

import subprocess
from pathlib import Path

import git
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from demo.scratch_repo import ScratchRepoError, scratch_repo_prepare

ROOT = Path(settings.BASE_DIR)


def _project_branches() -> str:
    return git.Repo(ROOT).git.branch("--list", "dbarchitect/*")


def test_make_demo_audits_with_the_scratch_repository_under_local():
    dry_run = subprocess.run(
        ["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    repo = ROOT / ".local" / "demo-repo"
    assert f"manage.py demo_git_repo --path {repo}" in dry_run
    assert f"DBARCHITECT_GIT_REPO={repo} .venv/bin/python manage.py run_audit" in dry_run
    assert dry_run.index("demo_git_repo") < dry_run.index("run_audit")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(repo)], cwd=ROOT)
    assert ignored.returncode == 0  # .local/ is ignored: the scratch repo is never committed


def test_the_scratch_repository_is_never_the_checkout_nor_a_stranger(tmp_path):
    with pytest.raises(ScratchRepoError, match="the project's own checkout"):
        scratch_repo_prepare(path=ROOT)
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("my work")
    with pytest.raises(ScratchRepoError, match="not the demo's scratch repository"):
        scratch_repo_prepare(path=stranger)
    assert (stranger / "notes.txt").read_text() == "my work"


def test_the_scratch_repository_holds_the_apps_layout_once(tmp_path, capsys):
    path = tmp_path / "repo"
    call_command("demo_git_repo", path=str(path))
    assert f"Scratch repository created: {path}" in capsys.readouterr().out
    files = set(git.Repo(path).git.ls_files().splitlines())
    assert {"demo/models.py", "demo/migrations/0001_initial.py"} <= files
    assert not any(name.startswith(".venv") for name in files)  # installed packages stay out
    again = scratch_repo_prepare(path=path)
    assert not again.created and not again.changed


@pytest.mark.django_db(transaction=True)
def test_the_demo_audit_commits_its_migration_on_a_branch_and_the_admin_shows_it(
    tmp_path, admin_client
):
    call_command("seed_demo", users=2_000, logs=100_000, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE demo_user, demo_behavior_log")
    call_command("run_demo_workload", repeat=8, verbosity=0)
    scratch = scratch_repo_prepare(path=tmp_path / "repo")
    before = _project_branches()
    own_migrations = sorted(p.name for p in (ROOT / "demo" / "migrations").glob("*.py"))

    with override_settings(DBARCHITECT_GIT_REPO=str(scratch.path), GITHUB_TOKEN=""):
        audit = run_audit(target="default", verify=True)

    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    audit.refresh_from_db()
    indexes = list(audit.optimizations.filter(kind="index").order_by("-impact"))
    assert indexes and all(log.impact > 0 for log in indexes)
    measured = [log for log in indexes if log.measured_ms_after is not None]
    # Measured where the measurement is of what it serves (one query); an index that also
    # serves other queries (the test database may hold other tests' schemas) is estimated.
    assert measured and any(log.impact_basis == "measured" for log in measured)
    assert {log.impact_basis for log in indexes} <= {"measured", "estimated"}
    assert indexes[0].details["impact"]["calls_per_week"] > 0
    assert "small_drops_left_out" in audit.report
    proposal = audit.report["proposal"]
    assert proposal["status"] == "opened", proposal
    repo = git.Repo(scratch.path)
    assert proposal["branch"] in repo.heads
    commit = repo.commit(proposal["branch"])
    assert commit.hexsha == proposal["commit"] and commit.parents[0].hexsha == scratch.commit
    migration = next(f for f in proposal["files"] if "/migrations/" in f)
    text = commit.tree[migration].data_stream.read().decode()
    assert "atomic = False" in text  # built CONCURRENTLY, outside a transaction
    assert "AddIndexConcurrently" in text or "CREATE INDEX CONCURRENTLY" in text
    # The user's checkout is untouched: no branch, no migration file.
    assert _project_branches() == before
    assert sorted(p.name for p in (ROOT / "demo" / "migrations").glob("*.py")) == own_migrations

    report = admin_client.get(reverse("admin:dbarchitect_audit_report", args=[audit.pk]))
    cell = report.content.decode().split('id="dba-proposal"')[1].split("</td>")[0]
    assert proposal["branch"] in cell and proposal["commit"][:12] in cell and migration in cell
    assert "opening one needs GITHUB_TOKEN and GITHUB_REPOSITORY" in cell
    proposed = audit.optimizations.get(pk=proposal["candidates"][0])
    page = admin_client.get(
        reverse("admin:optimizations_optimizationlog_change", args=[proposed.pk])
    ).content.decode()
    assert proposal["branch"] in page and migration in page
    assert "needs GITHUB_TOKEN and GITHUB_REPOSITORY" in page
