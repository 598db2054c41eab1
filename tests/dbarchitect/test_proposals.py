import os
import shutil
import subprocess
import sys
import uuid

import git
import psycopg
import pytest
from django.conf import settings

from dbarchitect.migration_writer import (
    MigrationWriteError,
    migration_files_write,
    patch_model_source,
)
from dbarchitect.models import Target
from dbarchitect.proposals import (
    ProposalError,
    proposal_candidates,
    proposal_open,
    proposal_record,
)
from optimizations.models import OptimizationLog
from pgaccess.ddl import DdlError, index_spec_parse

from .github_server import GitHubServer

MANAGED_DDL = "CREATE INDEX behavior_log_user_ts ON demo_behavior_log (user_id, timestamp DESC)"
UNMANAGED_DDL = "CREATE INDEX ON audit_events (lower(kind)) WHERE kind IS NOT NULL"
ACTOR = git.Actor("Test", "test@example.com")
SCRATCH_DB = "test_agent_mig"


@pytest.fixture
def project_repo(tmp_path):
    """A real git repository shaped like this project: the demo app, one commit on main."""
    root = tmp_path / "repo"
    shutil.copytree(
        settings.BASE_DIR / "demo", root / "demo", ignore=shutil.ignore_patterns("__pycache__")
    )
    repo = git.Repo.init(root, initial_branch="main")
    repo.git.add("demo")
    repo.index.commit("initial", author=ACTOR, committer=ACTOR)
    origin = tmp_path / "origin.git"
    git.Repo.init(origin, bare=True)
    repo.create_remote("origin", str(origin))
    return root


def _conninfo(dbname: str) -> str:
    params = settings.DATABASES["default"]
    return f"host={params['HOST']} port={params['PORT']} user={params['USER']} dbname={dbname}"


@pytest.fixture
def scratch_db():
    """A throwaway database to run `migrate` on, with one table no Django model maps."""
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    with psycopg.connect(_conninfo(SCRATCH_DB), autocommit=True) as conn:
        conn.execute("CREATE TABLE audit_events (id serial PRIMARY KEY, kind text)")
    yield SCRATCH_DB
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')


def _manage(root, *args):
    params = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/"
        f"{SCRATCH_DB}",
        "PYTHONPATH": str(settings.BASE_DIR),
    }
    # cwd first on sys.path: the repository's demo app shadows the project's.
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_index_spec_parse_sorts_plain_from_sql_only():
    plain = index_spec_parse(MANAGED_DDL)
    assert plain.plain and plain.columns == ("user_id", "timestamp")
    assert plain.descending == (False, True)
    partial = index_spec_parse(UNMANAGED_DDL)
    assert not partial.plain and partial.name.startswith("audit_events_")
    assert partial.create_sql().startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS")
    assert partial.drop_sql() == f'DROP INDEX CONCURRENTLY IF EXISTS "{partial.name}"'
    with pytest.raises(DdlError, match="one CREATE INDEX"):
        index_spec_parse("DROP TABLE demo_user")
    with pytest.raises(DdlError, match="Cannot parse"):
        index_spec_parse("CREATE INDEX ON (")


def test_patch_model_source_adds_meta_indexes_in_each_shape():
    from django.db import models

    index = models.Index(fields=["a"], name="x_a_idx")
    no_meta = "from django.db import models\n\nclass A(models.Model):\n    a = 1\n"
    patched = patch_model_source(no_meta, model_name="A", indexes=[index])
    assert "    class Meta:\n        indexes = [models.Index(fields=['a'], name='x_a_idx')]" in (
        patched
    )
    no_list = no_meta + "\n    class Meta:\n        db_table = 't'\n"
    assert "indexes = [models.Index(" in patch_model_source(
        no_list, model_name="A", indexes=[index]
    )
    with pytest.raises(MigrationWriteError, match="class B not found"):
        patch_model_source(no_meta, model_name="B", indexes=[index])


def test_migration_applies_on_a_real_database_and_makemigrations_stays_clean(
    project_repo, scratch_db
):
    files, names = migration_files_write(
        ddls=[MANAGED_DDL, UNMANAGED_DDL], repo_root=project_repo, name_suffix="dbarchitect_t"
    )
    paths = {str(item.path) for item in files}
    number = len(list((project_repo / "demo/migrations").glob("0*.py")))
    new_file = f"demo/migrations/{number:04d}_dbarchitect_t.py"
    assert paths == {new_file, "demo/models.py"}
    migration = (project_repo / new_file).read_text()
    assert "atomic = False" in migration
    assert "AddIndexConcurrently(" in migration
    assert "fields=['user', '-timestamp']" in migration
    assert "RunSQL(" in migration and "DROP INDEX CONCURRENTLY IF EXISTS" in migration
    assert "behavior_log_user_ts" in (project_repo / "demo/models.py").read_text()

    migrate = _manage(project_repo, "migrate", "--no-input", "-v0")
    assert migrate.returncode == 0, migrate.stderr
    check = _manage(project_repo, "makemigrations", "demo", "--check", "--dry-run")
    assert check.returncode == 0, check.stdout + check.stderr
    with psycopg.connect(_conninfo(scratch_db)) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
            [names],
        ).fetchall()
    assert sorted(rows) == sorted((name, True) for name in names)
    # And it reverses.
    back = _manage(project_repo, "migrate", "demo", f"{number - 1:04d}", "--no-input", "-v0")
    assert back.returncode == 0, back.stderr
    with psycopg.connect(_conninfo(scratch_db)) as conn:
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relname = ANY(%s)", [names])
        assert left.fetchone()[0] == 0


