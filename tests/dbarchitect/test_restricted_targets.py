"""Production-like targets: a hot standby and least-privilege roles. Each audit finishes
with the advice it could make; each recommendation it could not verify says why, in a
DBA's words; nothing is left behind on the target.
"""

from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.test import override_settings
from psycopg.conninfo import conninfo_to_dict

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from dbarchitect.report import report_text
from optimizations.models import OptimizationLog
from pgaccess.session import APPLICATION_NAME
from pgaccess.targets import target_connection

from .pgss import pgss_reset_own_database
from .private_server import private_server, server_bindir
from .test_bad_targets import SLOW_QUERY, TABLE, Cluster, slow_workload, targets

pytestmark = pytest.mark.django_db(transaction=True)

# A second table whose query needs a SELECT grant the reader lacks.
SECRET_TABLE = [
    "CREATE TABLE bt_secret (id bigint PRIMARY KEY, k int NOT NULL)",
    "INSERT INTO bt_secret SELECT g, g % 2000 FROM generate_series(1, 20000) AS g",
    "ANALYZE bt_secret",
]
SECRET_QUERY = "SELECT * FROM bt_secret WHERE k = %s"
# role suffix -> what it may do (all can read every role's statements)
ROLES = {
    # owns nothing, reads bt_item only, no CREATE on the schema
    "reader": ["GRANT SELECT ON bt_item TO {role}"],
    # a member of the owner, but every transaction of its sessions is read only
    "readonly": [
        "GRANT {owner} TO {role}",
        "ALTER ROLE {role} SET default_transaction_read_only = on",
    ],
    # a member of the owner with tight timeouts of its own
    "hasty": [
        "GRANT CREATE ON SCHEMA public TO {role}",
        "GRANT {owner} TO {role}",
        "ALTER ROLE {role} SET statement_timeout = '5ms'",
        "ALTER ROLE {role} SET lock_timeout = '1ms'",
    ],
    # a member of the owner without CREATE on the schema (CREATE INDEX needs it)
    "no_create": ["GRANT {owner} TO {role}"],
    # a member of the owner without USAGE on the schema hypopg lives in
    "no_ext": ["GRANT {owner} TO {role}"],
}


@pytest.fixture(scope="module")
def restricted(django_db_setup, django_db_blocker) -> Iterator[Cluster]:
    """One database (hypopg in schema ext, off the search_path; tables owned by a NOLOGIN
    owner role) and the roles of ROLES, all named after the test database."""
    with django_db_blocker.unblock():
        params = conninfo_to_dict(target_connection("default").conninfo)
    found = Cluster(params=params, prefix=settings.DATABASES["default"]["NAME"])
    owner = f'"{found.prefix}_owner"'
    with found.admin() as conn:
        _drop(conn, found)
        conn.execute(f'CREATE DATABASE "{found.db("restricted")}"')
        conn.execute(f"CREATE ROLE {owner} NOLOGIN")
        for suffix in ROLES:
            conn.execute(f'CREATE ROLE "{found.prefix}_{suffix}" LOGIN IN ROLE pg_read_all_stats')
    with found.connect("restricted") as conn:
        for statement in [
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            "CREATE EXTENSION pg_stat_statements",
            "CREATE SCHEMA ext",
            "CREATE EXTENSION hypopg SCHEMA ext",
            *TABLE,
            *SECRET_TABLE,
            f"ALTER TABLE bt_item OWNER TO {owner}",
            f"ALTER TABLE bt_secret OWNER TO {owner}",
        ]:
            conn.execute(statement)
        for suffix, grants in ROLES.items():
            role = f'"{found.prefix}_{suffix}"'
            if suffix != "no_ext":
                conn.execute(f"GRANT USAGE ON SCHEMA ext TO {role}")
            for grant in grants:
                conn.execute(grant.format(role=role, owner=owner))
    yield found
    with found.admin() as conn:
        _drop(conn, found)


def _drop(conn: psycopg.Connection, cluster: Cluster) -> None:
    conn.execute(f'DROP DATABASE IF EXISTS "{cluster.db("restricted")}" WITH (FORCE)')
    for suffix in [*ROLES, "owner"]:
        conn.execute(f'DROP ROLE IF EXISTS "{cluster.prefix}_{suffix}"')


def _workload(cluster: Cluster) -> None:
    with cluster.connect("restricted") as conn:
        pgss_reset_own_database(conn)
    slow_workload(cluster, "restricted")
    with cluster.connect("restricted") as conn:
        for number in range(12):
            conn.execute(SECRET_QUERY, [number]).fetchall()


def _audit_as(cluster: Cluster, suffix: str) -> AuditRun:
    """An audit of the restricted database as role `suffix`, verified on that database."""
    _workload(cluster)
    url = cluster.url(cluster.db("restricted"), user=f"{cluster.prefix}_{suffix}")
    with targets(shop=url), override_settings(DBARCHITECT_VERIFY="database:shop"):
        audit = run_audit(target="shop")
    assert audit.optimizations.count() == audit.recommendations_count
    return audit


