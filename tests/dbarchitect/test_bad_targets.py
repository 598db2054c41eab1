"""Audit targets that are broken, unreachable or set up differently: a clear failed audit
that says what to fix, or a working audit where the setup is merely unusual.

Each scenario is a database of its own in the test cluster (named after the test
database, so parallel runs do not meet), with one table and a slow query in
pg_stat_statements.
"""

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings
from psycopg.conninfo import conninfo_to_dict

from dbarchitect import advisor
from dbarchitect.agent import run_audit
from dbarchitect.checks import check_targets
from dbarchitect.locking import audit_lock_free
from dbarchitect.models import AuditRun, QuerySnapshot
from optimizations.models import OptimizationLog
from pgaccess.targets import target_connection

from .pgss import pgss_reset_own_database
from .private_server import private_server, server_bindir

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 20_000
SLOW_QUERY = "SELECT * FROM bt_item WHERE k = %s"
# (scenario, the extensions it has, in which schema) -- everything else is plain.
SCENARIOS = {
    "hypopg_elsewhere": [
        "CREATE SCHEMA ext",
        "CREATE EXTENSION pg_stat_statements SCHEMA ext",
        "CREATE EXTENSION hypopg SCHEMA ext",
    ],
    "no_hypopg": ["CREATE EXTENSION pg_stat_statements"],
    "no_pgss": ["CREATE EXTENSION hypopg"],
    # A server upgraded with pg_upgrade keeps its old extension until ALTER EXTENSION.
    "old_pgss": ["CREATE EXTENSION pg_stat_statements VERSION '1.8'", "CREATE EXTENSION hypopg"],
    "stats_hidden": ["CREATE EXTENSION pg_stat_statements", "CREATE EXTENSION hypopg"],
    "read_only": ["CREATE EXTENSION pg_stat_statements", "CREATE EXTENSION hypopg"],
}
TABLE = [
    "CREATE TABLE bt_item (id bigint PRIMARY KEY, k int NOT NULL, v text NOT NULL)",
    f"INSERT INTO bt_item SELECT g, g % 2000, md5(g::text) FROM generate_series(1, {ROWS}) AS g",
    "ANALYZE bt_item",
]


@dataclass(frozen=True)
class Cluster:
    params: dict
    prefix: str  # the test database's name: every scratch database and role starts with it

    def url(self, dbname: str, *, user: str | None = None) -> str:
        user = quote(user or self.params.get("user", "postgres"))
        password = self.params.get("password")
        auth = f"{user}:{quote(password)}" if password and user == self.params.get("user") else user
        return f"postgres://{auth}@{self.params['host']}:{self.params['port']}/{dbname}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(**{**self.params, "dbname": "postgres"}, autocommit=True)

    def connect(self, scenario: str) -> psycopg.Connection:
        return psycopg.connect(**{**self.params, "dbname": self.db(scenario)}, autocommit=True)

    def db(self, scenario: str) -> str:
        return f"{self.prefix}_{scenario}"

    @property
    def auditor(self) -> str:
        return f"{self.prefix}_auditor"


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker) -> Iterator[Cluster]:
    with django_db_blocker.unblock():
        params = conninfo_to_dict(target_connection("default").conninfo)
    found = Cluster(params=params, prefix=settings.DATABASES["default"]["NAME"])
    with found.admin() as conn:
        _drop(conn, found)
        conn.execute(f'CREATE ROLE "{found.auditor}" LOGIN')
        for scenario in SCENARIOS:
            conn.execute(f'CREATE DATABASE "{found.db(scenario)}"')
    for scenario, extensions in SCENARIOS.items():
        with found.connect(scenario) as conn:
            for statement in extensions + TABLE:
                conn.execute(statement)
            if scenario != "no_pgss":  # the set-up is not the workload
                conn.execute("SET search_path = public, ext")
                pgss_reset_own_database(conn)
    with found.connect("stats_hidden") as conn:
        conn.execute(f'GRANT SELECT ON bt_item TO "{found.auditor}"')
    with found.admin() as conn:
        conn.execute(
            f'ALTER DATABASE "{found.db("read_only")}" SET default_transaction_read_only = on'
        )
    yield found
    with found.admin() as conn:
        _drop(conn, found)


