import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from demo.seeding import demo_seed
from demo.workload import QUERIES
from tests.dbarchitect.pgss import pgss_reset_own_database


def reset_own_statement_stats():
    """Only this database's pg_stat_statements entries: other people's stay intact."""
    with connection.cursor() as cursor:
        pgss_reset_own_database(cursor)


def normalized(sql: str) -> str:
    """What pg_stat_statements shows for a statement sent with server-side parameters."""
    counter = iter(range(1, 100))
    return re.sub(r"%s", lambda _: f"${next(counter)}", sql)


def test_workload_puts_every_query_in_pg_stat_statements(db):
    demo_seed(users=30, logs=2000, seed=1)
    reset_own_statement_stats()
    out = StringIO()

    call_command("run_demo_workload", "--repeat", "20", stdout=out)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query, calls FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        calls = dict(cursor.fetchall())
    for query in QUERIES:
        assert calls.get(normalized(query.sql), 0) >= 20, query.name
        assert query.name in out.getvalue()
    assert "mean ms" in out.getvalue()


def test_workload_on_empty_tables_says_to_seed_first(db):
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("run_demo_workload", "--repeat", "1", stdout=StringIO())


def test_workload_refuses_a_bad_repeat(db):
    with pytest.raises(CommandError, match="--repeat must be at least 1"):
        call_command("run_demo_workload", "--repeat", "0", stdout=StringIO())
