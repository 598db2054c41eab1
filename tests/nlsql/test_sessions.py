"""Read-only sessions kept between questions: reused, cleaned, replaced when they cannot be."""

import psycopg
import pytest
from django.db import connection

from nlsql.guard import CheckedSql
from nlsql.runner import QueryFailed, query_run
from nlsql.sessions import kept_session, kept_sessions_close

pytestmark = pytest.mark.django_db(transaction=True)


def _backend() -> int:
    """The backend pid of the session a question runs on (the guard is not under test)."""
    return query_run(checked=CheckedSql(sql="SELECT pg_backend_pid()", tables=())).rows[0][0]


@pytest.fixture(autouse=True)
def no_kept_sessions():
    kept_sessions_close()
    yield
    kept_sessions_close()


def test_two_questions_in_a_row_run_on_one_backend():
    assert _backend() == _backend()


def test_a_failed_question_leaves_a_session_the_next_one_can_use():
    first = _backend()
    with pytest.raises(QueryFailed):
        query_run(checked=CheckedSql(sql="SELECT 1 / 0", tables=()))
    assert _backend() == first


def test_nothing_of_one_question_reaches_the_next(settings):
    from nlsql.runner import read_only_connection

    with kept_session("default", read_only_connection) as conn:
        pid = conn.info.backend_pid
        # A session-level advisory lock outlives a rollback; the session is DISCARD ALLed.
        conn.execute("SELECT pg_advisory_lock(4242)")
        conn.execute("PREPARE leftover AS SELECT 1")
    with kept_session("default", read_only_connection) as conn:
        assert conn.info.backend_pid == pid
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s", [pid]
            )
            assert cur.fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        assert conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"


def test_a_session_the_server_closed_is_replaced():
    first = _backend()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", [first])
    second = _backend()
    assert second != first
    assert _backend() == second


def test_a_session_older_than_the_limit_is_reopened(settings):
    settings.NLSQL_SESSION_MAX_AGE_S = 0
    assert _backend() != _backend()


def test_a_session_whose_connection_broke_mid_question_is_not_kept():
    from nlsql.runner import read_only_connection

    with (
        pytest.raises(psycopg.OperationalError),
        kept_session("default", read_only_connection) as conn,
    ):
        pid = conn.info.backend_pid
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])
        conn.execute("SELECT 1")
    assert _backend() != pid