def _drop(conn: psycopg.Connection, cluster: Cluster) -> None:
    for scenario in SCENARIOS:
        conn.execute(f'DROP DATABASE IF EXISTS "{cluster.db(scenario)}" WITH (FORCE)')
    conn.execute(f'DROP ROLE IF EXISTS "{cluster.auditor}"')


def slow_workload(cluster: Cluster, scenario: str, calls: int = 12) -> None:
    """The query an index on k serves, run as the cluster's superuser (the application)."""
    with cluster.connect(scenario) as conn:
        for number in range(calls):
            conn.execute(SLOW_QUERY, [number]).fetchall()


def targets(**urls: str) -> override_settings:
    """Audit targets, with thresholds that suit the small scenario table."""
    return override_settings(
        DBARCHITECT_TARGETS=",".join(f"{name}={url}" for name, url in urls.items()),
        DBARCHITECT_MIN_TABLE_ROWS=1_000,
        DBARCHITECT_MIN_MEAN_MS=0.0,
    )


def assert_failed_cleanly(audit: AuditRun) -> None:
    assert audit.status == AuditRun.Status.FAILED and audit.finished_at is not None
    assert not QuerySnapshot.objects.exists() and not OptimizationLog.objects.exists()


def test_hypopg_and_pgss_in_another_schema_still_give_a_recommendation(cluster):
    slow_workload(cluster, "hypopg_elsewhere")
    with targets(elsewhere=cluster.url(cluster.db("hypopg_elsewhere"))):
        audit = run_audit(target="elsewhere", verify=False)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    index = audit.optimizations.get(kind="index")
    assert index.table_name == "public.bt_item" and index.columns == ['"k"']


def test_an_old_pg_stat_statements_extension_is_read_with_its_own_columns(cluster):
    with cluster.connect("old_pgss") as conn:
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone()[0]
    assert version == "1.8"  # no toplevel column, no pg_stat_statements_info view
    slow_workload(cluster, "old_pgss")
    with targets(old=cluster.url(cluster.db("old_pgss"))):
        audit = run_audit(target="old", verify=False)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    assert audit.stats_reset is None
    assert audit.optimizations.get(kind="index").columns == ['"k"']


def test_a_target_without_hypopg_fails_with_what_to_install(cluster):
    slow_workload(cluster, "no_hypopg")
    with targets(plain=cluster.url(cluster.db("no_hypopg"))):
        audit = run_audit(target="plain", verify=False)
    assert_failed_cleanly(audit)
    assert audit.error.startswith("extension hypopg is not installed on the target database")
    assert "CREATE EXTENSION hypopg" in audit.error


def test_a_target_without_pg_stat_statements_fails_with_what_to_install(cluster):
    with targets(plain=cluster.url(cluster.db("no_pgss"))):
        audit = run_audit(target="plain", verify=False)
    assert_failed_cleanly(audit)
    assert "pg_stat_statements is not installed" in audit.error
    assert "shared_preload_libraries" in audit.error


def test_a_role_that_cannot_see_other_roles_statements_fails_with_the_grant_to_run(cluster):
    slow_workload(cluster, "stats_hidden")
    url = cluster.url(cluster.db("stats_hidden"), user=cluster.auditor)
    with targets(hidden=url):
        audit = run_audit(target="hidden", verify=False)
    assert_failed_cleanly(audit)
    assert f"GRANT pg_read_all_stats TO {cluster.auditor}" in audit.error
    assert "statements of other roles" in audit.error