def _logs(target, confidences):
    rows = [
        OptimizationLog(
            target=target,
            query_text=f"SELECT * FROM demo_behavior_log WHERE event_type = $1 -- {i}",
            recommendation=f"index {i}",
            ddl=f"CREATE INDEX behavior_log_evt_{i} ON demo_behavior_log (event_type, user_id)"
            if i
            else "CREATE INDEX behavior_log_evt ON demo_behavior_log (event_type)",
            fingerprint=f"fp{i}",
            confidence=confidence,
            explanation=f"because {i}",
        )
        for i, confidence in enumerate(confidences)
    ]
    return OptimizationLog.objects.bulk_create(rows)


@pytest.mark.django_db
def test_the_gate_branch_commit_push_and_pull_request(project_repo, settings):
    target = Target.objects.create(name="shop")
    logs = _logs(target, [0.95, 0.8, 0.5])
    confident = proposal_candidates(logs)
    assert [log.confidence for log in confident] == [0.95]  # strictly above 0.8
    audit_id = uuid.uuid4().hex
    settings.DBARCHITECT_GIT_REPO = str(project_repo)
    settings.GITHUB_REPOSITORY = "acme/shop"
    settings.GITHUB_TOKEN = "ghp_test_token"
    with GitHubServer() as github:
        settings.GITHUB_API_URL = github.url
        proposal = proposal_open(audit_id=audit_id, logs=confident)
    proposal_record(proposal=proposal, logs=confident)

    repo = git.Repo(project_repo)
    assert repo.active_branch.name == "main" and not repo.is_dirty(untracked_files=True)
    branch = f"dbarchitect/audit-{audit_id[:8]}"
    assert proposal.branch == branch and proposal.pushed
    commit = repo.heads[branch].commit
    assert commit.hexsha == proposal.commit
    assert commit.parents[0] == repo.heads["main"].commit
    number = len(list((project_repo / "demo/migrations").glob("0*.py"))) + 1
    assert sorted(commit.stats.files) == [
        f"demo/migrations/{number:04d}_dbarchitect_{audit_id[:8]}.py",
        "demo/models.py",
    ]
    origin = git.Repo(project_repo.parent / "origin.git")
    assert origin.heads[branch].commit.hexsha == proposal.commit

    [request] = github.requests
    assert request["path"] == "/repos/acme/shop/pulls"
    assert request["json"]["head"] == branch and request["json"]["base"] == "main"
    assert request["json"]["title"] == f"DB Architect: 1 index from audit {audit_id[:8]}"
    assert "behavior_log_evt" in request["json"]["body"] and "because 0" in request["json"]["body"]
    assert request["headers"]["Authorization"].endswith("ghp_test_token")
    stored = OptimizationLog.objects.get(pk=confident[0].pk)
    assert stored.pr_url == "https://github.example/acme/shop/pull/1"
    assert stored.details["proposal"]["branch"] == branch
    assert set(OptimizationLog.objects.exclude(pk=stored.pk).values_list("pr_url", flat=True)) == {
        ""
    }


@pytest.mark.django_db
def test_pull_request_refused_is_a_clear_error(project_repo, settings):
    logs = _logs(Target.objects.create(name="shop"), [0.9])
    settings.DBARCHITECT_GIT_REPO = str(project_repo)
    settings.GITHUB_REPOSITORY = "acme/shop"
    settings.GITHUB_TOKEN = "ghp_test_token"
    with GitHubServer() as github:
        github.refuse_with = (422, {"message": "Validation Failed"})
        settings.GITHUB_API_URL = github.url
        with pytest.raises(ProposalError, match="422 Validation Failed") as caught:
            proposal_open(audit_id=uuid.uuid4().hex, logs=logs)
    assert "ghp_test_token" not in str(caught.value)


