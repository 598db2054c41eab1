"""The collector: deltas between audits, thresholds, and what is not the workload."""

from datetime import UTC, datetime, timedelta

import pytest

from dbarchitect.collector import (
    MARKER,
    Counters,
    QueryStat,
    Thresholds,
    collect_queries,
    counters_delta,
    select_slow,
    workload_exclusion,
)

from .conftest import RECENT_LOGS_QUERY, pgss_reset_own_database, recent_logs, run_queries

EVERYTHING = Thresholds(min_mean_ms=0.0, min_calls=1, min_total_share=0.0, max_queries=1000)


def counters(calls: int, total: float, rows: int = 0, **extra) -> Counters:
    return Counters(
        queryid=7, userid=10, query="SELECT 1 FROM t", calls=calls, total_time_ms=total,
        rows=rows, shared_blks_hit=extra.get("hit", 0), shared_blks_read=extra.get("read", 0),
    )  # fmt: skip


def stat(queryid: int, calls: int, total: float) -> QueryStat:
    return QueryStat(
        queryid=queryid, userid=1, query=f"SELECT {queryid} FROM t", calls=calls,
        total_time_ms=total, mean_time_ms=total / calls if calls else 0.0, rows=calls,
        shared_blks_hit=0, shared_blks_read=0,
    )  # fmt: skip


def test_delta_subtracts_the_previous_counters():
    delta = counters_delta(counters(30, 90.0, rows=300, hit=50), counters(10, 40.0, rows=100))
    assert (delta.calls, delta.total_time_ms, delta.rows) == (20, 50.0, 200)
    assert delta.mean_time_ms == pytest.approx(2.5)
    assert delta.cumulative_calls == 30 and delta.cumulative_total_time_ms == 90.0


def test_delta_of_a_reset_entry_counts_from_zero_never_negative():
    # The entry was reset since the previous audit: its counters went down.
    delta = counters_delta(counters(4, 8.0, rows=4), counters(50, 500.0, rows=50))
    assert (delta.calls, delta.total_time_ms, delta.rows) == (4, 8.0, 4)
    assert delta.mean_time_ms == pytest.approx(2.0)


def test_delta_of_a_new_entry_is_its_counters():
    delta = counters_delta(counters(3, 9.0), None)
    assert (delta.calls, delta.total_time_ms, delta.mean_time_ms) == (3, 9.0, 3.0)


def test_delta_of_an_idle_entry_is_zero_calls_and_zero_mean():
    delta = counters_delta(counters(5, 10.0), counters(5, 10.0))
    assert (delta.calls, delta.total_time_ms, delta.mean_time_ms) == (0, 0.0, 0.0)


def test_select_slow_applies_mean_calls_and_share_thresholds():
    heavy_rare = stat(1, calls=2, total=900.0)  # few calls but most of the time
    frequent = stat(2, calls=50, total=100.0)  # 2 ms mean, frequent
    fast = stat(3, calls=1000, total=100.0)  # 0.1 ms mean: never slow
    rare_light = stat(4, calls=2, total=4.0)  # neither frequent nor a big share
    idle = stat(5, calls=0, total=0.0)
    thresholds = Thresholds(min_mean_ms=1.0, min_calls=5, min_total_share=0.05, max_queries=10)
    slow = select_slow([frequent, fast, rare_light, heavy_rare, idle], thresholds=thresholds)
    assert [s.queryid for s in slow] == [1, 2]  # heaviest first


def test_select_slow_keeps_at_most_max_queries_heaviest_first():
    stats = [stat(i, calls=10, total=10.0 * i) for i in range(1, 8)]
    thresholds = Thresholds(min_mean_ms=0.0, min_calls=1, min_total_share=0.0, max_queries=3)
    assert [s.queryid for s in select_slow(stats, thresholds=thresholds)] == [7, 6, 5]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (f"{MARKER} SELECT * FROM orders WHERE id = $1", "architect"),
        ("SELECT * FROM pg_class WHERE relname = $1", "catalog"),
        ("SELECT * FROM information_schema.tables", "catalog"),
        ("SELECT * FROM pg_stat_statements", "catalog"),
        ("SET statement_timeout = $1", "utility"),
        ("BEGIN", "utility"),
        ("EXPLAIN SELECT * FROM orders", "utility"),
        ("CREATE INDEX ON orders (id)", "utility"),
        ("SELECT now()", "no_table"),
        ('SELECT * FROM "dbarchitect_auditrun" WHERE id = $1', "architect"),
        # A deferred foreign-key check of the architect's own insert, run at COMMIT.
        (
            'SELECT $2 FROM ONLY "public"."dbarchitect_auditrun" x '
            'WHERE "id" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x',
            "architect",
        ),
        ("SELECT * FROM orders WHERE customer_id = $1", None),
        ("", "no_text"),
    ],
)
def test_workload_exclusion(query, reason):
    assert workload_exclusion(query, own_tables=frozenset({"dbarchitect_auditrun"}))[0] == reason