def test_a_read_only_verification_target_reports_why_nothing_was_measured(cluster):
    slow_workload(cluster, "read_only")
    url = cluster.url(cluster.db("read_only"))
    with targets(standby=url), override_settings(DBARCHITECT_VERIFY="database:standby"):
        audit = run_audit(target="standby")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    index = audit.optimizations.get(kind="index")
    assert index.measured_ms_after is None
    assert "read-only transaction" in index.details["verification_error"], index.details


BARE_PASSWORD = "bare-s3cret"


@pytest.fixture(scope="module")
def bare_server(cluster) -> Iterator[str]:
    """A second PostgreSQL as installed: nothing preloaded, passwords required. Returns the
    URL of its database `shop` (pg_stat_statements and hypopg created, a slow query run)."""
    with cluster.admin() as conn:
        bindir = server_bindir(conn)
    with private_server(bindir, password=BARE_PASSWORD) as server:
        with psycopg.connect(
            server.url("postgres", password=BARE_PASSWORD), autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE shop")
        url = server.url("shop", password=BARE_PASSWORD)
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in SCENARIOS["read_only"] + TABLE:
                conn.execute(statement)
            for number in range(12):
                conn.execute(SLOW_QUERY, [number]).fetchall()
        yield url


def test_pg_stat_statements_not_preloaded_fails_with_the_restart_to_do(bare_server):
    with targets(bare=bare_server):
        audit = run_audit(target="bare", verify=False)
    assert_failed_cleanly(audit)
    assert audit.error.startswith(
        "pg_stat_statements must be loaded via shared_preload_libraries on the target server"
    )
    assert BARE_PASSWORD not in audit.error


def test_a_wrong_password_fails_with_the_user_and_without_either_password(bare_server):
    wrong = bare_server.replace(BARE_PASSWORD, "not-the-pw")
    with targets(bare=wrong):
        audit = run_audit(target="bare", verify=False)
    assert_failed_cleanly(audit)
    assert 'password authentication failed for user "postgres"' in audit.error
    assert "target 'bare' is unreachable for audit (postgres@127.0.0.1:" in audit.error
    assert "not-the-pw" not in audit.error and BARE_PASSWORD not in audit.error


def test_a_missing_database_fails_with_its_name_and_no_password(cluster):
    url = f"postgres://{quote(cluster.params.get('user', 'postgres'))}:s3cret@"
    url += f"{cluster.params['host']}:{cluster.params['port']}/{cluster.prefix}_missing"
    with targets(gone=url):
        audit = run_audit(target="gone", verify=False)
    assert_failed_cleanly(audit)
    assert f'database "{cluster.prefix}_missing" does not exist' in audit.error
    assert "s3cret" not in audit.error


def test_a_closed_port_fails_at_once_as_unreachable(cluster):
    with targets(closed="postgres://auditor@127.0.0.1:1/shop"):
        audit = run_audit(target="closed", verify=False)
    assert_failed_cleanly(audit)
    assert "target 'closed' is unreachable for audit (auditor@127.0.0.1:1/shop)" in audit.error


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung server, a firewall)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_server_that_never_answers_fails_after_the_connect_timeout(cluster, silent_server):
    url = f"postgres://auditor@127.0.0.1:{silent_server}/shop"
    with targets(hung=url), override_settings(DBARCHITECT_CONNECT_TIMEOUT_S=2):
        audit = run_audit(target="hung", verify=False)
    assert_failed_cleanly(audit)
    assert "connection timeout expired" in audit.error
    assert "DBARCHITECT_CONNECT_TIMEOUT_S=2" in audit.error


