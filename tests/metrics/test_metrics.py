"""/metrics shows the agent's numbers, read from the audit history in the database."""

import contextlib
import subprocess
import sys

import pytest
from django.db import DatabaseError, connection, transaction

from dbarchitect.metrics import AgentMetricsCollector
from optimizations.models import OptimizationLog

from .conftest import T0, labels, make_audit, make_log, parse, scrape

pytestmark = pytest.mark.urls("tests.metrics.urls")


def test_slow_queries_count_succeeded_audits_only(client, history):
    samples = scrape(client)
    assert samples["db_architect_slow_queries_total"][labels(target="shop")] == 5
    assert samples["db_architect_slow_queries_last_audit"][labels(target="shop")] == 2
    # A target that was never audited still has a series, at zero, so rate() works from day one.
    assert samples["db_architect_slow_queries_total"][labels(target="idle")] == 0
    assert labels(target="idle") not in samples["db_architect_slow_queries_last_audit"]


def test_recommendations_counted_by_target_kind_and_status(client, history):
    samples = scrape(client)
    total = samples["db_architect_recommendations_total"]
    assert total[labels(target="shop", kind="index")] == 3
    assert total[labels(target="shop", kind="rewrite")] == 1
    assert total[labels(target="shop", kind="drop_index")] == 0
    by_status = samples["db_architect_recommendations_by_status"]
    assert by_status[labels(target="shop", status="proposed")] == 2
    assert by_status[labels(target="shop", status="applied")] == 1
    assert by_status[labels(target="shop", status="rejected")] == 1


def test_confidence_and_gain_are_means_of_the_latest_recommending_audit(client, history):
    samples = scrape(client)
    confidence = samples["db_architect_confidence_score"]
    assert confidence[labels(target="shop", kind="index")] == pytest.approx(0.7)
    assert confidence[labels(target="shop", kind="rewrite")] == 0.0
    gain = samples["db_architect_performance_gain_percent"]
    assert gain[labels(target="shop", kind="index")] == pytest.approx(60.0)
    # The old audit's 0.4 is history now: it only shows in the distribution.
    buckets = samples["db_architect_recommendation_confidence_bucket"]
    assert buckets[labels(target="shop", le="0.1")] == 1  # the rewrite's 0.0
    assert buckets[labels(target="shop", le="0.4")] == 2
    assert buckets[labels(target="shop", le="0.5")] == 3
    assert buckets[labels(target="shop", le="0.8")] == 3
    assert buckets[labels(target="shop", le="+Inf")] == 4
    assert samples["db_architect_recommendation_confidence_sum"][
        labels(target="shop")
    ] == pytest.approx(1.8)


def test_an_audit_without_recommendations_keeps_the_previous_confidence(client, history):
    later = make_audit(history["shop"], status="succeeded", started=T0.replace(day=20), seconds=9)
    samples = scrape(client)
    assert samples["db_architect_slow_queries_last_audit"][labels(target="shop")] == 0
    confidence = samples["db_architect_confidence_score"]
    assert confidence[labels(target="shop", kind="index")] == pytest.approx(0.7)
    make_log(later, kind="index", confidence=0.3, gain=5.0)
    confidence = scrape(client)["db_architect_confidence_score"]
    assert confidence[labels(target="shop", kind="index")] == pytest.approx(0.3)
    assert labels(target="shop", kind="rewrite") not in confidence


def test_audit_duration_histogram_and_counts(client, history):
    samples = scrape(client)
    buckets = samples["db_architect_audit_duration_seconds_bucket"]
    ok = {"target": "shop", "status": "succeeded"}
    assert buckets[labels(**ok, le="15")] == 0
    assert buckets[labels(**ok, le="30")] == 1
    assert buckets[labels(**ok, le="120")] == 1
    assert buckets[labels(**ok, le="300")] == 2
    assert buckets[labels(**ok, le="+Inf")] == 2
    assert samples["db_architect_audit_duration_seconds_sum"][labels(**ok)] == pytest.approx(220.75)
    assert samples["db_architect_audit_duration_seconds_count"][labels(**ok)] == 2
    failed = labels(target="shop", status="failed")
    assert samples["db_architect_audit_duration_seconds_count"][failed] == 1
    # The running audit is not finished: not counted anywhere yet.
    audits = samples["db_architect_audits_total"]
    assert audits[labels(**ok)] == 2
    assert audits[failed] == 1
    assert audits[labels(target="idle", status="failed")] == 0


def test_last_audit_gauges(client, history):
    samples = scrape(client)
    last = samples["db_architect_last_audit_timestamp_seconds"]
    new = history["new"]
    assert last[labels(target="shop", status="succeeded")] == new.finished_at.timestamp()
    assert last[labels(target="shop", status="failed")] == history["failed"].finished_at.timestamp()
    assert samples["db_architect_last_audit_failed"][labels(target="shop")] == 0
    assert labels(target="idle") not in samples["db_architect_last_audit_failed"]
    enabled = samples["db_architect_target_enabled"]
    assert enabled[labels(target="shop")] == 1
    assert enabled[labels(target="idle")] == 0

    make_audit(history["shop"], status="failed", started=T0.replace(day=25), seconds=3)
    assert scrape(client)["db_architect_last_audit_failed"][labels(target="shop")] == 1


def test_recommendation_without_target_or_audit_is_labelled_none(client, db):
    make_log(None, kind="index", confidence=0.8, gain=50.0)
    samples = scrape(client)
    assert samples["db_architect_recommendations_total"][labels(target="none", kind="index")] == 1


def test_django_prometheus_request_metrics_on_the_same_page(client, history):
    client.get("/healthz")
    samples = scrape(client)
    assert samples["db_architect_metrics_up"][()] == 1
    requests = samples["django_http_requests_total_by_view_transport_method_total"]
    assert any(dict(key).get("view") == "healthz" and value >= 1 for key, value in requests.items())


def test_metrics_up_is_zero_and_scrape_answers_when_the_database_fails(db):
    # A real database error: the transaction is aborted, so the collector's queries fail.
    with transaction.atomic():
        with connection.cursor() as cursor:
            with contextlib.suppress(DatabaseError):
                cursor.execute("SELECT 1 / 0")
            families = list(AgentMetricsCollector().collect())
        transaction.set_rollback(True)
    assert [(f.name, f.samples[0].value) for f in families] == [("db_architect_metrics_up", 0)]


def test_gunicorn_workers_metrics_are_merged_in_multiprocess_mode(
    client, history, settings, tmp_path
):
    # Another process (a gunicorn worker) counts something into the shared directory...
    code = (
        "from prometheus_client import Counter;"
        "Counter('dbarchitect_test_worker_requests', 'test').inc(3)"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    # ...and this process's /metrics shows it beside the agent's metrics.
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    samples = scrape(client)
    assert samples["dbarchitect_test_worker_requests_total"][()] == 3
    assert samples["db_architect_slow_queries_total"][labels(target="shop")] == 5


def test_metrics_page_reads_few_queries_however_long_the_history(
    client, history, django_assert_max_num_queries
):
    for _ in range(5):
        make_log(history["new"], kind="fk_index", confidence=0.6, gain=1.0)
    with django_assert_max_num_queries(10):
        response = client.get("/metrics")
    assert response.status_code == 200
    assert OptimizationLog.objects.count() == 9
    assert (
        parse(response.content.decode())["db_architect_recommendations_total"][
            labels(target="shop", kind="fk_index")
        ]
        == 5
    )
