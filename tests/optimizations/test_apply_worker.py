"""Applying an index end to end: the admin or the API queues it on the real Redis broker, a
real Celery worker builds it on the test database, and the recommendation shows how it goes."""

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.messages import get_messages
from django.db import connections
from django.urls import reverse
from rest_framework.test import APIClient

from config.celery_app import app as celery_app
from optimizations.applying import (
    apply_job,
    recommendation_apply_progress,
    recommendation_apply_start,
)
from optimizations.decisions import DecisionError
from optimizations.models import OptimizationLog
from tests.celery_queue import own_queue, worker_process
from tests.dbarchitect.pgss import pgss_reset_own_database
from tests.dbarchitect.waiting import wait_for

from .apply_fixtures import LOOKUP, TABLE, connect, index_valid, recommendation

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

APPLY_TASK = "optimizations.apply_index"
INDEX = "dec_orders_worker_idx"
DDL = f"CREATE INDEX {INDEX} ON public.{TABLE} (customer_id)"


@pytest.fixture
def super_api(superuser) -> APIClient:
    client = APIClient()
    client.force_authenticate(superuser)
    return client


@pytest.fixture
def apply_queue() -> Iterator[str]:
    with own_queue(APPLY_TASK) as queue:
        yield queue


def _worker(queue: str):
    return start_worker(celery_app, pool="solo", perform_ping_check=False, queues=[queue])


def _served_queryid() -> int:
    """Run the lookup the index serves, and return its pg_stat_statements id."""
    with connect() as conn:
        pgss_reset_own_database(conn)
        for customer in range(10):
            conn.execute(LOOKUP, [customer])
        return conn.execute(
            "SELECT queryid FROM pg_stat_statements WHERE query LIKE %s AND dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            [f"%FROM {TABLE} WHERE customer_id%"],
        ).fetchone()[0]


def _holding_writer():
    """An open write transaction on the table: a concurrent build waits for it to end."""
    writer = connect()
    writer.autocommit = False
    writer.execute(f"INSERT INTO {TABLE} VALUES (0, 0)")
    return writer


def test_api_apply_is_built_by_a_worker_with_progress_and_no_second_build(
    orders, super_api, apply_queue, settings
):
    settings.DBARCHITECT_LOCK_TIMEOUT_MS = 600_000  # the build waits for the test's writer
    queryid = _served_queryid()
    log = recommendation(DDL, queryids=[queryid])
    writer = _holding_writer()
    try:
        response = super_api.post(f"/api/optimizations/{log.pk}/apply/")
        assert response.status_code == 202, response.content
        url = response.json()["url"]
        assert response.json()["status"] == "applying"
        assert super_api.get(url).json()["apply_progress"]["state"] == "queued"

        with _worker(apply_queue):

            def waiting_for_the_writer():
                progress = super_api.get(url).json()["apply_progress"]
                return (
                    progress
                    and progress["phase"] == "waiting for writers before build"
                    and (progress)
                )

            progress = wait_for(waiting_for_the_writer, seconds=120, what="the build to start")
            assert progress["state"] == "building"
            assert progress["lockers_total"] >= 1 and progress["lockers_done"] == 0
            assert index_valid(f"public.{INDEX}") is False  # in the catalog, not usable yet

            again = super_api.post(f"/api/optimizations/{log.pk}/apply/")
            assert again.status_code == 409
            assert again.json()["error"].startswith(
                f"This recommendation is already being applied. Building {INDEX} on target "
                "default (backend "
            )

            writer.rollback()
            body = wait_for(
                lambda: (b := super_api.get(url).json())["status"] != "applying" and b,
                seconds=120,
                what="the build to finish",
            )
    finally:
        writer.close()
    assert body["status"] == "applied", body["details"].get("apply_error")
    assert body["apply_progress"] is None
    assert index_valid(f"public.{INDEX}") is True
    # The baseline the next audit judges the apply against: the lookup's counters now.
    calls, total_ms = body["details"]["apply_counters"][str(queryid)]
    assert calls >= 10 and total_ms > 0
    assert body["details"]["apply_job"]["ok"] is True


