"""manage.py ask and nlsql_train: output, JSON, exit codes (0 ok, 2 refused, 1 error)."""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection

from nlsql.models import QuestionLog, TrainingItem
from tests.nlsql.conftest import PAIRS_FILE, expected_activity

pytestmark = pytest.mark.django_db(transaction=True)


def _manage(*args: str) -> subprocess.CompletedProcess:
    """The real command in a child process, on this test database."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "LLM_PROVIDER": "",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "ask", *args],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ask_sql_exit_codes_in_a_child_process(demo_data):
    ok = _manage("--sql", "SELECT count(*) AS users FROM demo_user", "--json")
    assert ok.returncode == 0, ok.stderr
    document = json.loads(ok.stdout)
    assert document["status"] == "ok" and document["rows"] == [[len(demo_data)]]
    assert document["columns"] == ["users"]

    refused = _manage("--sql", "DROP TABLE demo_user", "--json")
    assert refused.returncode == 2
    document = json.loads(refused.stdout)
    assert document["status"] == "refused" and "DROP" in document["reason"]
    assert document["rows"] == []

    error = _manage("--sql", "SELECT nope FROM demo_user")
    assert error.returncode == 1
    assert 'column "nope" does not exist' in error.stderr


def test_ask_question_offline_prints_the_sql_and_rows(trained_pairs, no_llm):
    out = StringIO()
    call_command("ask", "Show me top 10 active users", stdout=out)
    text = out.getvalue()
    assert "No LLM is configured" in text and "FROM demo_user" in text
    for email, events in expected_activity()[:10]:
        assert f"{email} | Person " in text and f" | {events}\n" in text
    assert "(10 rows" in text


def test_ask_question_json_error_exits_1(trained_pairs, no_llm):
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("ask", "What is the weather tomorrow?", "--json", stdout=out)
    assert exited.value.code == 1
    document = json.loads(out.getvalue())
    assert document["status"] == "error" and "close enough" in document["reason"]
    assert QuestionLog.objects.get(pk=document["log_id"]).status == "error"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give either a QUESTION or --sql"),
        (("question", "--sql", "SELECT 1"), "not both"),
        (("   ",), "The question is empty."),
        (("q", "--target", "nope"), "Unknown target 'nope'"),
    ],
)
def test_ask_usage_errors_are_command_errors(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("ask", *args)


def test_nlsql_train_loads_the_demo_pairs_and_the_schema(demo_data):
    out = StringIO()
    call_command("nlsql_train", "--file", str(PAIRS_FILE), "--schema", stdout=out)
    assert "Loaded 11 entries" in out.getvalue() and "Trained" in out.getvalue()
    pairs = TrainingItem.objects.filter(kind="question_sql", source="file")
    assert pairs.filter(question="Show me top 10 active users").exists()
    assert TrainingItem.objects.filter(kind="ddl", table_name="public.demo_user").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Nothing to do"),
        (("--file", "/nonexistent/pairs.yaml"), "Cannot read /nonexistent/pairs.yaml"),
        (("--schema", "--target", "nope"), "Unknown target 'nope'"),
    ],
)
def test_nlsql_train_usage_errors(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("nlsql_train", *args)
