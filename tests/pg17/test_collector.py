"""The collector on PostgreSQL 17: pg_stat_statements 1.11's per-entry stats_since, and a
database whose extension is still at an older version (a cluster upgraded with pg_upgrade
keeps it until ALTER EXTENSION ... UPDATE)."""

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from dbarchitect.collector import Counters, Thresholds, collect_queries, pgss_read
from tests.dbarchitect.conftest import RECENT_LOGS_QUERY, recent_logs, run_queries
from tests.dbarchitect.pgss import pgss_reset_own_database

from .conftest import database_create, database_drop, database_name, pg17

pytestmark = pg17

EVERYTHING = Thresholds(min_mean_ms=0.0, min_calls=1, min_total_share=0.0, max_queries=1000)


def collect(conn, previous=None, previous_started_at=None):
    return collect_queries(
        conn,
        previous=previous or {},
        previous_stats_reset=None,
        previous_started_at=previous_started_at,
        thresholds=EVERYTHING,
    )


def test_stats_since_is_read_and_an_entry_reset_alone_counts_from_zero(pg17_workload, pg17_conn):
    pgss_reset_own_database(pg17_conn)
    recent_logs(pg17_conn, 5)
    with psycopg.connect(pg17_workload, autocommit=True) as conn:
        read = {row.queryid: row for row in pgss_read(conn)}
        (mine,) = [s for s in collect(conn).stats if "pl_behavior_log" in s.query]
        in_view = conn.execute(
            "SELECT stats_since FROM pg_stat_statements WHERE queryid = %s AND toplevel",
            [mine.queryid],
        ).fetchone()[0]
        assert read[mine.queryid].stats_since == in_view is not None
        assert (mine.calls, mine.cumulative_calls) == (5, 5)
        baseline = {
            (mine.queryid, mine.userid): Counters(
                mine.queryid, mine.userid, mine.query, mine.cumulative_calls,
                mine.cumulative_total_time_ms, mine.cumulative_rows,
                mine.cumulative_shared_blks_hit, mine.cumulative_shared_blks_read,
            )
        }  # fmt: skip
        audited_at = datetime.now(UTC)
        # Only this entry is reset, then runs 6 times: its counters are higher than the
        # stored ones (6 > 5), so only its newer stats_since tells the 6 calls are all new.
        conn.execute(
            "SELECT pg_stat_statements_reset(0, "
            "(SELECT oid FROM pg_database WHERE datname = current_database()), %s)",
            [mine.queryid],
        )
        run_queries(pg17_conn, RECENT_LOGS_QUERY, [[n] for n in range(1, 7)])
        after = collect(conn, previous=baseline, previous_started_at=audited_at)
    (again,) = [s for s in after.stats if s.queryid == mine.queryid]
    assert (again.calls, again.cumulative_calls) == (6, 6)


@pytest.fixture
def pgss_1_10() -> Iterator[str]:
    """A database on PostgreSQL 17 whose pg_stat_statements is at 1.10 (no stats_since)."""
    name = database_name("pg17_pgss110")
    conninfo = database_create(name, pgss_version="1.10")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind int NOT NULL)")
        conn.execute("INSERT INTO items SELECT g, g % 10 FROM generate_series(1, 1000) AS g")
    yield conninfo
    database_drop(name)


def test_a_pg_stat_statements_older_than_the_server_is_read_by_its_own_columns(pgss_1_10):
    with psycopg.connect(pgss_1_10, autocommit=True) as conn:
        assert conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone() == ("1.10",)
        pgss_reset_own_database(conn)
        run_queries(conn, "SELECT count(*) FROM items WHERE kind = %s", [[1], [2], [3]])
        collection = collect(conn)
        rows = pgss_read(conn)
    (items,) = [s for s in collection.stats if "items" in s.query]
    assert items.calls == 3 and items.tables == ("items",)
    assert collection.stats_reset is not None  # pg_stat_statements_info: 1.9 and later
    assert {row.stats_since for row in rows} == {None}
