"""Management commands given bad arguments and bad files: a CommandError that says what to
fix, and nothing written."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from demo.models import BehaviorLog, User
from nlsql.models import TrainingItem
from nlsql.training import (
    TrainingError,
    training_add_documentation,
    training_add_pair,
    training_train_schema,
)

GOOD_PAIR = "- question: How many users?\n  sql: SELECT count(*) FROM demo_user\n"


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


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
