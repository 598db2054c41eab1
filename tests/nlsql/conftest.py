"""Demo data with known answers, trained memory, LLM servers and a whole-database checksum.

The runner reads on its own connection, so tests that run SQL use committed data
(transactional tests); the expected answers are computed here in Python from DEMO_EVENTS.
"""

import datetime as dt
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from psycopg import sql

from demo.models import BehaviorLog, User
from tests.llm_servers import gemini_server, openai_server  # noqa: F401  (fixtures)

PAIRS_FILE = Path(django_settings.BASE_DIR) / "demo" / "nlsql_pairs.yaml"
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

# user number -> (event type, hours before NOW) for each event; user 12 never did anything.
EVENT_TYPES = ["login", "view_lesson", "quiz_submit", "payment"]
DEMO_EVENTS = {
    number: [(EVENT_TYPES[(number + k) % 4], number * 7 + k * 5) for k in range((number * 5) % 13)]
    for number in range(14)
}


def demo_email(number: int) -> str:
    return f"user{number:02d}@example.com"


@pytest.fixture
def demo_data(transactional_db):
    """14 users with 0..12 events each, committed; returns number -> User."""
    users = {
        number: User(
            id=uuid.UUID(int=number + 1),
            email=demo_email(number),
            name={"vi": f"Người {number}", "en": f"Person {number}", "zh": f"人 {number}"},
        )
        for number in DEMO_EVENTS
    }
    User.objects.bulk_create(users.values())
    logs = [
        BehaviorLog(
            id=uuid.uuid4(),
            user=users[number],
            event_type=event_type,
            metadata={"k": k},
            timestamp=NOW - dt.timedelta(hours=hours),
        )
        for number, events in DEMO_EVENTS.items()
        for k, (event_type, hours) in enumerate(events)
    ]
    BehaviorLog.objects.bulk_create(logs)
    return users


def expected_activity() -> list[tuple[str, int]]:
    """(email, events) of users with events, most active first, ties by email."""
    counts = [(demo_email(n), len(events)) for n, events in DEMO_EVENTS.items() if events]
    return sorted(counts, key=lambda item: (-item[1], item[0]))


@pytest.fixture
def trained_pairs(demo_data):
    """The shipped demo pairs and notes, trained."""
    from nlsql.training import training_load_file

    training_load_file(path=PAIRS_FILE, target="default")
    return demo_data


@pytest.fixture
def trained(trained_pairs):
    """The demo pairs and the schema of the test database, trained."""
    from nlsql.training import training_train_schema

    training_train_schema(target="default")
    return trained_pairs


@pytest.fixture
def no_llm(settings):
    settings.LLM_PROVIDER = ""
    return settings


CATALOG_CHECKSUMS = {
    "relations": "SELECT md5(string_agg(oid::text || relname || relkind::text, ',' ORDER BY oid)) "
    "FROM pg_class",
    "roles": "SELECT md5(string_agg(rolname || rolsuper::text, ',' ORDER BY rolname)) "
    "FROM pg_roles",
    "large_objects": "SELECT count(*)::text FROM pg_largeobject_metadata",
    "db_settings": "SELECT count(*)::text FROM pg_db_role_setting",
    "functions": "SELECT count(*)::text FROM pg_proc",
}


def database_checksum() -> dict[str, str]:
    """md5 of every table's rows (all user schemas), plus the relations, roles and settings.

    Any write, DDL, new role, large object or persistent setting changes one of them.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' "
            "ORDER BY 1, 2"
        )
        tables = cursor.fetchall()
        sums = {}
        for schema, table in tables:
            cursor.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                    "FROM {} AS t"
                )
                .format(sql.Identifier(schema, table))
                .as_string(cursor.connection)
            )
            count, digest = cursor.fetchone()
            sums[f"{schema}.{table}"] = f"{count}:{digest}"
        for name, query in CATALOG_CHECKSUMS.items():
            cursor.execute(query)
            sums[name] = cursor.fetchone()[0]
    return sums
