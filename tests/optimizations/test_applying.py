"""Applying an index through optimizations.applying, with eager Celery (the build runs as the
transaction commits) and real builds on the test database. Real workers: test_apply_worker."""

import datetime

import psycopg
import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from config.celery_app import app as celery_app
from dbarchitect.agent import run_audit
from optimizations.applying import (
    apply_job,
    recommendation_apply_progress,
    recommendation_apply_start,
)
from optimizations.decisions import (
    DecisionError,
    recommendation_outcomes_check,
    recommendation_reject,
)
from tests.dbarchitect.pgss import pgss_reset_own_database

from .apply_fixtures import LOOKUP, TABLE, connect, index_valid, recommendation


def _age(log, *, minutes: int) -> None:
    """Make the queued job look `minutes` older than it is."""
    job = apply_job(log)
    queued_at = datetime.datetime.fromisoformat(job["queued_at"])
    job["queued_at"] = (queued_at - datetime.timedelta(minutes=minutes)).isoformat()
    log.details = {**log.details, "apply_job": job}
    log.save(update_fields=["details"])


@pytest.mark.django_db
def test_apply_refuses_staff_rejected_non_index_kinds_and_bad_ddl(staff_user, superuser):
    log = recommendation("CREATE INDEX x ON dec_orders (customer_id)")
    with pytest.raises(DecisionError, match="Only a superuser"):
        recommendation_apply_start(recommendation=log, applied_by=staff_user)
    rewrite = recommendation("Use keyset pagination", kind="rewrite")
    with pytest.raises(DecisionError, match="rewrite recommendation is not an index"):
        recommendation_apply_start(recommendation=rewrite, applied_by=superuser)
    recommendation_reject(recommendation=log, user=superuser)
    with pytest.raises(DecisionError, match="Cannot apply a recommendation that is rejected"):
        recommendation_apply_start(recommendation=log, applied_by=superuser)
    bad = recommendation("DROP TABLE dec_orders")
    with pytest.raises(DecisionError, match="one CREATE INDEX"):
        recommendation_apply_start(recommendation=bad, applied_by=superuser)
    for item in (log, rewrite, bad):
        item.refresh_from_db()
        assert item.status != "applying" and "apply_job" not in item.details


@pytest.mark.django_db
def test_a_queued_apply_refuses_a_second_one_until_it_is_stale(superuser, settings):
    """No worker runs here (the transaction never commits): the apply stays queued."""
    settings.DBARCHITECT_STALE_APPLY_MINUTES = 30
    log = recommendation("CREATE INDEX dec_orders_q ON dec_orders (customer_id)", status="approved")

    started = recommendation_apply_start(recommendation=log, applied_by=superuser)

    assert not started.ran_here
    assert started.message.startswith("Apply of dec_orders_q queued: a Celery worker builds it")
    log.refresh_from_db()
    assert log.status == "applying"
    job = apply_job(log)
    assert (job["job_id"], job["from_status"], job["queued_by"]) == (
        started.job_id,
        "approved",
        "root",
    )
    progress = recommendation_apply_progress(recommendation=log)
    assert progress.state == "queued" and "waiting for a Celery worker" in progress.message

    with pytest.raises(DecisionError, match=r"already being applied\. Queued at .* by root"):
        recommendation_apply_start(recommendation=log, applied_by=superuser)
    with pytest.raises(DecisionError, match="Cannot reject a recommendation that is applying"):
        recommendation_reject(recommendation=log, user=superuser)

    # Half an hour later no worker has started it: it is lost, and may be applied again.
    _age(log, minutes=31)
    lost = recommendation_apply_progress(recommendation=log)
    assert lost.state == "lost" and "no worker started it within 30 minutes" in lost.message
    again = recommendation_apply_start(recommendation=log, applied_by=superuser)
    assert again.job_id != started.job_id
    log.refresh_from_db()
    assert log.status == "applying"
    assert apply_job(log)["from_status"] == "approved"  # where a failure goes back to
    assert "was lost: no worker started it within 30 minutes" in log.details["apply_error"]