@pytest.mark.django_db
def test_without_github_settings_the_branch_is_committed_and_not_pushed(project_repo, settings):
    logs = _logs(Target.objects.create(name="shop"), [0.9])
    git.Repo(project_repo).delete_remote("origin")
    settings.DBARCHITECT_GIT_REPO = str(project_repo)
    settings.GITHUB_TOKEN = ""
    proposal = proposal_open(audit_id=uuid.uuid4().hex, logs=logs)
    assert proposal.pr_url == "" and not proposal.pushed
    assert proposal.branch in git.Repo(project_repo).heads
    with pytest.raises(ProposalError, match="already exists"):
        proposal_open(audit_id=proposal.branch.rsplit("-", 1)[1] + "0" * 24, logs=logs)
    settings.DBARCHITECT_GIT_REPO = str(project_repo.parent)
    with pytest.raises(ProposalError, match="not a git repository"):
        proposal_open(audit_id=uuid.uuid4().hex, logs=logs)


def test_a_long_index_name_is_shortened_the_same_way_for_migration_and_apply():
    from dbarchitect.migration_writer import plan_migrations
    from optimizations.model_indexes import index_resolve

    ddl = 'CREATE INDEX "demo_behavior_log_user_id_event_type_idx" ON demo_behavior_log (user_id)'
    spec, model, index = index_resolve(ddl)
    assert model.__name__ == "BehaviorLog"
    assert len(spec.name) <= 30 and spec.name == index.name and spec.name.startswith("dba_")
    [plan] = plan_migrations([ddl], fallback_app="demo").values()
    assert plan.index_names == [spec.name]
    # A table no model maps keeps the advisor's name (PostgreSQL allows 63 characters).
    other, model, index = index_resolve(ddl.replace("demo_behavior_log (", "audit_events ("))
    assert model is None and index is None
    assert other.name == "demo_behavior_log_user_id_event_type_idx"


# --- The gate, in the audit pipeline (B's workload in tests/dbarchitect/conftest.py) ---


def _configure_repo(settings, project_repo, github_url: str) -> None:
    settings.DBARCHITECT_GIT_REPO = str(project_repo)
    settings.DBARCHITECT_GIT_MIGRATIONS_APP = "demo"
    settings.GITHUB_REPOSITORY = "acme/shop"
    settings.GITHUB_TOKEN = "ghp_test_token"
    settings.GITHUB_API_URL = github_url


@pytest.mark.django_db(transaction=True)
def test_a_verified_audit_opens_a_pull_request_for_what_passes_the_gate(
    default_target, workload_conn, project_repo, settings
):
    from dbarchitect.agent import run_audit

    from .conftest import pgss_reset_own_database, recent_logs

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 30)
    # This small workload's index measures 6-10x faster from run to run (a shared machine),
    # so it scores about 0.75-0.82; the gate is set where the test can tell the two groups
    # apart for sure. proposal_candidates' strict "> 0.8" is tested on fixed values above.
    settings.DBARCHITECT_PR_CONFIDENCE = 0.5
    with GitHubServer() as github:
        _configure_repo(settings, project_repo, github.url)
        audit = run_audit(target="default")
    assert audit.status == "succeeded", audit.error
    logs = list(audit.optimizations.all())
    above = [log for log in logs if log.confidence > 0.5]
    below = [log for log in logs if log.confidence <= 0.5]
    assert [log.kind for log in above] == ["index"]  # measured: passes
    assert below  # the health findings carry no measured gain
    [request] = github.requests
    assert above[0].ddl.split(" ON ")[1] in request["json"]["body"]
    assert all(log.ddl not in request["json"]["body"] for log in below if log.ddl)
    proposal = audit.report["proposal"]
    assert proposal["status"] == "opened" and proposal["candidates"] == [str(above[0].pk)]
    assert {log.pr_url for log in above} == {proposal["pr_url"]}
    assert {log.pr_url for log in below} == {""}
    # pl_behavior_log has no Django model: plain SQL in the configured app's migrations.
    branch = git.Repo(project_repo).heads[proposal["branch"]].commit
    [migration] = [path for path in branch.stats.files if "/migrations/" in path]
    source = branch.tree[migration].data_stream.read().decode()
    assert "RunSQL(" in source and "CREATE INDEX CONCURRENTLY IF NOT EXISTS" in source


@pytest.mark.django_db(transaction=True)
def test_nothing_is_proposed_when_no_recommendation_passes_the_gate(
    default_target, workload_conn, project_repo, settings
):
    from dbarchitect.agent import run_audit

    from .conftest import pgss_reset_own_database, recent_logs

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 30)
    with GitHubServer() as github:
        _configure_repo(settings, project_repo, github.url)
        settings.DBARCHITECT_PR_CONFIDENCE = 0.999
        audit = run_audit(target="default")
    assert audit.status == "succeeded", audit.error
    assert audit.optimizations.filter(kind="index").exists()
    assert github.requests == []
    assert "proposal" not in audit.report
    assert [head.name for head in git.Repo(project_repo).heads] == ["main"]
