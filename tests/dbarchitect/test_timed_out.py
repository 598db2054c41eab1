"""A statement killed by statement_timeout never reaches pg_stat_statements: the audit finds
it in the server's log, costs it beside the rest and recommends its index, marked timed out
with how often."""

from collections.abc import Iterator

import psycopg
import pytest
from django.test import override_settings
from django.urls import reverse
from pglast.parser import fingerprint

from dbarchitect.agent import run_audit
from dbarchitect.collector import QueryStat
from dbarchitect.models import AuditRun, QuerySnapshot
from dbarchitect.report import report_text
from dbarchitect.timed_out import synthetic_queryid, timed_out_stats
from pgaccess.log_lines import LoggedQuery
from tests.pgaccess.servers import pg15_bindir

from .pgss import pgss_reset_own_database
from .private_server import private_server
from .test_bad_targets import targets
from .test_beyond_pgss_audit import LOGGING

pytestmark = pytest.mark.django_db(transaction=True)

# A correlated subquery: without an index on customer each order scans the whole table.
TIMES_OUT = (
    "SELECT count(*) FROM tq_order AS o WHERE o.amount > "
    "(SELECT avg(p.amount) FROM tq_order AS p WHERE p.customer = o.customer) + %s"
)
TABLE = [
    "CREATE EXTENSION pg_stat_statements",
    "CREATE EXTENSION hypopg",
    "CREATE TABLE tq_order (id bigint PRIMARY KEY, customer int NOT NULL, amount int NOT NULL)",
    "INSERT INTO tq_order SELECT g, g % 5000, (g * 7919) % 1000 "
    "FROM generate_series(1, 40000) AS g",
    "ANALYZE tq_order",
]
TIMEOUT_MS = 300


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """Database shop whose only slow query was cancelled by the timeout twice."""
    preload = {"shared_preload_libraries": "pg_stat_statements"}
    with private_server(pg15_bindir(), settings={**preload, **LOGGING}) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(
            server.url("shop"), autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as conn:
            for statement in TABLE:
                conn.execute(statement)
            pgss_reset_own_database(conn)
            conn.execute(f"SET statement_timeout = {TIMEOUT_MS}")
            for number in range(2):
                with pytest.raises(psycopg.errors.QueryCanceled):
                    conn.execute(TIMES_OUT, [number])
        yield server.url("shop")


def test_a_timed_out_query_is_found_in_the_log_and_gets_its_index(server, staff_client):
    with targets(shop=server), override_settings(DBARCHITECT_TIMED_OUT_MS=TIMEOUT_MS):
        audit = run_audit(target="shop", verify=False)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    [query] = [q for q in audit.report["queries"] if "tq_order" in q["query"]]
    assert query["timeouts"] == 2 and query["calls"] == 2
    assert query["mean_ms"] == TIMEOUT_MS
    assert query["queryid"] == synthetic_queryid(fingerprint(TIMES_OUT.replace("%s", "1")))
    index = audit.optimizations.get(kind="index")
    assert index.table_name == "public.tq_order" and index.columns[0] == '"customer"'
    assert index.queryids == [query["queryid"]]
    [served] = index.details["queries"]
    assert served["timeouts"] == 2
    snapshot = QuerySnapshot.objects.get(audit=audit, queryid=query["queryid"])
    assert snapshot.timeouts == 2 and snapshot.is_slow
    assert "timed out 2x" in report_text(audit.report)
    # The audit page and its Markdown say it too, and what pg_qualstats would add.
    page = staff_client.get(reverse("admin:dbarchitect_audit_report", args=[audit.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "timed out 2x" in html
    assert 'id="dba-qualstats">pg_qualstats: not_preloaded. To enable it:' in html
    assert "Server log: ready." in html and "tq_order AS o" in html
    markdown = staff_client.get(
        reverse("admin:dbarchitect_audit_report_markdown", args=[audit.pk])
    ).content.decode()
    assert "## Beyond pg_stat_statements" in markdown
    assert "pg_qualstats: not_preloaded. To enable it: add pg_qualstats" in markdown
    assert "| timed out | slow runs | longest ms | query |" in markdown
    assert "| 2 (timed out 2x) |" in markdown


def _logged(text: str, *, timeouts: int) -> LoggedQuery:
    return LoggedQuery(
        fingerprint=fingerprint(text),
        query=text,
        example=text,
        timeouts=timeouts,
        slow_runs=0 if timeouts else 1,
        longest_ms=None if timeouts else 2_000.0,
    )


def _stat(text: str) -> QueryStat:
    return QueryStat(1, 10, text, 5, 50.0, 10.0, 5, 0, 0)


def test_only_timed_out_shapes_without_a_pgss_entry_become_queries():
    logged = [
        _logged("SELECT * FROM a WHERE x = 5", timeouts=3),  # pgss has it as $1
        _logged("SELECT * FROM b WHERE y = 7", timeouts=0),  # completed: pgss has it
        _logged("SELECT * FROM c WHERE z = 9", timeouts=4),
        _logged("SELECT * FROM pg_class WHERE oid = 1", timeouts=1),  # catalog
    ]
    stats = timed_out_stats(
        logged, known=["SELECT * FROM a WHERE x = $1", "not sql ("], timeout_ms=1_000.0
    )
    assert [(s.query, s.calls, s.timeouts, s.total_time_ms, s.tables) for s in stats] == [
        ("SELECT * FROM c WHERE z = 9", 4, 4, 4_000.0, ("c",))
    ]
    assert stats[0].queryid == synthetic_queryid(fingerprint("SELECT * FROM c WHERE z = $1"))
    assert -(2**63) <= synthetic_queryid("ffffffffffffffff") < 0
