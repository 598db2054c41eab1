import uuid
from datetime import timedelta

import pytest
from django.db import connection

from demo.models import BehaviorLog
from demo.selectors import (
    behavior_log_event_types,
    behavior_log_list_recent,
    user_active_stats,
    user_get,
)
from demo.services import active_user_stats, get_user_by_id, recent_behavior_logs

from .conftest import NOW


def test_user_get_finds_the_user_or_none(make_user):
    user = make_user()
    assert user_get(user_id=user.id) == user
    assert get_user_by_id(str(user.id)) == user
    assert user_get(user_id=uuid.uuid4()) is None
    with pytest.raises(ValueError, match="user_id must be a UUID"):
        user_get(user_id="not-a-uuid")


def test_recent_logs_are_the_users_newest_first_and_limited(make_user, make_log):
    user, other = make_user(), make_user()
    for hours in (5, 1, 3, 2, 4):
        make_log(user, event_type=f"e{hours}", ago=timedelta(hours=hours), metadata={"h": hours})
    make_log(other, ago=timedelta(minutes=1))  # newer, but someone else's

    logs = behavior_log_list_recent(user_id=user.id, limit=3)

    assert [log.event_type for log in logs] == ["e1", "e2", "e3"]
    assert [log.metadata for log in logs] == [{"h": 1}, {"h": 2}, {"h": 3}]
    assert {log.user_id for log in logs} == {user.id}
    assert logs[0].timestamp == NOW - timedelta(hours=1)
    assert len(recent_behavior_logs(user.id)) == 5  # default limit 100
    assert behavior_log_list_recent(user_id=uuid.uuid4()) == []


@pytest.mark.parametrize("limit", [0, -1, 1001, "5", 2.0, None])
def test_recent_logs_refuse_a_bad_limit(make_user, limit):
    with pytest.raises(ValueError, match="limit must be an integer from 1 to 1000"):
        behavior_log_list_recent(user_id=make_user().id, limit=limit)


def test_active_user_stats_on_known_data(make_user, make_log):
    alice, bob, carol, dave = (make_user() for _ in range(4))
    # In the 7 days before NOW: alice 3 events, bob 1, carol 2.
    make_log(alice, event_type="login", ago=timedelta(hours=1))
    make_log(alice, event_type="page_view", ago=timedelta(days=2))
    make_log(alice, event_type="page_view", ago=timedelta(days=6, hours=23))
    make_log(bob, event_type="payment", ago=timedelta(days=3))
    make_log(carol, event_type="page_view", ago=timedelta(days=1))
    make_log(carol, event_type="login", ago=timedelta(days=4))
    # Outside the window: dave 8 days ago, carol in the future of `until`.
    make_log(dave, event_type="page_view", ago=timedelta(days=8))
    make_log(carol, event_type="payment", ago=-timedelta(hours=1))

    stats = user_active_stats(days=7, until=NOW)

    assert stats.active_users == 3
    assert stats.events == 6
    assert stats.events_per_user_avg == pytest.approx(2.0)
    assert stats.events_per_user_max == 3
    # Ties break by name: login and page_view... page_view has 3, login 2, payment 1.
    assert stats.top_event_types == [("page_view", 3), ("login", 2), ("payment", 1)]
    assert stats.since == NOW - timedelta(days=7)

    wider = user_active_stats(days=30, until=NOW)
    assert (wider.active_users, wider.events) == (4, 7)


def test_active_user_stats_with_no_activity_is_zero(db):
    stats = active_user_stats(days=7)
    assert (stats.active_users, stats.events, stats.events_per_user_max) == (0, 0, 0)
    assert stats.top_event_types == []


@pytest.mark.parametrize("days", [0, -3, 3651, "7"])
def test_active_user_stats_refuse_bad_days(db, days):
    with pytest.raises(ValueError, match="days must be an integer"):
        user_active_stats(days=days)


def test_event_types_come_from_the_data(make_user, make_log):
    user = make_user()
    for event_type in ("login", "payment", "login"):
        make_log(user, event_type=event_type)
    assert behavior_log_event_types() == ["login", "payment"]


def test_event_types_come_from_planner_stats_once_analyzed(make_user, make_log):
    user = make_user()
    for event_type in ["login"] * 30 + ["payment"] * 20:
        make_log(user, event_type=event_type)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE demo_behavior_log")
    BehaviorLog.objects.filter(event_type="payment").delete()

    # No scan of the table: the analyzed most-common values, even if slightly stale.
    assert behavior_log_event_types() == ["login", "payment"]