def _left_behind(conn: psycopg.Connection) -> list:
    """The architect's sessions still open on this database (hypothetical indexes, prepared
    statements and transactions live in a session), and indexes beyond the primary keys."""
    sessions = conn.execute(
        "SELECT pid, state FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s",
        [APPLICATION_NAME],
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename IN ('bt_item', 'bt_secret') "
        "AND indexname NOT LIKE '%%_pkey'"
    ).fetchall()
    return sessions + indexes


def _index(audit: AuditRun, table: str) -> OptimizationLog:
    return audit.optimizations.get(kind="index", table_name=table)


def test_a_reader_that_owns_no_table_gets_advice_and_is_told_who_can_build(restricted):
    audit = _audit_as(restricted, "reader")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    item = _index(audit, "public.bt_item")
    error = item.details["verification_error"]
    assert item.measured_ms_after is None
    assert f"{restricted.prefix}_reader does not own public.bt_item" in error, error
    assert f"needs its owner ({restricted.prefix}_owner) or a member of that role" in error
    assert "DBARCHITECT_VERIFY=database:" in error
    # EXPLAIN needs SELECT: the query on the table it cannot read is listed, with the grant.
    (skipped,) = [s for s in audit.report["skipped"] if "bt_secret" in s["query"]]
    assert "has no SELECT privilege on public.bt_secret" in skipped["reason"], skipped
    assert f"GRANT SELECT ON public.bt_secret TO {restricted.prefix}_reader" in skipped["reason"]
    text = report_text(audit.report)
    assert "Queries not costed: 1" in text
    with restricted.connect("restricted") as conn:
        assert _left_behind(conn) == []


def test_a_read_only_role_gets_advice_and_why_nothing_was_built(restricted):
    audit = _audit_as(restricted, "readonly")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    for table in ("public.bt_item", "public.bt_secret"):
        error = _index(audit, table).details["verification_error"]
        assert "read-only" in error and "default_transaction_read_only" in error, error
        assert "DBARCHITECT_VERIFY=database:" in error, error
    with restricted.connect("restricted") as conn:
        assert _left_behind(conn) == []


def test_an_owner_without_create_on_the_schema_is_told_the_grant(restricted):
    audit = _audit_as(restricted, "no_create")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    error = _index(audit, "public.bt_item").details["verification_error"]
    role = f"{restricted.prefix}_no_create"
    assert f"{role} has no CREATE privilege on schema public" in error, error
    assert f"GRANT CREATE ON SCHEMA public TO {role}" in error, error
    with restricted.connect("restricted") as conn:
        assert _left_behind(conn) == []


def test_a_role_with_tight_timeouts_of_its_own_gets_the_audits_timeouts(restricted):
    audit = _audit_as(restricted, "hasty")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    for table in ("public.bt_item", "public.bt_secret"):
        index = _index(audit, table)
        assert index.details["verification_error"] is None, index.details
        assert index.measured_ms_after < index.measured_ms_before
    with restricted.connect("restricted") as conn:
        assert _left_behind(conn) == []


def test_a_role_that_cannot_reach_hypopg_fails_with_the_grant_to_run(restricted):
    audit = _audit_as(restricted, "no_ext")
    assert audit.status == AuditRun.Status.FAILED
    assert "GRANT USAGE ON SCHEMA ext" in audit.error, audit.error
    assert not OptimizationLog.objects.exists()
    with restricted.connect("restricted") as conn:
        assert _left_behind(conn) == []


@pytest.fixture(scope="module")
def standby(restricted) -> Iterator[str]:
    """A primary and its hot standby (pg_basebackup -R); returns the standby's URL of the
    database `shop`, whose pg_stat_statements holds the slow query run on the standby."""
    with restricted.admin() as conn:
        bindir = server_bindir(conn)
    preload = {"shared_preload_libraries": "pg_stat_statements", "wal_level": "replica"}
    with private_server(bindir, settings=preload) as primary:
        with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(primary.url("shop"), autocommit=True) as conn:
            for statement in ["CREATE EXTENSION pg_stat_statements", "CREATE EXTENSION hypopg"]:
                conn.execute(statement)
            for statement in TABLE + SECRET_TABLE:
                conn.execute(statement)
        with private_server(bindir, settings=preload, standby_of=primary) as replica:
            with psycopg.connect(replica.url("shop"), autocommit=True) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                for number in range(12):
                    conn.execute(SLOW_QUERY, [number]).fetchall()
            yield replica.url("shop")


def test_a_hot_standby_gets_advice_and_why_it_cannot_verify(standby):
    with targets(replica=standby), override_settings(DBARCHITECT_VERIFY="database:replica"):
        audit = run_audit(target="replica")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    index = _index(audit, "public.bt_item")
    assert index.columns == ['"k"'] and index.measured_ms_after is None
    error = index.details["verification_error"]
    assert "hot standby" in error and "DBARCHITECT_VERIFY=database:" in error, error
    assert "hot standby" in audit.report["verification"]
    assert "hot standby" in report_text(audit.report)
    # Left to the target's own switch, the report says why not, not "enable allow_verify".
    with targets(replica=standby):
        audit = run_audit(target="replica")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    assert audit.report["verification"].startswith("skipped: this database is a hot standby")
    with psycopg.connect(standby, autocommit=True) as conn:
        assert _left_behind(conn) == []