def test_a_known_failure_is_logged_as_one_line_without_a_traceback(cluster, caplog):
    closed = targets(closed="postgres://auditor@127.0.0.1:1/shop")
    with closed, caplog.at_level(logging.ERROR, logger="dbarchitect.agent"):
        audit = run_audit(target="closed", verify=False)
    (record,) = [r for r in caplog.records if r.name == "dbarchitect.agent"]
    assert not record.exc_info
    assert str(audit.id) in record.getMessage() and "unreachable" in record.getMessage()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("shop=postgres://a:pa%ss@h/x", "entry 'shop' is not a valid connection URL"),
        ("shop=postgres://[::1", "entry 'shop' is not a valid connection URL"),
        ("shop=postgres://a@h:port/x", "entry 'shop' is not a valid connection URL"),
        ("shop=postgres://a@h:5²/x", "entry 'shop' is not a valid connection URL"),
        ("shop=postgres://a@h:70000/x", "entry 'shop' is not a valid connection URL"),
        ("shop=postgres://a@h:-1/x", "entry 'shop' is not a valid connection URL"),
        ("default=postgres://a@h/x", "'default' is the app's own database"),
        ("a=postgres://a@h/x,a=postgres://b@h/x", "'a' is named twice"),
        ("my shop=postgres://a@h/x", "a target name is 1 to 63 letters"),
        ("postgres://a:pa55@h/x", "entry number 1 must look like name=postgres://"),
    ],
)
def test_a_malformed_target_list_names_the_entry_never_its_url(cluster, entry, message):
    out = StringIO()
    with override_settings(DBARCHITECT_TARGETS=entry), pytest.raises(CommandError) as info:
        call_command("run_audit", "--no-verify", stdout=out)
    assert message in str(info.value) and "Fix DBARCHITECT_TARGETS" in str(info.value)
    assert "pa%ss" not in str(info.value) and "pa55" not in str(info.value)
    assert not AuditRun.objects.exists()


def test_a_multi_host_url_keeps_its_commas(cluster):
    from pgaccess.targets import configured_targets

    with override_settings(
        DBARCHITECT_TARGETS="ha=postgres://a@h1:5432,h2:5433/x,b=postgres://b@h/y"
    ):
        found = configured_targets()
    assert found["ha"] == "postgres://a@h1:5432,h2:5433/x" and found["b"] == "postgres://b@h/y"


def test_an_audit_interrupted_by_ctrl_c_is_marked_failed_and_frees_the_target(cluster, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(advisor, "advise", ctrl_c)  # while the audit is connected to the target
    shop = targets(shop=cluster.url(cluster.db("hypopg_elsewhere")))
    with shop, pytest.raises(CommandError, match=r"interrupted: audit .* was stopped") as info:
        call_command("run_audit", "--target", "shop", "--no-verify", stdout=StringIO())
    audit = AuditRun.objects.get()
    assert str(audit.id) in str(info.value)
    assert audit.status == AuditRun.Status.FAILED and "interrupted" in audit.error
    assert audit.finished_at is not None and audit_lock_free("shop")
    assert not QuerySnapshot.objects.exists() and not OptimizationLog.objects.exists()


def test_manage_py_check_names_what_each_target_lacks_before_an_audit(cluster):
    urls = {
        "fine": cluster.url(cluster.db("hypopg_elsewhere")),
        "plain": cluster.url(cluster.db("no_hypopg")),
        "hidden": cluster.url(cluster.db("stats_hidden"), user=cluster.auditor),
        "closed": "postgres://auditor@127.0.0.1:1/shop",
    }
    slow_workload(cluster, "stats_hidden")
    with targets(**urls):
        errors = check_targets(None, databases=["default"])
        assert check_targets(None, databases=None) == []  # only with --database
    found = {error.msg.split(":", 1)[0]: error.msg for error in errors}
    assert {error.id for error in errors} == {"dbarchitect.E020"}
    assert set(found) == {"audit target 'plain'", "audit target 'hidden'", "audit target 'closed'"}
    assert "extension hypopg is not installed" in found["audit target 'plain'"]
    assert f"GRANT pg_read_all_stats TO {cluster.auditor}" in found["audit target 'hidden'"]
    assert "is unreachable for check" in found["audit target 'closed'"]
