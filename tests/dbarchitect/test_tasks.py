import os
import signal

import psycopg
import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from config.celery_app import app as celery_app
from dbarchitect.models import AuditRun, QuerySnapshot, Target
from dbarchitect.services import audit_queue
from dbarchitect.tasks import audit_run_task, audit_weekly_task
from optimizations.models import OptimizationLog
from tests.celery_queue import worker_process
from tests.dbarchitect.waiting import audits_ended, wait_for

# A Redis database of its own: other checkouts' workers on db 0 must not take these tasks.
BROKER = "redis://127.0.0.1:6379/11"


def _use_broker(url: str, *, eager: bool) -> None:
    """Point the Celery app at another broker: drop its cached connection pools."""
    celery_app.conf.update(broker_url=url, result_backend=url, task_always_eager=eager)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app._backend = celery_app._get_backend()  # results: on the new URL too


def _targets_url() -> str:
    params = settings.DATABASES["default"]
    url = f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    return f"second={url},third={url}"


@pytest.mark.django_db
def test_weekly_periodic_task_exists_after_migrate():
    task = PeriodicTask.objects.get(task="dbarchitect.tasks.audit_weekly_task")
    assert task.enabled
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week) == ("0", "2", "0")  # Sunday 02:00
    assert (cron.day_of_month, cron.month_of_year) == ("*", "*")


@pytest.mark.django_db
def test_audit_queue_rejects_unknown_and_disabled_targets(settings):
    settings.DBARCHITECT_TARGETS = _targets_url()
    with pytest.raises(ValueError, match="Unknown target 'nope'; configured targets: default"):
        audit_queue(target="nope")
    Target.objects.update_or_create(name="third", defaults={"enabled": False})
    with pytest.raises(ValueError, match="disabled"):
        audit_queue(target="third")


@pytest.mark.django_db
def test_audit_run_task_eager_returns_the_audit_id(settings):
    settings.DBARCHITECT_VERIFY = "off"
    audit_id = "2f1a3c44-5d6e-4f70-8a9b-0c1d2e3f4a5b"
    result = audit_run_task.apply(kwargs={"target": "default", "audit_id": audit_id}).get()
    assert result == audit_id
    audit = AuditRun.objects.get(id=audit_id)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    # A redelivered message for the same audit does not run it twice.
    again = audit_run_task.apply(kwargs={"target": "default", "audit_id": audit_id}).get()
    assert again == audit_id
    assert AuditRun.objects.filter(target__name="default").count() == 1


@pytest.fixture
def real_broker():
    """The Celery app on a real Redis broker, not eager, for one test."""
    _use_broker(BROKER, eager=False)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    yield celery_app
    _use_broker(settings.CELERY_BROKER_URL, eager=True)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_weekly_task_fans_out_one_audit_per_enabled_target(real_broker, settings):
    settings.DBARCHITECT_TARGETS = _targets_url()
    settings.DBARCHITECT_VERIFY = "off"
    Target.objects.update_or_create(name="third", defaults={"enabled": False})
    with start_worker(real_broker, pool="threads", concurrency=2, perform_ping_check=False):
        queued = audit_weekly_task.delay().get(timeout=120)
        assert len(queued) == 2
        audits = wait_for(lambda: audits_ended(queued), seconds=300, what="the two audits")
    assert sorted(a.target.name for a in audits) == ["default", "second"]
    assert all(a.status == AuditRun.Status.SUCCEEDED for a in audits), [a.error for a in audits]
    assert not AuditRun.objects.filter(target__name="third").exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_audit_leaves_a_failed_audit_and_nothing_else(
    default_target, workload_conn, settings
):
    """A real worker process is killed while its audit waits on a lock the test holds."""
    from .conftest import pgss_reset_own_database, recent_logs

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 30)
    params = settings.DATABASES["default"]
    conninfo = f"host={params['HOST']} port={params['PORT']} user={params['USER']} " + (
        f"dbname={params['NAME']}"
    )
    _use_broker(BROKER, eager=False)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # no message left over from an earlier run
    with psycopg.connect(conninfo) as blocker:
        # An open write transaction: the audit collects, advises and checks health, then
        # its verification's CREATE INDEX waits for this writer.
        blocker.execute("UPDATE pl_behavior_log SET event_type = event_type WHERE id = 1")
        worker = worker_process(
            "--concurrency=1",
            REDIS_URL=BROKER,
            DBARCHITECT_VERIFY="on",
            # The verification build waits for the test's lock instead of giving up at once.
            DBARCHITECT_LOCK_TIMEOUT_MS="600000",
        )
        try:
            _use_broker(BROKER, eager=False)
            audit_id = "7d4b2c1a-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
            audit_run_task.apply_async(
                kwargs={"target": "default", "audit_id": audit_id}, task_id=audit_id
            )

            def waiting_on_the_writer():
                # Its own connection: pg_stat_activity is frozen inside a transaction.
                with psycopg.connect(conninfo, autocommit=True) as watcher:
                    row = watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query ILIKE %s AND datname = current_database()",
                        ["%CREATE INDEX%pl_behavior_log%"],
                    ).fetchone()
                return row[0] > 0

            wait_for(waiting_on_the_writer, seconds=300, what="the audit to reach the lock")
            assert AuditRun.objects.get(id=audit_id).status == AuditRun.Status.RUNNING
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
            _use_broker(settings.CELERY_BROKER_URL, eager=True)
        blocker.rollback()
    dead = AuditRun.objects.get(id=audit_id)
    assert dead.status == AuditRun.Status.RUNNING, dead.error  # nobody was left to say otherwise
    # The next audit of the target takes the lock the dead worker held and marks it failed.
    audit_run_task.apply(kwargs={"target": "default", "verify": False}).get()
    dead.refresh_from_db()
    assert dead.status == AuditRun.Status.FAILED
    assert "stale" in dead.error
    assert not QuerySnapshot.objects.filter(audit_id=audit_id).exists()
    assert not OptimizationLog.objects.filter(audit_id=audit_id).exists()


@pytest.mark.django_db(transaction=True)
def test_the_soft_time_limit_fails_the_audit_with_the_reason(
    default_target, workload_conn, monkeypatch
):
    """Celery raises SoftTimeLimitExceeded wherever the audit is; here: in the health phase."""
    from celery.exceptions import SoftTimeLimitExceeded

    from dbarchitect import agent

    from .conftest import pgss_reset_own_database, recent_logs

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 10)

    def time_is_up(*args, **kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(agent, "health_check", time_is_up)
    audit_id = audit_run_task.apply(kwargs={"target": "default", "verify": False}).get()
    audit = AuditRun.objects.get(id=audit_id)
    assert audit.status == AuditRun.Status.FAILED
    assert audit.error.startswith("time limit: the audit ran past CELERY_TASK_SOFT_TIME_LIMIT=")
    assert not audit.snapshots.exists() and not audit.optimizations.exists()


@pytest.mark.django_db
def test_audit_queue_queues_on_commit_under_the_id_it_returns(
    settings, django_capture_on_commit_callbacks
):
    settings.DBARCHITECT_VERIFY = "off"
    with django_capture_on_commit_callbacks() as callbacks:
        audit_id = audit_queue(target="default")
        assert not AuditRun.objects.filter(id=audit_id).exists()  # nothing before the commit
    assert len(callbacks) == 1
    callbacks[0]()  # the commit: eager Celery runs the task here
    audit = AuditRun.objects.get(id=audit_id)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
