"""A correlated (city, zip) pair whose row estimate is 200x off gets a `statistics`
recommendation: proved to fix the estimate, recorded with its estimates before and after,
applied like an index through the API (CREATE STATISTICS + ANALYZE of its columns),
checked by the next audit and written into the pull request's migration."""

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from dbarchitect.agent import run_audit
from dbarchitect.migration_writer import plan_migrations, render_migration
from dbarchitect.models import AuditRun
from optimizations.models import OptimizationLog
from tests.pgaccess.servers import pg15_bindir

from .pgss import pgss_reset_own_database
from .private_server import private_server
from .test_bad_targets import targets

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 200_000
# Each zip lies in one city. city0 is the most common city (0.5% of the rows, the 399
# others 0.25%), zip0 in it the most common zip (0.25%): the planner multiplies the two and
# expects 200000 x 0.005 x 0.0025 = 2.5 rows for city0 AND zip0, where there are 500.
SCHEMA = [
    "CREATE EXTENSION pg_stat_statements",
    "CREATE EXTENSION hypopg",
    "CREATE SCHEMA geo",
    "CREATE TABLE geo.address (id int PRIMARY KEY, city text NOT NULL, zip text NOT NULL)",
    f"""INSERT INTO geo.address
        SELECT g, CASE WHEN g <= 1000 THEN 'city0' ELSE 'city' || 1 + z % 399 END,
               CASE WHEN g <= 500 THEN 'zip0' WHEN g <= 1000 THEN 'zipc' || g % 9
                    ELSE 'zip' || z END
        FROM (SELECT g, g % 3990 + 1 FROM generate_series(1, {ROWS}) AS g) AS s(g, z)""",
    # Its 1,000 rows of city0 are read through an index, zip filtered: a quick query,
    # whose timing noise is a fraction of a millisecond.
    "CREATE INDEX ON geo.address (city)",
    "ANALYZE geo.address",
]
BY_PLACE = "SELECT count(*) FROM geo.address WHERE city = %s AND zip = %s"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    preload = {"shared_preload_libraries": "pg_stat_statements"}
    with private_server(pg15_bindir(), settings=preload) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(
            server.url("shop"), autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            pgss_reset_own_database(conn)
            for _ in range(10):
                conn.execute(BY_PLACE, ["city0", "zip0"]).fetchall()
        yield server.url("shop")


@pytest.fixture
def statistics_audit(server) -> AuditRun:
    with targets(shop=server), override_settings(DBARCHITECT_VERIFY="database:shop"):
        audit = run_audit(target="shop")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    return audit


def test_a_correlated_pair_gets_a_statistics_recommendation_that_fixes_the_estimate(
    statistics_audit, server
):
    assert statistics_audit.report["statistics"]["proposed"] == 1, str(statistics_audit.report)
    rec = statistics_audit.optimizations.get(kind=OptimizationLog.Kind.STATISTICS)
    assert rec.table_name == "geo.address" and sorted(rec.columns) == ["city", "zip"]
    estimates = rec.details["estimates"]
    assert estimates["factor_before"] >= 100  # rows per loop of a parallel scan, both sides
    assert estimates["factor_after"] <= 2
    assert rec.details["kinds"] == ["dependencies", "ndistinct"]  # 4,000 pairs: no MCV list
    assert rec.ddl.startswith('CREATE STATISTICS "geo".')
    assert rec.measured_ms_before is not None and rec.measured_ms_after is not None
    # Proved in a transaction rolled back: nothing stays on the target.
    with psycopg.connect(server) as conn:
        assert conn.execute("SELECT count(*) FROM pg_statistic_ext").fetchone()[0] == 0


def _estimate(conn: psycopg.Connection) -> float:
    plan = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT count(*) FROM geo.address "
        "WHERE city = 'city0' AND zip = 'zip0'"
    ).fetchone()[0]
    scan = plan[0]["Plan"]
    while "Relation Name" not in scan:
        [scan] = scan["Plans"][:1]
    return float(scan["Plan Rows"])


def test_the_admin_shows_the_estimates_before_and_after(statistics_audit, super_client):
    rec = statistics_audit.optimizations.get(kind=OptimizationLog.Kind.STATISTICS)
    page = super_client.get(reverse("admin:optimizations_optimizationlog_change", args=[rec.pk]))
    assert page.status_code == 200
    assert page.context["estimates"] == rec.details["estimates"]
    assert page.context["can_apply"]
    node = rec.details["estimates"]["node"]
    assert f"Rows estimated (planner, {node})" in page.content.decode()


def test_the_pull_requests_migration_creates_analyzes_and_drops_it(statistics_audit, server):
    rec = statistics_audit.optimizations.get(kind=OptimizationLog.Kind.STATISTICS)
    [plan] = plan_migrations([rec.ddl], fallback_app="demo").values()
    [operation] = plan.operations
    assert plan.index_names == ["address_city_zip_stx"]
    _, source = render_migration(plan, migrations_dir=Path("/nonexistent"), name_suffix="t")
    assert "RunSQL(" in source and "ANALYZE" in source and "DROP STATISTICS" in source
    with psycopg.connect(server, autocommit=True) as conn:
        for statement in operation.sql:
            conn.execute(statement)
        assert _estimate(conn) > 100  # 500 rows: the estimate is fixed
        for statement in operation.reverse_sql:
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM pg_statistic_ext").fetchone()[0] == 0
        conn.execute("ANALYZE geo.address")
        assert _estimate(conn) < 10


def test_applied_like_an_index_and_checked_by_the_next_audit(statistics_audit, server, superuser):
    rec = statistics_audit.optimizations.get(kind=OptimizationLog.Kind.STATISTICS)
    try:
        with targets(shop=server), override_settings(DBARCHITECT_VERIFY="database:shop"):
            # Through the API, as an index is: answered at once, no worker needed.
            api = APIClient()
            api.force_authenticate(superuser)
            response = api.post(f"/api/optimizations/{rec.pk}/apply/")
            assert response.status_code == 202, response.content
            assert response.json()["status"] == "applied", response.json()
            rec.refresh_from_db()
            assert rec.status == OptimizationLog.Status.APPLIED
            assert rec.details["applied_index"] == "address_city_zip_stx"
            with psycopg.connect(
                server, autocommit=True, cursor_factory=psycopg.ClientCursor
            ) as conn:
                assert _estimate(conn) > 100
                for _ in range(10):
                    conn.execute(BY_PLACE, ["city0", "zip0"]).fetchall()
            again = run_audit(target="shop")
        assert again.status == AuditRun.Status.SUCCEEDED, again.error
        rec.refresh_from_db()
        assert rec.outcome in ("gain", "no_gain", "regression")
        assert rec.mean_ms_after_apply is not None
        # The estimate is right now: no miss, no second statistics recommendation.
        assert not again.optimizations.filter(kind=OptimizationLog.Kind.STATISTICS).exists()
        assert again.report["statistics"]["queries_run"] == 1
        assert again.report["statistics"]["not_proposed"] == []
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute('DROP STATISTICS IF EXISTS geo."address_city_zip_stx"')
            conn.execute("ANALYZE geo.address")
