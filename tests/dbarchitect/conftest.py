"""A demo-like workload in the test database, built once per session, dropped after.

The tables are plain SQL, not Django models, so the flush of transactional tests leaves
them alone. Engineer A's tests may import these fixtures too.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg
import pytest

from dbarchitect.models import Target
from dbarchitect.targets import target_sync
from pgaccess.targets import DEFAULT_TARGET, target_connection

from .pgss import pgss_reset_own_database  # noqa: F401 - the tests import it from here

USERS = 300
LOGS = 300_000  # 1,000 logs per user: the "recent logs of a user" query must sort many
PAYMENTS = 20_000

RECENT_LOGS_QUERY = (
    "SELECT id, event_type, timestamp FROM pl_behavior_log "
    "WHERE user_id = %s ORDER BY timestamp DESC LIMIT 100"
)

SCHEMA = [
    "DROP TABLE IF EXISTS pl_payment, pl_behavior_log, pl_user CASCADE",
    """CREATE TABLE pl_user (
        id bigint PRIMARY KEY,
        email text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL
    )""",
    """CREATE TABLE pl_behavior_log (
        id bigint PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES pl_user (id),
        event_type text NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        timestamp timestamptz NOT NULL
    )""",
    # No index on user_id: the missing foreign-key index the health check must find.
    """CREATE TABLE pl_payment (
        id bigint PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES pl_user (id),
        amount numeric(12, 2) NOT NULL
    )""",
    f"""INSERT INTO pl_user (id, email, created_at)
        SELECT g, 'user' || g || '@example.com', now() - (g % 7) * interval '1 day'
        FROM generate_series(1, {USERS}) AS g""",
    # Interleaved users: each user's logs are spread over the whole table.
    f"""INSERT INTO pl_behavior_log (id, user_id, event_type, metadata, timestamp)
        SELECT g, g % {USERS} + 1, 'event_' || (g % 1000),
               jsonb_build_object('n', g % 10), now() - g * interval '1 second'
        FROM generate_series(1, {LOGS}) AS g""",
    f"""INSERT INTO pl_payment (id, user_id, amount)
        SELECT g, g % {USERS} + 1, (g % 500) + 0.99 FROM generate_series(1, {PAYMENTS}) AS g""",
    # The demo's separate single-column indexes.
    "CREATE INDEX pl_behavior_log_user_id ON pl_behavior_log (user_id)",
    "CREATE INDEX pl_behavior_log_timestamp ON pl_behavior_log (timestamp)",
    # An index no query uses, and an exact duplicate of another one.
    "CREATE INDEX pl_behavior_log_event_type ON pl_behavior_log (event_type)",
    "CREATE INDEX pl_behavior_log_timestamp_dup ON pl_behavior_log (timestamp)",
    "ANALYZE pl_user, pl_behavior_log, pl_payment",
]

# created_at repeats, so this unique build fails and leaves an invalid index behind.
INVALID_INDEX = "CREATE UNIQUE INDEX CONCURRENTLY pl_user_created_at_uniq ON pl_user (created_at)"


@dataclass(frozen=True)
class Workload:
    conninfo: str
    users: int
    logs: int

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, autocommit=True)


@pytest.fixture(scope="session")
def pipeline_workload(django_db_setup, django_db_blocker) -> Iterator[Workload]:
    with django_db_blocker.unblock():
        conninfo = target_connection("default").conninfo
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        try:
            conn.execute(INVALID_INDEX)
        except psycopg.errors.UniqueViolation:
            pass
        else:  # pragma: no cover - the data guarantees duplicates
            raise AssertionError("the invalid-index setup did not fail as intended")
    yield Workload(conninfo=conninfo, users=USERS, logs=LOGS)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS pl_payment, pl_behavior_log, pl_user CASCADE")


@pytest.fixture
def workload_conn(pipeline_workload) -> Iterator[psycopg.Connection]:
    """A client connection to the test database, as an application would open one."""
    with pipeline_workload.connect() as conn:
        yield conn


def run_queries(conn: psycopg.Connection, query: str, params: Sequence[Sequence]) -> None:
    for values in params:
        conn.execute(query, values).fetchall()


def recent_logs(conn: psycopg.Connection, times: int) -> None:
    """The slow query of the demo: a user's latest logs (a different user each time)."""
    run_queries(conn, RECENT_LOGS_QUERY, [[i % USERS + 1] for i in range(times)])


def pgss_calls(conn: psycopg.Connection, text_fragment: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND toplevel AND query LIKE %s",
        [f"%{text_fragment}%"],
    ).fetchone()
    return int(row[0])


@pytest.fixture
def default_target(pipeline_workload) -> Target:
    """The `default` target row (the flush of transactional tests removes it). Needs a
    django_db mark on the test."""
    target_sync()
    return Target.objects.get(name=DEFAULT_TARGET)
