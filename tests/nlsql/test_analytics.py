"""Valid analytical SELECTs over the demo schema pass the guard and return the right rows.

Expected values are computed in Python from DEMO_EVENTS, not by the database.
"""

from collections import Counter

import pytest
import yaml

from nlsql.ask import sql_run
from nlsql.guard import sql_check
from nlsql.runner import query_run
from tests.nlsql.conftest import (
    DEMO_EVENTS,
    NOW,
    PAIRS_FILE,
    demo_email,
    expected_activity,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _run(sql: str, **kwargs):
    return query_run(checked=sql_check(sql), **kwargs)


def test_aggregate_counts_events_per_type(demo_data):
    result = _run(
        "SELECT event_type, count(*) AS events FROM demo_behavior_log "
        "GROUP BY event_type ORDER BY event_type"
    )
    counts = Counter(kind for events in DEMO_EVENTS.values() for kind, _ in events)
    assert result.columns == ["event_type", "events"]
    assert result.rows == [[kind, counts[kind]] for kind in sorted(counts)]


def test_join_ranks_the_most_active_users(demo_data):
    result = _run(
        "SELECT u.email, count(*) AS events FROM demo_user u "
        "JOIN demo_behavior_log b ON b.user_id = u.id "
        "GROUP BY u.email ORDER BY events DESC, u.email LIMIT 5"
    )
    assert [tuple(row) for row in result.rows] == expected_activity()[:5]


def test_window_function_numbers_users_by_activity(demo_data):
    result = _run(
        "SELECT email, events, row_number() OVER (ORDER BY events DESC, email) AS position "
        "FROM (SELECT u.email, count(b.id) AS events FROM demo_user u "
        "      LEFT JOIN demo_behavior_log b ON b.user_id = u.id GROUP BY u.email) AS per_user "
        "ORDER BY position"
    )
    every_user = sorted(
        ((demo_email(n), len(events)) for n, events in DEMO_EVENTS.items()),
        key=lambda item: (-item[1], item[0]),
    )
    assert result.rows == [
        [email, events, position] for position, (email, events) in enumerate(every_user, 1)
    ]


def test_window_running_total_per_user(demo_data):
    number = max(DEMO_EVENTS, key=lambda n: len(DEMO_EVENTS[n]))
    result = _run(
        'SELECT b.event_type, count(*) OVER (PARTITION BY b.user_id ORDER BY b."timestamp") '
        "FROM demo_behavior_log b JOIN demo_user u ON u.id = b.user_id "
        f"WHERE u.email = '{demo_email(number)}' ORDER BY b.\"timestamp\""
    )
    ordered = sorted(DEMO_EVENTS[number], key=lambda event: -event[1])  # oldest first
    assert result.rows == [[kind, position] for position, (kind, _) in enumerate(ordered, 1)]


def test_cte_averages_events_of_active_users(demo_data):
    result = _run(
        "WITH per_user AS (SELECT user_id, count(*) AS events FROM demo_behavior_log "
        "GROUP BY user_id) SELECT count(*), sum(events), min(events), max(events) FROM per_user"
    )
    active = [len(events) for events in DEMO_EVENTS.values() if events]
    assert result.rows == [[len(active), str(sum(active)), min(active), max(active)]]


def test_set_operations_and_anti_join(demo_data):
    union = _run(
        "SELECT u.email FROM demo_user u JOIN demo_behavior_log b ON b.user_id = u.id "
        "WHERE b.event_type = 'payment' "
        "INTERSECT "
        "SELECT u.email FROM demo_user u JOIN demo_behavior_log b ON b.user_id = u.id "
        "WHERE b.event_type = 'login' ORDER BY 1"
    )
    kinds = {n: {kind for kind, _ in events} for n, events in DEMO_EVENTS.items()}
    expected = sorted(demo_email(n) for n, k in kinds.items() if {"payment", "login"} <= k)
    assert [row[0] for row in union.rows] == expected
    idle = _run(
        "SELECT email FROM demo_user u WHERE NOT EXISTS "
        "(SELECT 1 FROM demo_behavior_log b WHERE b.user_id = u.id) ORDER BY email"
    )
    assert [row[0] for row in idle.rows] == sorted(
        demo_email(n) for n, events in DEMO_EVENTS.items() if not events
    )


def test_jsonb_and_time_functions(demo_data):
    result = _run(
        "SELECT name->>'en', name->>'zh' FROM demo_user WHERE email = 'user03@example.com'"
    )
    assert result.rows == [["Person 3", "人 3"]]
    day = _run(
        "SELECT count(*) FROM demo_behavior_log "
        f"WHERE \"timestamp\" > TIMESTAMPTZ '{NOW.isoformat()}' - interval '24 hours'"
    )
    within_a_day = sum(1 for events in DEMO_EVENTS.values() for _, hours in events if hours < 24)
    assert day.rows == [[within_a_day]]


def test_row_cap_truncates_and_says_so(demo_data):
    total = sum(len(events) for events in DEMO_EVENTS.values())
    capped = _run("SELECT id FROM demo_behavior_log", max_rows=7)
    assert capped.row_count == 7 and capped.truncated
    everything = _run("SELECT id FROM demo_behavior_log", max_rows=total)
    assert everything.row_count == total and not everything.truncated


def test_every_shipped_demo_pair_passes_the_guard_and_runs(demo_data):
    entries = [e for e in yaml.safe_load(PAIRS_FILE.read_text()) if "question" in e]
    assert any(e["question"] == "Show me top 10 active users" for e in entries)
    for entry in entries:
        result = sql_run(sql=entry["sql"])
        assert result.status == "ok", (entry["question"], result.reason, result.error)


def test_shipped_top_10_active_users_pair_returns_the_right_users(demo_data):
    entries = yaml.safe_load(PAIRS_FILE.read_text())
    sql = next(e["sql"] for e in entries if e.get("question") == "Show me top 10 active users")
    result = sql_run(sql=sql)
    emails = [row[result.columns.index("email")] for row in result.rows]
    events = [row[result.columns.index("events")] for row in result.rows]
    assert list(zip(emails, events, strict=True)) == expected_activity()[:10]
