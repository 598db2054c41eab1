import psycopg
import pytest
from django.core.management import call_command

from dbarchitect.agent import run_audit
from dbarchitect.models import Target
from dbarchitect.targets import target_connection, target_sync
from optimizations.decisions import (
    DecisionError,
    recommendation_apply,
    recommendation_approve,
    recommendation_outcomes_check,
    recommendation_reject,
)
from optimizations.models import OptimizationLog
from tests.dbarchitect.pgss import pgss_reset_own_database

TABLE = "dec_orders"
ROWS = 200_000
LOOKUP = f"SELECT count(*) FROM {TABLE} WHERE customer_id = %s"


def _connect() -> psycopg.Connection:
    return psycopg.connect(target_connection("default").conninfo, autocommit=True)


def _index_valid(name: str) -> bool | None:
    with _connect() as conn:
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]
        ).fetchone()
    return None if row is None else row[0]


@pytest.fixture
def orders():
    """A table in the test database with a lookup no index serves yet."""
    with _connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, customer_id int NOT NULL)")
        conn.execute(f"INSERT INTO {TABLE} SELECT g, g % 5000 FROM generate_series(1, {ROWS}) AS g")
        conn.execute(f"ANALYZE {TABLE}")
    yield TABLE
    with _connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def _recommendation(ddl: str, **fields) -> OptimizationLog:
    target = target_sync()[0]
    return OptimizationLog.objects.create(
        target=target,
        query_text=LOOKUP,
        recommendation=ddl,
        ddl=ddl,
        fingerprint=ddl,
        **fields,
    )


@pytest.mark.django_db
def test_approve_then_reject_and_the_transitions_not_allowed(staff_user):
    log = _recommendation("CREATE INDEX x ON dec_orders (customer_id)")
    approved = recommendation_approve(recommendation=log, user=staff_user)
    assert approved.status == "approved" and approved.decided_by == staff_user
    with pytest.raises(DecisionError, match="Cannot approve a recommendation that is approved"):
        recommendation_approve(recommendation=log, user=staff_user)
    rejected = recommendation_reject(recommendation=log, user=staff_user, reason=" too big ")
    assert rejected.status == "rejected" and rejected.details["reject_reason"] == "too big"
    with pytest.raises(DecisionError, match="Cannot reject a recommendation that is rejected"):
        recommendation_reject(recommendation=log, user=staff_user)


@pytest.mark.django_db
def test_apply_refuses_staff_rejected_and_non_index_kinds(staff_user, superuser):
    log = _recommendation("CREATE INDEX x ON dec_orders (customer_id)")
    with pytest.raises(DecisionError, match="Only a superuser"):
        recommendation_apply(recommendation=log, applied_by=staff_user)
    rewrite = _recommendation("Use keyset pagination", kind="rewrite")
    with pytest.raises(DecisionError, match="rewrite recommendation is not an index"):
        recommendation_apply(recommendation=rewrite, applied_by=superuser)
    recommendation_reject(recommendation=log, user=superuser)
    with pytest.raises(DecisionError, match="Cannot apply a recommendation that is rejected"):
        recommendation_apply(recommendation=log, applied_by=superuser)
    bad = _recommendation("DROP TABLE dec_orders")
    with pytest.raises(DecisionError, match="one CREATE INDEX"):
        recommendation_apply(recommendation=bad, applied_by=superuser)


@pytest.mark.django_db(transaction=True)
def test_apply_builds_concurrently_and_a_later_audit_records_the_gain(orders, superuser, settings):
    settings.DBARCHITECT_VERIFY = "off"
    with _connect() as conn:
        pgss_reset_own_database(conn)
        for customer in range(20):
            conn.execute(LOOKUP, [customer])
    before = run_audit(target="default")
    assert before.status == "succeeded", before.error
    queryid = before.snapshots.get(query__contains=f"FROM {TABLE}").queryid
    log = _recommendation(
        f"CREATE INDEX dec_orders_customer ON public.{TABLE} (customer_id)", queryids=[queryid]
    )

    result = recommendation_apply(recommendation=log, applied_by=superuser)

    assert result.ok, result.message
    assert result.index_name == "dec_orders_customer"
    assert _index_valid("public.dec_orders_customer") is True
    with _connect() as conn:
        built = conn.execute(
            "SELECT count(*) FROM pg_stat_statements WHERE query ILIKE %s AND dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
            ["CREATE INDEX CONCURRENTLY dec_orders_customer%"],
        ).fetchone()[0]
        assert built == 1
        for customer in range(20, 40):
            conn.execute(LOOKUP, [customer])
    log.refresh_from_db()
    assert log.status == "applied" and log.applied_at is not None
    assert log.details["mean_ms_before_apply"] > 0
    assert str(queryid) in log.details["apply_counters"]

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
def test_a_failed_build_drops_the_invalid_index_it_left(orders, superuser):
    log = _recommendation(f"CREATE UNIQUE INDEX dec_orders_customer_uq ON {TABLE} (customer_id)")
    result = recommendation_apply(recommendation=log, applied_by=superuser)
    assert not result.ok
    assert "could not create unique index" in result.message
    assert "the invalid index dec_orders_customer_uq it left was dropped" in result.message
    assert _index_valid("dec_orders_customer_uq") is None
    log.refresh_from_db()
    assert log.status == "proposed" and log.details["apply_error"] == result.message


@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_is_reported_and_a_retry_cleans_up(orders, superuser, settings):
    settings.DBARCHITECT_LOCK_TIMEOUT_MS = 300
    log = _recommendation(f"CREATE INDEX dec_orders_customer_lt ON {TABLE} (customer_id)")
    with _connect() as writer:
        writer.autocommit = False
        writer.execute(f"INSERT INTO {TABLE} VALUES (0, 0)")  # an open write transaction
        result = recommendation_apply(recommendation=log, applied_by=superuser)
        writer.rollback()
    assert not result.ok
    assert "lock timeout" in result.message
    # The build got as far as the catalog: it left an INVALID index, and dropping it waits on
    # the same writer, so the message says to drop it by hand...
    assert _index_valid("dec_orders_customer_lt") is False
    assert "drop it by hand" in result.message
    # ...and once the writer is gone, the retry drops the leftover first, then builds.
    retry = recommendation_apply(recommendation=log, applied_by=superuser)
    assert retry.ok, retry.message
    assert retry.message.startswith("Dropped the INVALID index dec_orders_customer_lt")
    assert _index_valid("dec_orders_customer_lt") is True


@pytest.mark.django_db
def test_outcome_thresholds(settings):
    from optimizations.decisions import outcome_judge

    assert outcome_judge(before_ms=10.0, after_ms=8.0) == "gain"
    assert outcome_judge(before_ms=10.0, after_ms=9.0) == "no_gain"
    assert outcome_judge(before_ms=10.0, after_ms=11.0) == "regression"


@pytest.mark.django_db
def test_the_models_match_the_migrations():
    call_command("makemigrations", "optimizations", "--check", "--dry-run", verbosity=0)
    assert Target.objects.filter(name="default").exists()