def test_workload_exclusion_names_tables_but_not_ctes():
    reason, tables = workload_exclusion(
        "WITH recent AS (SELECT * FROM logs WHERE ts > $1) "
        "SELECT * FROM recent JOIN shop.users u ON u.id = recent.user_id"
    )
    assert reason is None
    assert set(tables) == {"logs", "shop.users"}


@pytest.mark.django_db(transaction=True)
def test_collect_counts_calls_since_the_previous_reading_and_after_a_reset(workload_conn):
    from pgaccess.session import session_connect

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 7)
    with session_connect("default", purpose="audit") as conn:
        first = collect_queries(
            conn, previous={}, previous_stats_reset=None, previous_started_at=None,
            thresholds=EVERYTHING,
        )  # fmt: skip
        mine = [s for s in first.stats if "pl_behavior_log" in s.query]
        assert [(s.calls, s.cumulative_calls) for s in mine] == [(7, 7)]
        assert mine[0].tables == ("pl_behavior_log",)
        # The collector's own statements are never part of the workload.
        assert not [s for s in first.stats if "pg_stat_statements" in s.query]
        assert first.left_out.get("architect", 0) + first.left_out.get("catalog", 0) >= 1

        baseline = {
            (s.queryid, s.userid): Counters(
                s.queryid, s.userid, s.query, s.cumulative_calls, s.cumulative_total_time_ms,
                s.cumulative_rows, s.cumulative_shared_blks_hit, s.cumulative_shared_blks_read,
            )
            for s in first.stats
        }  # fmt: skip
        recent_logs(workload_conn, 3)
        second = collect_queries(
            conn, previous=baseline, previous_stats_reset=first.stats_reset,
            previous_started_at=datetime.now(UTC) - timedelta(minutes=1), thresholds=EVERYTHING,
        )  # fmt: skip
        again = [s for s in second.stats if s.queryid == mine[0].queryid]
        assert [(s.calls, s.cumulative_calls) for s in again] == [(3, 10)]

        # A reset of this database's entries between readings: counters went down.
        pgss_reset_own_database(workload_conn)
        run_queries(workload_conn, RECENT_LOGS_QUERY, [[1], [2]])
        third = collect_queries(
            conn, previous=baseline, previous_stats_reset=first.stats_reset,
            previous_started_at=None, thresholds=EVERYTHING,
        )  # fmt: skip
        after = [s for s in third.stats if s.queryid == mine[0].queryid]
        assert [(s.calls, s.cumulative_calls) for s in after] == [(2, 2)]
        assert all(s.calls >= 0 and s.total_time_ms >= 0 for s in third.stats)
        assert all(s.rows >= 0 and s.shared_blks_hit >= 0 for s in third.stats)


@pytest.mark.django_db(transaction=True)
def test_a_full_reset_restarts_every_delta(workload_conn):
    """A newer stats_reset than the previous audit's means its counters no longer apply."""
    from pgaccess.session import session_connect

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 4)
    with session_connect("default", purpose="audit") as conn:
        first = collect_queries(
            conn, previous={}, previous_stats_reset=None, previous_started_at=None,
            thresholds=EVERYTHING,
        )  # fmt: skip
        mine = next(s for s in first.stats if "pl_behavior_log" in s.query)
        # Counters from before a reset the view reports as newer than the stored one.
        stale = {
            (mine.queryid, mine.userid): Counters(
                mine.queryid, mine.userid, mine.query, 2, 1.0, 2, 0, 0
            )
        }
        older = datetime(2000, 1, 1, tzinfo=UTC)
        second = collect_queries(
            conn, previous=stale, previous_stats_reset=older, previous_started_at=None,
            thresholds=EVERYTHING,
        )  # fmt: skip
        again = next(s for s in second.stats if s.queryid == mine.queryid)
        assert second.stats_reset is not None  # pg_stat_statements_info (PostgreSQL 14+)
        assert again.calls == 4
