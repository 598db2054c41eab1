"""Audits on real Celery workers through real Redis when a worker or the broker goes away.

Each test holds an audit mid-verification (its CREATE INDEX waits on the test's open write
transaction), does the damage, then lets it go.
"""

import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from config.celery_app import app as celery_app
from dbarchitect.models import AuditRun, QuerySnapshot
from dbarchitect.tasks import audit_run_task, audit_weekly_task
from optimizations.models import OptimizationLog
from tests.celery_queue import worker_process
from tests.dbarchitect.waiting import audits_ended, wait_for

from .conftest import pgss_reset_own_database, recent_logs
from .test_tasks import BROKER, _use_broker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _conninfo() -> str:
    params = settings.DATABASES["default"]
    return (
        f"host={params['HOST']} port={params['PORT']} user={params['USER']} dbname={params['NAME']}"
    )


@contextmanager
def _audits_held() -> Iterator[psycopg.Connection]:
    """An open write transaction on the workload's table: an audit's verification waits."""
    with psycopg.connect(_conninfo()) as blocker:
        blocker.execute("UPDATE pl_behavior_log SET event_type = event_type WHERE id = 1")
        yield blocker
        blocker.rollback()


def _waiting_audits() -> int:
    """How many audits' CREATE INDEX wait on the test's lock (pg_stat_activity)."""
    with psycopg.connect(_conninfo(), autocommit=True) as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE %s AND datname = current_database()",
            ["%CREATE INDEX%pl_behavior_log%"],
        ).fetchone()
    return row[0]


def _pool_processes(worker: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text()
    return [int(pid) for pid in children.split()]


def _worker(broker: str, **env: str) -> subprocess.Popen:
    """A worker node with one prefork pool process; verification on, waiting for locks."""
    return worker_process(
        "--pool=prefork",
        "--concurrency=1",
        REDIS_URL=broker,
        DBARCHITECT_VERIFY="on",
        DBARCHITECT_LOCK_TIMEOUT_MS="600000",
        **env,
    )


@contextmanager
def _running(worker: subprocess.Popen) -> Iterator[subprocess.Popen]:
    try:
        yield worker
    finally:
        worker.kill()  # what it held goes with its broker (or is flushed by the next test)
        worker.wait()
        _use_broker(settings.CELERY_BROKER_URL, eager=True)


def _nothing_recorded(audit_id: str) -> bool:
    return not (
        QuerySnapshot.objects.filter(audit_id=audit_id).exists()
        or OptimizationLog.objects.filter(audit_id=audit_id).exists()
    )


def test_pool_process_killed_mid_audit_fails_the_audit_saying_so(default_target, workload_conn):
    """The node survives its pool process; the requeued message marks the audit failed."""
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 30)
    _use_broker(BROKER, eager=False)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    audit_id = "5c0e7a52-31d4-4b9e-8f0a-2d6c1b3e4f5a"
    with _audits_held(), _running(_worker(BROKER)) as worker:
        _use_broker(BROKER, eager=False)
        audit_run_task.apply_async(
            kwargs={"target": "default", "audit_id": audit_id}, task_id=audit_id
        )
        wait_for(_waiting_audits, seconds=300, what="the audit to reach the lock")
        os.kill(_pool_processes(worker)[0], signal.SIGKILL)

        def failed():
            audit = AuditRun.objects.get(id=audit_id)
            return audit if audit.status != AuditRun.Status.RUNNING else None

        audit = wait_for(failed, seconds=120, what="the killed audit to end")
        assert worker.poll() is None  # the node lives on with a new pool process
    assert audit.status == AuditRun.Status.FAILED
    assert "stale: its worker was lost before the audit finished" in audit.error
    assert _nothing_recorded(audit_id)


@contextmanager
def _private_redis() -> Iterator[tuple[str, Callable[[], None]]]:
    """A redis-server of the test's own, snapshotting as docker-compose.yml's does; yields
    its URL and a function that restarts it (SIGTERM: the snapshot is written first)."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        command = [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "60 1", "--dir", directory),
        ]
        server = [subprocess.Popen(command, stdout=subprocess.DEVNULL)]

        def answers() -> bool:
            ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True)
            return ping.stdout.strip() == b"PONG"

        def restart() -> None:
            server[0].terminate()
            server[0].wait(timeout=30)
            server[0] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            wait_for(answers, seconds=20, what="redis to come back")

        wait_for(answers, seconds=20, what="redis to start")
        try:
            yield f"redis://127.0.0.1:{port}/0", restart
        finally:
            server[0].terminate()
            server[0].wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_broker_restart_mid_run_loses_no_audit_and_runs_none_twice(
    default_target, workload_conn, settings
):
    """The weekly task queues two audits for one worker: the broker restarts while the
    first one runs and the second waits in Redis; both audits run, once each."""
    params = settings.DATABASES["default"]
    url = f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    targets = f"second={url}"
    settings.DBARCHITECT_TARGETS = targets
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 30)
    with _private_redis() as (broker, restart), _audits_held() as blocker:
        _use_broker(broker, eager=False)
        queued = audit_weekly_task.apply().get()  # fanned out here, onto the private broker
        assert len(queued) == 2
        with _running(_worker(broker, DBARCHITECT_TARGETS=targets)):
            _use_broker(broker, eager=False)
            wait_for(
                lambda: AuditRun.objects.filter(id__in=queued).exists(),
                seconds=300,
                what="the first audit to start",
            )
            restart()
            blocker.rollback()  # a verification waiting on the test's lock goes on
            # One pool process: one audit at most has begun, the other one was in Redis.
            assert AuditRun.objects.filter(id__in=queued).count() == 1
            audits = wait_for(lambda: audits_ended(queued), seconds=600, what="both audits")
    assert sorted(a.target.name for a in audits) == ["default", "second"]
    assert [a.status for a in audits] == [AuditRun.Status.SUCCEEDED] * 2, [a.error for a in audits]
    assert AuditRun.objects.count() == 2  # a redelivered message ran nothing again
