"""Never slower, measured: the whole recommended set is built and every collected query
whose plan it changes is timed, not only the queries an index was chosen for.

The TPC-H Q7 pattern on a small schema: an index on created_at, chosen for a range
count, makes the planner walk it for `WHERE kind = $1 ORDER BY created_at LIMIT $2`,
expecting to meet the kind early; the kind's rows are all at the newest end, so the walk
reads nearly the whole table at random (about ten times slower than the sort it replaced).
"""

from collections.abc import Iterator
from dataclasses import asdict

import pytest

from dbarchitect.advisor import advise
from dbarchitect.report import report_text
from dbarchitect.verifier import Slowdown, SlowdownBar, slowdown_bar, verify
from pgaccess.targets import target_connection

from .advisor_fixtures import stat
from .schema_db import SchemaDatabase, schema_database

ROWS = 100_000
SCHEMA = [
    "CREATE TABLE ns_events (id int PRIMARY KEY, kind int NOT NULL, "
    "created_at timestamptz NOT NULL, payload text NOT NULL)",
    # kind 7 is the most common kind (what a representative value picks) and all of its
    # rows are newer than every other row.
    f"""INSERT INTO ns_events
        SELECT g, CASE WHEN g % 100 = 0 THEN 7 ELSE g % 50 END,
               timestamptz '2026-01-01' + random() * interval '10 days', repeat('x', 40)
        FROM generate_series(1, {ROWS}) AS g""",
    "UPDATE ns_events SET created_at = timestamptz '2027-01-01' + id * interval '1 second' "
    "WHERE kind = 7",
    "VACUUM ANALYZE ns_events",
]
TEARDOWN = ["DROP TABLE IF EXISTS ns_events"]

RANGE_COUNT = "SELECT count(*) FROM ns_events WHERE created_at BETWEEN $1 AND $2"
FIRST_OF_KIND = "SELECT id, payload FROM ns_events WHERE kind = $1 ORDER BY created_at LIMIT $2"


@pytest.fixture(scope="module")
def events_db(django_db_setup, django_db_blocker) -> Iterator[SchemaDatabase]:
    with django_db_blocker.unblock():
        conninfo = target_connection("default").conninfo
    yield from schema_database(conninfo, SCHEMA, TEARDOWN)


def audited(events_db, *, range_calls: int, first_calls: int):
    """Advise on the range count alone (the slow query); verify against both."""
    chosen_for = stat(1, RANGE_COUNT, calls=range_calls)
    collected = {1: chosen_for, 2: stat(2, FIRST_OF_KIND, calls=first_calls)}
    with events_db.connect() as conn:
        advice = advise(conn, [chosen_for], min_table_rows=10_000, min_cost_reduction=0.5)
        results = verify(
            conn,
            advice.recommendations,
            {1: chosen_for},
            lock_timeout_ms=2_000,
            workload=collected,
            bar=SlowdownBar(ratio=1.2, ms=5.0),
        )
        # Every build was rolled back: the primary key is the table's only index.
        remaining = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'ns_events'"
        ).fetchall()
        assert conn.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone() == (0,)
    [rec] = [r for r in advice.recommendations if r.columns == ['"created_at"']]
    result = results[advice.recommendations.index(rec)]
    return result, remaining


def test_an_index_that_slows_a_query_it_was_not_chosen_for_is_found_and_dropped(events_db):
    # The slowed query runs 1,000 times for each range count: it loses more than the
    # index saves.
    result, remaining = audited(events_db, range_calls=1, first_calls=1_000)
    assert result.error is None and result.per_query[1][1] < result.per_query[1][0]
    [slowdown] = result.slowdowns
    assert slowdown.queryid == 2
    assert slowdown.ms_after > slowdown.ms_before * 1.2 + 5, slowdown
    # Without the index the query takes back (most of) its time: the index is the cause.
    assert slowdown.restored
    assert (
        slowdown.ms_without_index - slowdown.ms_before
        < (slowdown.ms_after - slowdown.ms_before) / 2
    )
    assert slowdown.loss_ms > slowdown.saving_ms
    assert not slowdown.kept and result.dropped
    assert remaining == [("ns_events_pkey",)]


def test_an_index_that_saves_more_than_it_costs_is_kept_with_the_slowdown_reported(events_db):
    result, _remaining = audited(events_db, range_calls=1_000_000, first_calls=1)
    [slowdown] = result.slowdowns
    assert slowdown.queryid == 2 and slowdown.restored
    assert slowdown.saving_ms > slowdown.loss_ms > 0
    assert slowdown.kept and not result.dropped


def test_the_bar_needs_both_the_ratio_and_the_milliseconds(settings):
    bar = SlowdownBar(ratio=1.2, ms=5.0)
    assert bar.slower(100.0, 130.0)
    assert not bar.slower(100.0, 110.0)  # 10 ms more, but only 10 %
    assert not bar.slower(1.0, 4.0)  # four times, but 3 ms
    settings.DBARCHITECT_SLOWDOWN_RATIO, settings.DBARCHITECT_SLOWDOWN_MS = 2.0, 1.0
    assert slowdown_bar() == SlowdownBar(2.0, 1.0)


def test_the_text_report_gives_each_slowdown_in_numbers():
    slow = Slowdown(
        queryid=2,
        ms_before=12.0,
        ms_after=100.0,
        ms_without_index=9.0,
        restored=True,
        saving_ms=12.4,
        loss_ms=88_000.0,
        kept=False,
    )
    text = report_text(
        {
            "audit_id": "a1",
            "target": "default",
            "status": "succeeded",
            "dropped_for_slowdown": [{"ddl": "CREATE INDEX x", "slowdowns": [asdict(slow)]}],
        }
    )
    assert "Taken out of the set, measured slowing another query: 1" in text
    assert (
        "slows query 2: 12.0 ms -> 100.0 ms (9.0 ms without it); saves 12 ms, "
        "costs 88,000 ms (x calls): dropped"
    ) in text
