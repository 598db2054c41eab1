"""POST /api/audits/ end to end: the task goes through the real Redis broker to an
in-process Celery worker, the agent audits the test database, and GET /api/audits/{id}/
shows the result."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from celery.contrib.testing.worker import start_worker

from config.celery_app import app as celery_app
from dbarchitect.targets import target_sync
from dbarchitect.tasks import audit_run_task
from pgaccess.targets import target_connection
from tests.celery_queue import own_queue
from tests.dbarchitect.pgss import pgss_reset_own_database
from tests.dbarchitect.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

AUDIT_TASK = "dbarchitect.tasks.audit_run_task"
ROWS = 60_000
CUSTOMERS = 2_000
# The slow query: no index on customer_id, so every call scans the whole table.
SLOW_QUERY = "SELECT id, total FROM api_order WHERE customer_id = %s"


@pytest.fixture
def slow_workload() -> Iterator[None]:
    """A table without the index its hot query needs, and that query run 40 times, in the
    test database's own pg_stat_statements (reset for this database only)."""
    conninfo = target_connection("default").conninfo
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS api_order")
        conn.execute(
            "CREATE TABLE api_order (id bigint PRIMARY KEY, customer_id bigint NOT NULL, "
            "status text NOT NULL, total numeric(12, 2) NOT NULL)"
        )
        conn.execute(
            "INSERT INTO api_order (id, customer_id, status, total) "
            "SELECT g, g %% %s + 1, 'status_' || (g %% 5), (g %% 900) + 0.5 "
            "FROM generate_series(1, %s) AS g",
            [CUSTOMERS, ROWS],
        )
        conn.execute("ANALYZE api_order")
        pgss_reset_own_database(conn)
        for customer in range(40):
            conn.execute(SLOW_QUERY, [customer * 37 % CUSTOMERS + 1]).fetchall()
    yield
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS api_order")


@pytest.fixture
def worker_queue() -> Iterator[str]:
    """Audit tasks go to a queue of this test's own."""
    with own_queue(AUDIT_TASK) as queue:
        yield queue


def test_post_queues_an_audit_that_a_worker_runs_and_get_shows(
    staff_api, slow_workload, worker_queue
):
    target_sync()
    response = staff_api.post("/api/audits/", {"target": "default"}, format="json")
    assert response.status_code == 202, response.content
    started = response.json()
    assert started["status"] == "queued"
    assert started["url"] == f"http://testserver/api/audits/{started['id']}/"

    # No worker yet: the audit waits in the queue, known only to Celery.
    waiting = staff_api.get(started["url"]).json()
    assert waiting["status"] == "queued"
    assert waiting["id"] == started["id"]

    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[worker_queue]):
        body = wait_for(
            lambda: (
                (b := staff_api.get(started["url"]).json())["status"] in ("succeeded", "failed")
                and b
            ),
            seconds=300,
            what="the audit to finish",
        )

    assert body["status"] == "succeeded", body["error"]
    assert body["target"] == "default"
    assert body["queries_collected"] >= 1
    assert body["duration_seconds"] > 0
    assert {"collect", "verify"} <= set(body["phase_seconds"])
    ddls = [item["ddl"] for item in body["recommendations"]]
    assert body["recommendations_count"] == len(ddls)
    assert any("api_order" in ddl and "customer_id" in ddl for ddl in ddls), ddls
    # The same audit shows in the list, with the same counts.
    listed = staff_api.get("/api/audits/", {"target": "default"}).json()["results"]
    assert [item["id"] for item in listed] == [started["id"]]
    assert listed[0]["recommendations_count"] == len(ddls)


def test_a_task_that_fails_before_recording_an_audit_reads_as_failed(staff_api, worker_queue):
    target_sync()
    task_id = str(uuid.uuid4())
    audit_run_task.apply_async(kwargs={"target": "no-such-target"}, task_id=task_id)
    url = f"/api/audits/{task_id}/"
    assert staff_api.get(url).json()["status"] == "queued"
    with start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[worker_queue]):
        body = wait_for(
            lambda: (b := staff_api.get(url).json())["status"] != "queued" and b,
            seconds=60,
            what="the task to fail",
        )
    celery_app.backend.forget(task_id)
    assert body["status"] == "failed"
    assert "no-such-target" in body["error"]
    assert body["recommendations"] == []
