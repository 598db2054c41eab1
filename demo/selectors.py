"""Reads of the demo data service: each one statement, index-backed where it is hot."""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.db import connection
from django.utils import timezone
from psycopg.rows import args_row

from .models import User

RECENT_LOGS_MAX_LIMIT = 1000
# The longest window active_user_stats looks back: past this it is a report, not a stat.
ACTIVE_STATS_MAX_DAYS = 3650
ACTIVE_STATS_TOP_EVENT_TYPES = 5

# The hot read of the demo: served by (user_id, "timestamp" DESC) once the audit's index exists.
RECENT_LOGS_SQL = (
    'SELECT id, user_id, event_type, metadata, "timestamp" FROM demo_behavior_log '
    'WHERE user_id = %s ORDER BY "timestamp" DESC LIMIT %s'
)

ACTIVE_STATS_SQL = """
WITH recent AS (
    SELECT user_id, event_type
    FROM demo_behavior_log
    WHERE "timestamp" > %(since)s AND "timestamp" <= %(until)s
), per_user AS (
    SELECT user_id, count(*) AS events FROM recent GROUP BY user_id
), per_type AS (
    SELECT event_type, count(*) AS events
    FROM recent
    GROUP BY event_type
    ORDER BY events DESC, event_type
    LIMIT %(top)s
)
SELECT
    (SELECT count(*) FROM per_user) AS active_users,
    (SELECT coalesce(sum(events), 0) FROM per_user) AS events,
    (SELECT coalesce(avg(events), 0) FROM per_user) AS events_per_user_avg,
    (SELECT coalesce(max(events), 0) FROM per_user) AS events_per_user_max,
    (SELECT coalesce(json_agg(json_build_array(event_type, events)
                              ORDER BY events DESC, event_type), '[]')
     FROM per_type) AS top_event_types
"""


@dataclass(frozen=True, slots=True)
class BehaviorLogRow:
    id: uuid.UUID
    user_id: uuid.UUID
    event_type: str
    metadata: dict
    timestamp: datetime


@dataclass(frozen=True)
class ActiveUserStats:
    days: int
    since: datetime
    until: datetime
    active_users: int
    events: int
    events_per_user_avg: float
    events_per_user_max: int
    top_event_types: list[tuple[str, int]]


def user_get(*, user_id: uuid.UUID | str) -> User | None:
    """The user with this id, or None (a malformed id is a caller bug: ValueError)."""
    return User.objects.filter(id=_as_uuid(user_id)).first()


def behavior_log_list_recent(*, user_id: uuid.UUID | str, limit: int = 100) -> list[BehaviorLogRow]:
    """A user's newest logs, newest first.

    Runs on the psycopg connection with server-side parameters and returns plain rows:
    this is the hot path, and ORM model building would cost more than the indexed query.
    """
    if type(limit) is not int or not 1 <= limit <= RECENT_LOGS_MAX_LIMIT:
        raise ValueError(
            f"limit must be an integer from 1 to {RECENT_LOGS_MAX_LIMIT}, got {limit!r}"
        )
    user_id = _as_uuid(user_id)
    connection.ensure_connection()
    # Binary results: uuids and timestamps arrive as bytes to unpack, not text to parse,
    # and jsonb comes back decoded (Django's text-only jsonb loader does not apply).
    with psycopg.Cursor(connection.connection, row_factory=args_row(BehaviorLogRow)) as cursor:
        cursor.execute(RECENT_LOGS_SQL, (user_id, limit), binary=True)
        return cursor.fetchall()


def user_active_stats(*, days: int = 7, until: datetime | None = None) -> ActiveUserStats:
    """Who was active in the `days` before `until` (default: now), in one SQL statement."""
    if type(days) is not int or not 1 <= days <= ACTIVE_STATS_MAX_DAYS:
        raise ValueError(f"days must be an integer from 1 to {ACTIVE_STATS_MAX_DAYS}, got {days!r}")
    until = until or timezone.now()
    if until.utcoffset() is None:
        raise ValueError("until must be a timezone-aware datetime")
    since = until - timedelta(days=days)
    with connection.cursor() as cursor:
        cursor.execute(
            ACTIVE_STATS_SQL,
            {"since": since, "until": until, "top": ACTIVE_STATS_TOP_EVENT_TYPES},
        )
        active_users, events, avg, most, top = cursor.fetchone()
    if isinstance(top, str):
        top = json.loads(top)
    return ActiveUserStats(
        days=days,
        since=since,
        until=until,
        active_users=active_users,
        events=int(events),
        events_per_user_avg=float(avg),
        events_per_user_max=most,
        top_event_types=[(name, count) for name, count in top],
    )


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValueError(f"user_id must be a UUID, got {value!r}") from None


def behavior_log_event_types() -> list[str]:
    """The event types, for filters: the planner's most-common values when the table was
    analyzed (no scan of millions of rows per page view), else an exact DISTINCT."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_vals::text::text[] FROM pg_stats "
            "WHERE schemaname = current_schema() AND tablename = %s AND attname = %s",
            ["demo_behavior_log", "event_type"],
        )
        row = cursor.fetchone()
        if row and row[0]:
            return sorted(row[0])
        cursor.execute(
            "SELECT DISTINCT event_type FROM demo_behavior_log ORDER BY event_type LIMIT 100"
        )
        return [event_type for (event_type,) in cursor.fetchall()]
