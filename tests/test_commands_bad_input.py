"""Management commands given bad arguments and bad files: a CommandError that says what to
fix, and nothing written."""

import os
import signal
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from demo.models import BehaviorLog, User
from nlsql.models import TrainingItem
from nlsql.training import (
    TrainingError,
    training_add_documentation,
    training_add_pair,
    training_train_schema,
)
from tests.dbarchitect.waiting import wait_for

GOOD_PAIR = "- question: How many users?\n  sql: SELECT count(*) FROM demo_user\n"


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def manage(*args: str, database_url: str, **popen) -> subprocess.Popen:
    """The real command in a child process that handles Ctrl-C as a terminal would."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LLM_PROVIDER": ""}
        | {"DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A background shell ignores SIGINT and children inherit that: restore the default,
        # so Python turns it into KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **popen,
    )


# --- every command: the app's database down, Ctrl-C -------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["run_audit", "--no-verify"],
        ["ensure_admin"],
        ["seed_demo", "--users", "1", "--logs", "1"],
        ["run_demo_workload"],
        ["ask", "--sql", "SELECT 1"],
        ["nlsql_train", "--schema"],
        ["backfill_embeddings"],
        ["apply_recommendation", "00000000-0000-0000-0000-000000000000", "--user", "root"],
    ],
    ids=lambda args: args[0],
)
def test_every_command_says_the_app_database_is_down_without_a_traceback(args):
    child = manage(*args, database_url="postgres://app:hunter2@127.0.0.1:1/app")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 1, err
    assert "CommandError: cannot connect to the app's database" in err
    assert "Check DATABASE_URL" in err and "Connection refused" in err
    assert "Traceback" not in err and "hunter2" not in err + out


def test_seed_demo_interrupted_mid_way_leaves_no_rows(transactional_db):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    child = manage("seed_demo", "--users", "1000", "--logs", "5000000", database_url=url)
    try:
        # Mid-way: the logs' COPY has run at least once in the seeding transaction.
        wait_for(lambda: _copying_logs(child), seconds=120, what="seed_demo to copy logs")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 1, err
    assert "CommandError: interrupted (Ctrl-C): its transaction was rolled back" in err
    assert "Traceback" not in err
    assert not User.objects.exists() and not BehaviorLog.objects.exists()


def _copying_logs(child: subprocess.Popen) -> bool:
    assert child.poll() is None, child.communicate()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'COPY %%demo_behavior_log%%' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


# --- seed_demo, run_demo_workload -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--logs", "99999999999999999999"], "--logs must be at most 100,000,000"),
        (["--users", "1000000000"], "--users must be at most 1,000,000"),
        (["--seed", "-1"], "--seed must not be negative"),
    ],
)
def test_seed_demo_refuses_sizes_it_could_never_finish(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("seed_demo", "--users", "5", "--logs", "5", *args)
    assert not User.objects.exists() and not BehaviorLog.objects.exists()


def test_run_demo_workload_refuses_a_repeat_that_would_run_for_days(db):
    with pytest.raises(CommandError, match="--repeat must be at most 10,000"):
        run("run_demo_workload", "--repeat", "100000000000")


# --- ensure_admin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--password", "abc"], "The admin password is refused: This password is too short"),
        (["--password", "password123"], "This password is too common"),
        (["--email", "not-an-email"], "--email: Enter a valid email address"),
        (["--username", "bad name!"], "--username: Enter a valid username"),
    ],
)
def test_ensure_admin_refuses_what_the_admin_would_refuse(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("ensure_admin", "--password", "s3cret-pass!", *args)
    assert not get_user_model().objects.exists()


def test_ensure_admin_does_not_take_a_plain_user_for_the_admin(db, django_user_model):
    django_user_model.objects.create_user(username="admin", password="user-pass-123")
    with pytest.raises(CommandError, match="'admin' exists but is not a superuser"):
        run("ensure_admin")
    user = django_user_model.objects.get()
    assert not user.is_superuser and user.check_password("user-pass-123")


def test_ensure_admin_refuses_a_weak_password_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("DJANGO_ADMIN_PASSWORD", "admin")
    with pytest.raises(CommandError, match="--password or DJANGO_ADMIN_PASSWORD"):
        run("ensure_admin")
    assert not get_user_model().objects.exists()


# --- nlsql_train ------------------------------------------------------------------------


@pytest.fixture
def pairs_file(tmp_path):
    def write(content: str | bytes):
        path = tmp_path / "pairs.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    return write


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # A NUL (a YAML escape) would reach PostgreSQL text columns, which cannot hold one.
        ('- question: "a\\0b"\n  sql: SELECT 1\n', "entry 1 question contains a NUL"),
        ('- documentation: "x\\0y"\n', "entry 1 documentation contains a NUL"),
        (b"- question: caf\xe9\n  sql: SELECT 1\n", r"is not UTF-8 text \(byte 15\)"),
        ("[" * 50_000, "is nested too deeply"),
        # Passes the guard, but the target has no such table: a wrong example for the LLM.
        (
            GOOD_PAIR + "- question: Orders?\n  sql: SELECT id FROM no_such_table\n",
            r"Entry 2 \('Orders\?'\): The SQL does not run on target 'default': "
            r'relation "no_such_table" does not exist',
        ),
        (
            GOOD_PAIR + "- question: Emails?\n  sql: SELECT nope FROM demo_user\n",
            r'Entry 2 .*column "nope" does not exist',
        ),
    ],
)
def test_nlsql_train_refuses_a_bad_file_and_stores_nothing(db, pairs_file, content, message):
    path = pairs_file(content)
    with pytest.raises(CommandError, match=message) as info:
        run("nlsql_train", "--file", path)
    assert str(info.value).endswith("Nothing was stored.")
    assert not TrainingItem.objects.exists()


def test_nlsql_train_schema_and_a_bad_file_keep_the_previous_schema(db, pairs_file):
    training_train_schema(target="default")
    before = set(TrainingItem.objects.values_list("id", flat=True))
    assert before
    path = pairs_file(GOOD_PAIR + "- question: Broken\n  sql: SELECT nope FROM demo_user\n")
    with pytest.raises(CommandError, match="Entry 2"):
        run("nlsql_train", "--schema", "--file", path)
    assert set(TrainingItem.objects.values_list("id", flat=True)) == before


def test_nlsql_train_an_empty_file_argument_is_a_usage_error(db):
    with pytest.raises(CommandError, match="--file needs the path of a YAML file"):
        run("nlsql_train", "--file", "")


def test_nlsql_train_loading_a_file_twice_stores_each_entry_once(db, pairs_file):
    path = pairs_file(GOOD_PAIR + "- documentation: A user is a learner.\n")
    assert "Loaded 2 entries" in run("nlsql_train", "--file", path)
    assert "Loaded 2 entries" in run("nlsql_train", "--file", path)
    assert TrainingItem.objects.filter(kind="question_sql").count() == 1
    assert TrainingItem.objects.filter(kind="documentation").count() == 1


def test_a_pair_whose_sql_fails_on_the_target_is_refused_everywhere(db):
    with pytest.raises(TrainingError, match='relation "no_such_table" does not exist'):
        training_add_pair(question="Orders?", sql="SELECT id FROM no_such_table")
    with pytest.raises(TrainingError, match="contains a NUL"):
        training_add_documentation(text="a\x00b")
    assert not TrainingItem.objects.exists()