@pytest.mark.django_db(transaction=True)
def test_apply_builds_concurrently_and_a_later_audit_records_the_gain(orders, superuser, settings):
    settings.DBARCHITECT_VERIFY = "off"
    with connect() as conn:
        pgss_reset_own_database(conn)
        for customer in range(20):
            conn.execute(LOOKUP, [customer])
    before = run_audit(target="default")
    assert before.status == "succeeded", before.error
    queryid = before.snapshots.get(query__contains=f"FROM {TABLE}").queryid
    log = recommendation(
        f"CREATE INDEX dec_orders_customer ON public.{TABLE} (customer_id)", queryids=[queryid]
    )

    started = recommendation_apply_start(recommendation=log, applied_by=superuser)

    # Eager Celery (the test settings) ran the build as the request's transaction committed.
    assert started.ran_here
    assert started.message.startswith(
        "Applied at once (CELERY_TASK_ALWAYS_EAGER is on): Index dec_orders_customer built "
        "concurrently in"
    )
    assert index_valid("public.dec_orders_customer") is True
    with connect() as conn:
        built = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query ILIKE %s AND dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            ["/* dbarchitect */ CREATE INDEX CONCURRENTLY dec_orders_customer%"],
        ).fetchone()[0]
        assert built == 1
        for customer in range(20, 40):
            conn.execute(LOOKUP, [customer])
    log.refresh_from_db()
    assert log.status == "applied" and log.applied_at is not None
    assert log.decided_by == superuser and log.details["applied_by"] == "root"
    assert log.details["mean_ms_before_apply"] > 0
    assert str(queryid) in log.details["apply_counters"]
    assert apply_job(log)["ok"] is True and apply_job(log)["started_at"]

    # The next audit judges it (recording calls recommendation_outcomes_check).
    after = run_audit(target="default")
    assert after.status == "succeeded", after.error
    log.refresh_from_db()
    assert [item["id"] for item in after.report["outcomes"]] == [str(log.pk)]
    assert after.report["outcomes"][0]["outcome"] == log.outcome == "gain"
    assert log.mean_ms_after_apply < log.details["mean_ms_before_apply"] * 0.8
    # Judged once: the next audit leaves it alone.
    assert recommendation_outcomes_check(audit=after) == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_build_drops_the_invalid_index_and_goes_back_to_its_status(orders, superuser):
    log = recommendation(f"CREATE UNIQUE INDEX dec_orders_customer_uq ON {TABLE} (customer_id)")
    started = recommendation_apply_start(recommendation=log, applied_by=superuser)
    assert started.ran_here
    log.refresh_from_db()
    assert log.status == "proposed"
    error = log.details["apply_error"]
    assert "could not create unique index" in error
    assert "the invalid index dec_orders_customer_uq it left was dropped" in error
    assert started.message.endswith(error)
    assert apply_job(log)["ok"] is False and apply_job(log)["result"] == error
    assert index_valid("dec_orders_customer_uq") is None


@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_is_reported_and_a_retry_cleans_up(orders, superuser, settings):
    settings.DBARCHITECT_LOCK_TIMEOUT_MS = 300
    log = recommendation(f"CREATE INDEX dec_orders_customer_lt ON {TABLE} (customer_id)")
    with connect() as writer:
        writer.autocommit = False
        writer.execute(f"INSERT INTO {TABLE} VALUES (0, 0)")  # an open write transaction
        recommendation_apply_start(recommendation=log, applied_by=superuser)
        writer.rollback()
    log.refresh_from_db()
    assert log.status == "proposed"
    assert "lock timeout" in log.details["apply_error"]
    # The build got as far as the catalog: it left an INVALID index, and dropping it waits on
    # the same writer, so the message says to drop it by hand...
    assert index_valid("dec_orders_customer_lt") is False
    assert "drop it by hand" in log.details["apply_error"]
    # ...and once the writer is gone, the retry drops the leftover first, then builds.
    retry = recommendation_apply_start(recommendation=log, applied_by=superuser)
    assert "Dropped the INVALID index dec_orders_customer_lt" in retry.message
    assert index_valid("dec_orders_customer_lt") is True
    log.refresh_from_db()
    assert log.status == "applied" and "apply_error" not in log.details


