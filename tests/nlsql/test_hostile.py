"""The hostile corpus end to end: as SQL (`sql_run`) and as LLM answers from a local server.

Every input is refused with its reason, and no table, relation, role, large object or
setting of the test database changes (the question log itself grows by one row each).
"""

import psycopg
import pytest
from django.db import connection

from nlsql.ask import question_ask, sql_run
from nlsql.guard import CheckedSql, sql_check
from nlsql.models import QuestionLog
from nlsql.runner import QueryFailed, query_run, read_only_connection
from tests.nlsql.conftest import database_checksum
from tests.nlsql.hostile_corpus import CORPUS

pytestmark = pytest.mark.django_db(transaction=True)

LOG_TABLE = "public.nlsql_questionlog"


def _without_log(checksum: dict) -> dict:
    return {name: value for name, value in checksum.items() if name != LOG_TABLE}


def test_every_hostile_sql_is_refused_and_the_database_is_unchanged(demo_data):
    before = database_checksum()
    for sql, fragment in CORPUS:
        result = sql_run(sql=sql)
        assert result.status == "refused", (sql, result)
        assert fragment.lower() in result.reason.lower(), (sql, result.reason)
        assert result.rows == [] and result.row_count is None
    assert _without_log(database_checksum()) == _without_log(before)
    refused = QuestionLog.objects.filter(status="refused", source="sql")
    assert refused.count() == len(CORPUS)
    assert not refused.filter(reason="").exists()


def test_every_hostile_llm_answer_from_a_local_openai_or_gemini_server_is_refused(
    demo_data, openai_server, gemini_server, settings
):
    before = database_checksum()
    answers = [(sql, fragment) for sql, fragment in CORPUS if sql.strip()]
    half = len(answers) // 2
    for server, batch in ((openai_server, answers[:half]), (gemini_server, answers[half:])):
        server.configure(settings)
        for sql, fragment in batch:
            server.default = f"```sql\n{sql}\n```"  # the first answer and the correction
            sent = len(server.requests)
            result = question_ask(question="How many users are there?")
            assert result.status == "refused", (server.provider, sql, result)
            assert result.source == "llm"
            assert fragment.lower() in result.reason.lower(), (sql, result.reason)
            # The refusal was given back to the LLM once, with the reason.
            assert len(server.requests) == sent + 2
            assert "refused by the safety guard" in server.requests[-1].prompt
    assert _without_log(database_checksum()) == _without_log(before)
    assert QuestionLog.objects.filter(status="refused", source="llm").count() == len(answers)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO demo_user (id, email, name, created_at) "
        "VALUES (gen_random_uuid(), 'x@x', '{}', now())",
        "UPDATE demo_user SET email = 'pwned'",
        "DELETE FROM demo_behavior_log",
        "TRUNCATE demo_behavior_log",
        "CREATE TABLE evil (id int)",
        "SELECT nextval(pg_get_serial_sequence('nlsql_questionlog', 'id'))",
        "WITH d AS (DELETE FROM demo_behavior_log RETURNING 1) SELECT count(*) FROM d",
    ],
)
def test_runner_transactions_are_read_only_even_without_the_guard(demo_data, statement):
    """Defence in depth: were the guard wrong, the READ ONLY transaction still refuses writes.

    (Not everything: PostgreSQL 15 lets lo_create run in a read-only transaction, which the
    runner's rollback undoes; the guard refuses large-object functions outright.)
    """
    before = database_checksum()
    with read_only_connection("default") as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(statement)
        conn.rollback()
    # And query_run, handed the statement as if checked, fails without writing.
    with pytest.raises(QueryFailed):
        query_run(checked=CheckedSql(sql=statement, tables=()))
    assert database_checksum() == before


def test_runner_cancels_a_query_at_the_statement_timeout(demo_data):
    checked = sql_check("SELECT count(*) FROM generate_series(1, 500000000)")
    with pytest.raises(QueryFailed, match="statement timeout"):
        query_run(checked=checked, timeout_ms=50)


def test_denied_table_behind_a_view_is_refused_by_the_plan_check(demo_data):
    """The text names only the view; the plan shows the denied table it reads."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE VIEW nlsql_test_people AS SELECT username, password FROM auth_user")
    try:
        result = sql_run(sql="SELECT * FROM nlsql_test_people")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP VIEW nlsql_test_people")
    assert result.status == "refused"
    assert "plan reads a relation it may not" in result.reason
    assert "auth_user is denied" in result.reason
