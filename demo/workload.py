"""The demo's query workload: what the app's pages run, several slow without the right index.

Each query runs with server-side psycopg parameters (every constant is a parameter), so
pg_stat_statements records each shape exactly as written here, with $1, $2... in place of
%s, and the audit sees the real shapes.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from .seeding import CAMPAIGNS, RARE_EVENT_TYPE
from .selectors import RECENT_LOGS_SQL

# Enough calls per shape to pass the audit's minimum-calls threshold with room to spare.
DEFAULT_REPEAT = 25
SAMPLE_SIZE = 200


@dataclass(frozen=True)
class Samples:
    """Real parameter values, drawn from the data so every query finds something."""

    user_ids: list
    emails: list[str]
    now: datetime


@dataclass(frozen=True)
class WorkloadQuery:
    name: str
    why_slow: str
    sql: str
    params: Callable[[Samples, random.Random], tuple]


@dataclass(frozen=True)
class WorkloadResult:
    name: str
    sql: str
    calls: int
    mean_ms: float


QUERIES: tuple[WorkloadQuery, ...] = (
    WorkloadQuery(
        "recent_logs_of_user",
        "sorts all of a user's logs without an index on (user_id, timestamp DESC)",
        RECENT_LOGS_SQL,
        lambda s, r: (r.choice(s.user_ids), 100),
    ),
    WorkloadQuery(
        "user_by_lower_email",
        "lower(email) cannot use the unique index on email: needs an expression index",
        "SELECT id, email, name FROM demo_user WHERE lower(email) = lower(%s)",
        lambda s, r: (r.choice(s.emails).upper(),),
    ),
    WorkloadQuery(
        "logs_of_rare_event_type",
        "a rare event_type is found by scanning: needs an index on event_type",
        'SELECT id, user_id, "timestamp" FROM demo_behavior_log '
        'WHERE event_type = %s ORDER BY "timestamp" DESC LIMIT %s',
        lambda s, r: (RARE_EVENT_TYPE, 50),
    ),
    WorkloadQuery(
        "logs_by_metadata_campaign",
        "jsonb containment (@>) scans every row without a GIN index on metadata",
        "SELECT count(*) FROM demo_behavior_log WHERE metadata @> %s",
        lambda s, r: (Jsonb({"campaign": r.choice(CAMPAIGNS)}),),
    ),
    WorkloadQuery(
        "users_by_email_prefix",
        "LIKE 'prefix%' needs a varchar_pattern_ops index unless the collation is C",
        "SELECT id, email FROM demo_user WHERE email LIKE %s ORDER BY email LIMIT %s",
        lambda s, r: (r.choice(s.emails)[:5] + "%", 20),
    ),
    WorkloadQuery(
        "event_counts_in_range",
        "a day of logs per event type (served by the timestamp index)",
        'SELECT event_type, count(*) AS events FROM demo_behavior_log WHERE "timestamp" >= %s '
        'AND "timestamp" < %s GROUP BY event_type ORDER BY events DESC',
        lambda s, r: _day_range(s, r),
    ),
    WorkloadQuery(
        "active_users_last_days",
        "distinct users over a week of logs",
        'SELECT count(DISTINCT user_id) FROM demo_behavior_log WHERE "timestamp" >= %s',
        lambda s, r: (s.now - timedelta(days=7),),
    ),
    WorkloadQuery(
        "top_users_by_event_type",
        "joins users to a month of one event type's logs; scans without (event_type, timestamp)",
        'SELECT u.id, u.email, count(*) AS events, max(l."timestamp") AS last_seen '
        "FROM demo_user AS u JOIN demo_behavior_log AS l ON l.user_id = u.id "
        'WHERE l.event_type = %s AND l."timestamp" >= %s '
        "GROUP BY u.id, u.email ORDER BY events DESC LIMIT %s",
        lambda s, r: (r.choice(("payment", "loan_calculator")), s.now - timedelta(days=30), 20),
    ),
)


class NoDemoData(Exception):
    """The workload needs seeded demo tables."""


def _day_range(samples: Samples, rng: random.Random) -> tuple[datetime, datetime]:
    start = samples.now - timedelta(days=rng.randint(1, 89))
    return start, start + timedelta(days=1)


def workload_samples(*, size: int = SAMPLE_SIZE, seed: int = 0) -> Samples:
    """User ids weighted by activity (busy users make more requests) and some emails."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        cursor.execute("SELECT email FROM demo_user ORDER BY random() LIMIT %s", [size])
        emails = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT user_id FROM demo_behavior_log ORDER BY random() LIMIT %s", [size])
        user_ids = [row[0] for row in cursor.fetchall()]
    if not emails or not user_ids:
        raise NoDemoData("The demo tables are empty: run `manage.py seed_demo` first.")
    return Samples(user_ids=user_ids, emails=emails, now=datetime.now(UTC))


def workload_run(
    *, repeat: int = DEFAULT_REPEAT, seed: int = 0, queries=QUERIES
) -> list[WorkloadResult]:
    """Run every query `repeat` times with varied parameters; mean wall time per shape."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    samples = workload_samples(seed=seed)
    rng = random.Random(seed)
    connection.ensure_connection()
    results = []
    with psycopg.Cursor(connection.connection) as cursor:
        for query in queries:
            elapsed = 0.0
            for _ in range(repeat):
                params = query.params(samples, rng)
                started = time.perf_counter()
                cursor.execute(query.sql, params)
                cursor.fetchall()
                elapsed += time.perf_counter() - started
            results.append(WorkloadResult(query.name, query.sql, repeat, elapsed * 1000 / repeat))
    return results
