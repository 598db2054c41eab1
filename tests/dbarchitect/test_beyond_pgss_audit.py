"""An audit reads what pg_stat_statements cannot give: whether pg_qualstats is there (and,
once, how to get it when not) and the statements the server's log has that never reached
pg_stat_statements, marked timed out with how often."""

from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from django.test import override_settings

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from dbarchitect.report import report_text
from pgaccess.qualstats import qualstats_read, qualstats_status
from tests.pgaccess.servers import QUALSTATS_PRELOAD, pg15_bindir

from .pgss import pgss_reset_own_database
from .private_server import private_server
from .test_bad_targets import SLOW_QUERY, TABLE, targets

pytestmark = pytest.mark.django_db(transaction=True)

LOGGING = {
    "logging_collector": "on",
    "log_destination": "csvlog",
    "log_min_error_statement": "error",
    "log_min_duration_statement": "1000",
}
# Killed by the 200 ms statement timeout each time: pg_stat_statements never sees it.
TIMES_OUT = "SELECT count(*) FROM bt_item AS a, bt_item AS b WHERE a.v < b.v AND a.k < %s"
EXTENSIONS = ["CREATE EXTENSION pg_stat_statements", "CREATE EXTENSION hypopg"]
BY_V = "SELECT id FROM bt_item WHERE v = %s"
V_VALUES = [f"md5({n})" for n in range(1, 13)]


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, str]]:
    """Database shop with pg_qualstats and a workload whose worst query timed out three
    times; database bare without pg_qualstats, its workload the same minus the timeouts."""
    with private_server(pg15_bindir(), settings={**QUALSTATS_PRELOAD, **LOGGING}) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            for database in ("shop", "bare"):
                conn.execute(f"CREATE DATABASE {database}")
        for database, extensions in [
            ("shop", [*EXTENSIONS, "CREATE EXTENSION pg_qualstats"]),
            ("bare", EXTENSIONS),
        ]:
            # Constants bound on the client, as Django sends them: the verifier's EXPLAIN of
            # the same statement with its own literal then shares the workload's queryid.
            with psycopg.connect(
                server.url(database), autocommit=True, cursor_factory=psycopg.ClientCursor
            ) as conn:
                for statement in extensions + TABLE:
                    conn.execute(statement)
                pgss_reset_own_database(conn)  # the set-up is not the workload
                for number in range(12):
                    conn.execute(SLOW_QUERY, [number]).fetchall()
                for value in V_VALUES:
                    conn.execute(BY_V, [value]).fetchall()
        with psycopg.connect(server.url("shop"), autocommit=True) as conn:
            conn.execute("SET statement_timeout = 200")
            for number in range(3):
                with pytest.raises(psycopg.errors.QueryCanceled):
                    conn.execute(TIMES_OUT, [500 + number])
        yield {database: server.url(database) for database in ("shop", "bare")}


def test_an_audit_lists_the_timeouts_and_leaves_pg_qualstats_the_workloads_own(server):
    with targets(**server), override_settings(DBARCHITECT_VERIFY="database:shop"):
        audit = run_audit(target="shop")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    # Verified: EXPLAIN ANALYZE ran the query on v with a value of the verifier's own. The
    # index on v may then be dropped again by the set check, with its numbers, for slowing
    # the timed-out self-join on v (an inequality join it turns into index range scans).
    index = audit.optimizations.filter(kind="index", columns=['"v"']).first()
    dropped = [d for d in audit.report["dropped_for_slowdown"] if "(\"v\")" in d["ddl"]]
    if index is not None:
        assert index.measured_ms_after is not None, index.details
    else:
        [slowdown] = dropped[0]["slowdowns"]
        assert slowdown["ms_after"] > slowdown["ms_before"] and not slowdown["kept"]
    # ...which pg_qualstats, paused in the audit's sessions, did not take for the workload's:
    # each query's own values, once each (the verifier ran k = 0 several times).
    with psycopg.connect(server["shop"]) as conn:
        by_v, by_k = (_workload_qual(conn, query) for query in (BY_V, SLOW_QUERY))
    assert sorted((use.value, use.occurrences) for use in by_v.constants) == sorted(
        (f"'{value}'::text", 1) for value in V_VALUES
    )
    assert sorted((use.value, use.occurrences) for use in by_k.constants) == sorted(
        (f"{n}::integer", 1) for n in range(12)
    )
    assert audit.report["qualstats"] == {"state": "ready", "fix": None, "sample_rate": 1.0}
    log = audit.report["server_log"]
    assert log["state"] == "ready" and log["bytes_read"] > 0
    [query] = [q for q in log["queries"] if "bt_item AS a" in q["query"]]
    assert query == {
        "query": "SELECT count(*) FROM bt_item AS a, bt_item AS b WHERE a.v < b.v AND a.k < $1",
        "timeouts": 3,
        "slow_runs": 0,
        "longest_ms": None,
    }
    text = report_text(audit.report)
    assert "From the server's log (not in pg_stat_statements): 1" in text
    assert "timed out 3x" in text and "pg_qualstats:" not in text


def _workload_qual(conn: psycopg.Connection, query: str):
    """The one predicate of `query` as the workload ran it in this database."""
    queryid = conn.execute(
        "SELECT queryid FROM pg_stat_statements WHERE query = %s "
        "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [query.replace("%s", "$1")],
    ).fetchone()[0]
    [qual] = qualstats_read(conn, status=qualstats_status(conn), queryids=[queryid])
    return qual


def test_without_pg_qualstats_the_report_says_once_how_to_get_it(server):
    with targets(**server):
        audit = run_audit(target="bare", verify=False)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    assert audit.report["qualstats"]["state"] == "not_created"
    assert audit.report["server_log"]["queries"] == []  # shop's timeouts are not bare's
    text = report_text(audit.report)
    assert text.count("pg_qualstats: not_created.") == 1
    assert "To enable it: CREATE EXTENSION pg_qualstats in database bare" in text
    assert "From the server's log" not in text


def test_the_apps_own_database_has_pg_qualstats_after_migrating():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_qualstats'), "
            "EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_qualstats')"
        )
        available, created = cursor.fetchone()
    assert available, "make services installs postgresql-15-pg-qualstats"
    assert created