def test_admin_apply_is_queued_and_the_change_page_shows_the_build(
    orders, super_client, apply_queue, settings
):
    settings.DBARCHITECT_LOCK_TIMEOUT_MS = 600_000
    log = recommendation(DDL)
    change = reverse("admin:optimizations_optimizationlog_change", args=[log.pk])
    writer = _holding_writer()
    try:
        response = super_client.post(
            reverse("admin:optimizations_optimizationlog_apply", args=[log.pk])
        )
        assert response.status_code == 302 and response.url == change
        (message,) = [str(m) for m in get_messages(response.wsgi_request)]
        assert message == (
            f"{DDL}: Apply of {INDEX} queued: a Celery worker builds it (CREATE INDEX "
            "CONCURRENTLY); the recommendation shows its progress."
        )
        with _worker(apply_queue):
            page = wait_for(
                lambda: (
                    "waiting for writers before build"
                    in (html := super_client.get(change).content.decode())
                    and html
                ),
                seconds=120,
                what="the build to show on the page",
            )
            assert "Applying: building" in page and "waiting for transactions" in page
            assert '<meta http-equiv="refresh" content="5">' in page
            writer.rollback()
            wait_for(
                lambda: OptimizationLog.objects.get(pk=log.pk).status == "applied",
                seconds=120,
                what="the build to finish",
            )
    finally:
        writer.close()
    page = super_client.get(change).content.decode()
    assert 'id="dba-apply-result"' in page and f"Index {INDEX} built concurrently" in page
    assert 'id="dba-apply-progress"' not in page


def test_two_applies_at_the_same_moment_queue_one_build(orders, superuser, apply_queue):
    log = recommendation(DDL)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def apply() -> None:
        barrier.wait()
        try:
            started = recommendation_apply_start(recommendation=log, applied_by=superuser)
            outcomes.append(f"queued {started.job_id}")
        except DecisionError as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    queued = [item for item in outcomes if item.startswith("queued ")]
    refused = [item for item in outcomes if not item.startswith("queued ")]
    assert len(queued) == 1 and len(refused) == 1, outcomes
    assert refused[0].startswith("This recommendation is already being applied. Queued at")
    log.refresh_from_db()
    assert log.status == "applying" and f"queued {apply_job(log)['job_id']}" == queued[0]
    # Exactly one message waits on the broker.
    with celery_app.connection_for_write() as conn:
        assert conn.default_channel.client.llen(apply_queue) == 1


def test_a_worker_killed_mid_build_leaves_an_apply_that_can_be_applied_again(
    orders, superuser, apply_queue
):
    """A real worker process is SIGKILLed while its build waits for the test's writer."""
    log = recommendation(DDL)
    writer = _holding_writer()
    worker = worker_process("-Q", apply_queue, DBARCHITECT_LOCK_TIMEOUT_MS="600000")
    try:
        recommendation_apply_start(recommendation=log, applied_by=superuser)

        def building():
            log.refresh_from_db()
            return apply_job(log).get("started_at") and index_valid(f"public.{INDEX}") is False

        wait_for(building, seconds=120, what="the worker to start the build")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

        # While the writer still holds it, PostgreSQL notices the lost client
        # (client_connection_check_interval) and cancels the build: its lock is gone, nothing
        # was recorded, and an INVALID index is left behind.
        def lost():
            log.refresh_from_db()
            progress = recommendation_apply_progress(recommendation=log)
            return progress.state == "lost" and progress

        progress = wait_for(lost, seconds=60, what="the dead build to be noticed")
        assert "its worker stopped before recording a result" in progress.message
        assert log.status == "applying"
        assert index_valid(f"public.{INDEX}") is False
    finally:
        if worker.poll() is None:
            worker.kill()
        writer.rollback()
        writer.close()

    with _worker(apply_queue):
        recommendation_apply_start(recommendation=log, applied_by=superuser)
        wait_for(
            lambda: OptimizationLog.objects.get(pk=log.pk).status != "applying",
            seconds=120,
            what="the new build",
        )
    log.refresh_from_db()
    assert log.status == "applied", log.details.get("apply_error")
    assert apply_job(log)["result"].startswith(f"Dropped the INVALID index {INDEX}")
    assert index_valid(f"public.{INDEX}") is True
