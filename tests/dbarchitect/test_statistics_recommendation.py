"""A correlated (city, zip) pair whose row estimate is 200x off gets a `statistics`
recommendation: proved to fix the estimate, recorded with its estimates before and after,
applied like an index (CREATE STATISTICS + ANALYZE of its columns) and written into the
pull request's migration."""

from collections.abc import Iterator

import psycopg
import pytest
from django.test import override_settings

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from optimizations.models import OptimizationLog
from tests.pgaccess.servers import pg15_bindir

from .pgss import pgss_reset_own_database
from .private_server import private_server
from .test_bad_targets import targets

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 200_000
# Zip z lies in city z % 400. city0 is the most common city (0.5% of the rows, the others
# 0.25%), zip0 in it the most common zip (0.25%): the planner multiplies the two and
# expects 200000 x 0.005 x 0.0025 = 2.5 rows for city0 AND zip0, where there are 500.
SCHEMA = [
    "CREATE EXTENSION pg_stat_statements",
    "CREATE EXTENSION hypopg",
    "CREATE SCHEMA geo",
    "CREATE TABLE geo.address (id int PRIMARY KEY, city text NOT NULL, zip text NOT NULL)",
    f"""INSERT INTO geo.address
        SELECT g, CASE WHEN g <= 1000 THEN 'city0' ELSE 'city' || z % 400 END,
               CASE WHEN g <= 500 THEN 'zip0' WHEN g <= 1000 THEN 'zip' || 400 * (1 + g % 9)
                    ELSE 'zip' || z END
        FROM (SELECT g, CASE WHEN g % 4000 % 400 = 0 THEN g % 4000 + 1 ELSE g % 4000 END
              FROM generate_series(1, {ROWS}) AS g) AS s(g, z)""",
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