@pytest.mark.django_db(transaction=True)
def test_an_apply_whose_worker_died_is_applied_again_and_its_invalid_index_dropped(
    orders, superuser
):
    name = "dec_orders_dead"
    log = recommendation(f"CREATE INDEX {name} ON {TABLE} (customer_id)")
    # What a worker killed mid-build leaves: the job marked started, no build holding the
    # apply lock on the target, and an INVALID index (here from a failed unique build).
    with connect() as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON {TABLE} (customer_id)")
    assert index_valid(name) is False
    now = timezone.now().isoformat()
    log.status = "applying"
    log.details = {
        "apply_job": {
            "job_id": "dead-job",
            "from_status": "proposed",
            "queued_at": now,
            "queued_by": "root",
            "started_at": now,
        }
    }
    log.save()

    progress = recommendation_apply_progress(recommendation=log)
    assert progress.state == "lost"
    assert f"its worker stopped before recording a result (no build of {name} runs" in (
        progress.message
    )

    started = recommendation_apply_start(recommendation=log, applied_by=superuser)

    assert f"Dropped the INVALID index {name} a failed build had left." in started.message
    assert index_valid(name) is True
    log.refresh_from_db()
    assert log.status == "applied"
    assert apply_job(log)["job_id"] == started.job_id


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_task_queue_leaves_the_recommendation_as_it_was(superuser):
    log = recommendation("CREATE INDEX dec_orders_nq ON dec_orders (customer_id)")
    broker, backend = celery_app.conf.broker_url, celery_app.conf.result_backend
    nowhere = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    celery_app.conf.update(broker_url=nowhere, result_backend=nowhere, task_always_eager=False)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        with pytest.raises(OperationalError):
            recommendation_apply_start(recommendation=log, applied_by=superuser)
    finally:
        celery_app.conf.update(broker_url=broker, result_backend=backend, task_always_eager=True)
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
    log.refresh_from_db()
    assert log.status == "proposed"
    assert log.details["apply_error"].startswith("Could not queue the apply: the task queue")


@pytest.fixture
def partitioned_orders():
    """A range-partitioned table: PostgreSQL refuses CREATE INDEX CONCURRENTLY on it."""
    with connect() as conn:
        conn.execute("DROP TABLE IF EXISTS dec_parted")
        conn.execute(
            "CREATE TABLE dec_parted (id bigint, customer_id int, at date) PARTITION BY RANGE (at)"
        )
        for month in (1, 2):
            conn.execute(
                f"CREATE TABLE dec_parted_{month} PARTITION OF dec_parted "
                f"FOR VALUES FROM ('2026-0{month}-01') TO ('2026-0{month + 1}-01')"
            )
        conn.execute(
            "INSERT INTO dec_parted SELECT g, g % 500, date '2026-01-01' + g % 59 "
            "FROM generate_series(1, 20000) AS g"
        )
    yield "dec_parted"
    with connect() as conn:
        conn.execute("DROP TABLE IF EXISTS dec_parted")


@pytest.mark.django_db(transaction=True)
def test_an_index_on_a_partitioned_table_is_built_plainly_on_every_partition(
    partitioned_orders, superuser
):
    ddl = f"CREATE INDEX dec_parted_customer_idx ON {partitioned_orders} (customer_id)"
    log = recommendation(ddl, details={"partitioned": True})
    started = recommendation_apply_start(recommendation=log, applied_by=superuser)
    log.refresh_from_db()
    assert log.status == "applied", log.details.get("apply_error")
    assert "not concurrently" in started.message
    assert index_valid("dec_parted_customer_idx") is True
    with connect() as conn:
        attached = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'dec_parted_customer_idx'::regclass"
        ).fetchone()[0]
    assert attached == 2
