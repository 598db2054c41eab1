"""Verification: real builds in rolled-back transactions prove each recommendation by
EXPLAIN ANALYZE, leave nothing behind, and say why when they cannot measure."""

import psycopg
import pytest

from dbarchitect.advisor import advise
from dbarchitect.verifier import verify

from .advisor_fixtures import (  # noqa: F401 - the fixtures are used by name
    EXISTING_INDEXES,
    advisor_db_fixture,
    conn_fixture,
    leftovers,
    stat,
)

QUERIES = {
    "recent_of_account": "SELECT id, status, created_at FROM adv_orders "
    "WHERE account_id = $1 ORDER BY created_at DESC LIMIT $2",
    "equality_range": "SELECT count(*) FROM adv_orders WHERE region = $1 "
    "AND score BETWEEN $2 AND $3",
    "expression": "SELECT id FROM adv_orders WHERE lower(email) = $1",
    "like_prefix": "SELECT id FROM adv_orders WHERE email LIKE $1",
    "rare_null": "SELECT id FROM adv_orders WHERE shipped_at IS NULL ORDER BY created_at LIMIT $1",
    "rare_value": "SELECT id FROM adv_pending_orders WHERE account_id = $1 "
    "ORDER BY created_at DESC",
    "jsonb": "SELECT id FROM adv_orders WHERE meta @> $1",
    "rare_status": "SELECT id, created_at FROM adv_orders WHERE status = $1 "
    "ORDER BY created_at DESC LIMIT $2",
    "decision_support": "SELECT o.id, c.segment, "
    "(SELECT sum(l.quantity) FROM adv_lineitems l WHERE l.order_id = o.id) AS quantity "
    "FROM adv_orders o JOIN adv_customers c ON c.id = o.customer_id "
    "WHERE c.id = $1 AND EXISTS (SELECT 1 FROM adv_lineitems l2 "
    "WHERE l2.order_id = o.id AND l2.price > $2)",
}


def audit(conn, queries):
    stats = {number: stat(number, text) for number, text in enumerate(queries, start=1)}
    advice = advise(conn, list(stats.values()), min_table_rows=10_000, min_cost_reduction=0.5)
    return advice, stats


@pytest.fixture(scope="module")
def verified(advisor_db):
    """One audit of every query shape, advised together and verified, as the agent does."""
    with advisor_db.connect() as conn:
        advice, stats = audit(conn, QUERIES.values())
        results = verify(conn, advice.recommendations, stats, lock_timeout_ms=2_000)
        remaining = leftovers(conn)
    names = {number: name for number, name in enumerate(QUERIES, start=1)}
    by_query = {}
    for rec, result in zip(advice.recommendations, results, strict=True):
        for qid in rec.queryids:
            by_query[names[qid]] = (rec, result)
    return by_query, results, remaining


def test_the_recent_rows_composite_is_measured_at_least_ten_times_faster(verified):
    by_query, _results, _remaining = verified
    rec, result = by_query["recent_of_account"]
    assert rec.columns == ['"account_id"', '"created_at" DESC']
    assert result.error is None
    assert result.build_ms > 0
    assert result.speedup >= 10, (result.ms_before, result.ms_after)
    assert result.plan_before["Plan"] and result.plan_after["Plan"]
    assert '"Execution Time"' not in str(result.plan_after["Plan"])


@pytest.mark.parametrize(
    "name",
    [
        "equality_range",
        "expression",
        "like_prefix",
        "rare_null",
        "rare_value",
        "jsonb",
        "rare_status",
    ],
)
def test_each_index_kind_is_proven_faster_by_measurement(verified, name):
    by_query, _results, _remaining = verified
    rec, result = by_query[name]
    assert result.error is None, result.error
    assert result.ms_after < result.ms_before / 2, (rec.ddl, result.ms_before, result.ms_after)


def test_the_decision_support_join_key_is_proven_faster(verified):
    by_query, _results, _remaining = verified
    rec, result = by_query["decision_support"]
    assert rec.table == "adv_lineitems" and rec.columns[0] == '"order_id"'
    assert result.error is None
    assert result.ms_after < result.ms_before / 2


def test_the_gin_index_needed_a_real_build_and_got_one(verified):
    by_query, _results, _remaining = verified
    rec, result = by_query["jsonb"]
    assert rec.needs_real_build and rec.method == "gin"
    assert result.build_ms > 0
    assert "Bitmap" in str(result.plan_after["Plan"])


def test_verification_leaves_no_index_behind(verified):
    _by_query, results, (hypothetical, real) = verified
    assert results
    assert hypothetical == []
    assert real == EXISTING_INDEXES


def test_a_locked_table_gives_a_lock_timeout_not_a_hang(conn, advisor_db):
    advice, stats = audit(conn, [QUERIES["recent_of_account"]])
    with advisor_db.connect() as other, other.transaction():
        other.execute("LOCK TABLE adv_orders IN ROW EXCLUSIVE MODE")
        [result] = verify(conn, advice.recommendations, stats, lock_timeout_ms=100)
    assert result.ms_after is None and result.build_ms is None
    assert result.error.startswith("lock timeout")
    assert result.ms_before is not None  # the before-measurement needs no lock
    assert leftovers(conn)[1] == EXISTING_INDEXES
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_recommendation_serving_only_writes_is_not_executed(conn):
    advice, stats = audit(conn, ["UPDATE adv_orders SET status = $1 WHERE email = $2"])
    [rec] = advice.recommendations
    before = conn.execute("SELECT count(*) FROM adv_orders WHERE status = 'done'").fetchone()
    [result] = verify(conn, advice.recommendations, stats, lock_timeout_ms=1_000)
    assert result.error.startswith("not measured") and "writes rows" in result.error
    after = conn.execute("SELECT count(*) FROM adv_orders WHERE status = 'done'").fetchone()
    assert before == after
    assert rec.fingerprint == result.fingerprint


def test_verify_builds_nothing_but_a_create_index(conn):
    advice, stats = audit(conn, [QUERIES["expression"]])
    [rec] = advice.recommendations
    rec.ddl = "DROP TABLE adv_tiny"
    [result] = verify(conn, [rec], stats, lock_timeout_ms=1_000)
    assert result.error.startswith("the DDL cannot be built: not a CREATE INDEX")
    assert result.build_ms is None and result.ms_after is None
    assert conn.execute("SELECT count(*) FROM adv_tiny").fetchone()[0] == 100
