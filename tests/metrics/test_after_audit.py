"""A real audit of a small workload, then /metrics: the numbers match what the audit recorded."""

import psycopg
import pytest

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from dbarchitect.targets import target_sync
from pgaccess.targets import target_connection
from tests.dbarchitect.pgss import pgss_reset_own_database

from .conftest import labels, scrape

pytestmark = [
    pytest.mark.urls("tests.metrics.urls"),
    pytest.mark.django_db(transaction=True),
]

ORDERS_QUERY = "SELECT id, total FROM f3_orders WHERE customer_id = %s ORDER BY id LIMIT 20"


@pytest.fixture
def slow_workload():
    """Plain SQL (not a model): 60,000 orders, no index on customer_id, and the query run
    often enough for pg_stat_statements and the audit's thresholds."""
    conninfo = target_connection("default").conninfo
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS f3_orders")
        conn.execute(
            "CREATE TABLE f3_orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,"
            " total numeric(10, 2) NOT NULL)"
        )
        conn.execute(
            "INSERT INTO f3_orders SELECT g, g % 2000, g % 300 FROM generate_series(1, 60000) g"
        )
        conn.execute("ANALYZE f3_orders")
        pgss_reset_own_database(conn)
        for customer in range(40):
            conn.execute(ORDERS_QUERY, [customer]).fetchall()
    yield
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS f3_orders")


def test_metrics_show_what_a_real_audit_recorded(client, slow_workload):
    target_sync()
    audit = run_audit(target="default", verify=False)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    indexes = audit.optimizations.filter(kind="index")
    assert any(log.table_name.endswith("f3_orders") for log in indexes)

    samples = scrape(client)
    default = labels(target="default")
    slow = audit.snapshots.filter(is_slow=True).count()
    assert slow >= 1
    assert samples["db_architect_slow_queries_total"][default] == slow
    assert samples["db_architect_slow_queries_last_audit"][default] == slow
    recommended = samples["db_architect_recommendations_total"]
    for kind in ("index", "rewrite", "drop_index", "invalid_index", "fk_index"):
        count = audit.optimizations.filter(kind=kind).count()
        assert recommended[labels(target="default", kind=kind)] == count, kind
    confidences = [log.confidence for log in indexes]
    assert samples["db_architect_confidence_score"][
        labels(target="default", kind="index")
    ] == pytest.approx(sum(confidences) / len(confidences))
    gains = [log.performance_gain for log in indexes]
    assert samples["db_architect_performance_gain_percent"][
        labels(target="default", kind="index")
    ] == pytest.approx(sum(gains) / len(gains))
    ok = labels(target="default", status="succeeded")
    assert samples["db_architect_audits_total"][ok] == 1
    assert samples["db_architect_audit_duration_seconds_count"][ok] == 1
    assert samples["db_architect_audit_duration_seconds_sum"][ok] == pytest.approx(
        audit.duration_seconds
    )
    assert samples["db_architect_last_audit_timestamp_seconds"][ok] == pytest.approx(
        audit.finished_at.timestamp()
    )
    assert samples["db_architect_last_audit_failed"][default] == 0
