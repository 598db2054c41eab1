"""Settings from a bad environment: an error that names the variable (never a password),
and system checks that name a value no audit or question could run with."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from dbarchitect.checks import check_settings
from nlsql.checks import check_nlsql_settings


def manage_check(*, default_settings: bool = False, **env: str) -> subprocess.CompletedProcess:
    """`manage.py check` in a child process with `env` on top of this one's environment, on
    the test settings or (default_settings) on those manage.py picks itself."""
    base = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    if not default_settings:
        base["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DBARCHITECT_MIN_CALLS": "five"},
            "DBARCHITECT_MIN_CALLS='five' is not a valid int; fix it in the environment",
        ),
        ({"LLM_TIMEOUT_SECONDS": "soon"}, "LLM_TIMEOUT_SECONDS='soon' is not a valid float"),
        (
            {"DATABASE_URL": "mysql://app:hunter2@db/app"},
            "DATABASE_URL must look like postgres://user:password@host:5432/dbname",
        ),
        (
            {"DATABASE_URL": "postgres://app:hunter2@db:port/app"},
            "DATABASE_URL must look like postgres://",
        ),
        (
            {"READONLY_DATABASE_URL": "postgres://reader:hunter2@db/"},
            "READONLY_DATABASE_URL must look like postgres://",
        ),
    ],
)
def test_a_malformed_environment_names_the_variable_and_hides_the_password(env, message):
    result = manage_check(**env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "hunter2" not in result.stderr


def test_the_default_settings_pass_every_check():
    assert check_settings(None) == [] and check_nlsql_settings(None) == []


@pytest.mark.parametrize(
    ("name", "value", "wanted"),
    [
        ("DBARCHITECT_STATEMENT_TIMEOUT_MS", 0, "at least 1"),  # 0 = no timeout at all
        ("DBARCHITECT_CONNECT_TIMEOUT_S", -1, "at least 1"),
        ("DBARCHITECT_MIN_TOTAL_SHARE", 1.5, "between 0 and 1"),
        ("DBARCHITECT_PR_CONFIDENCE", float("nan"), "between 0 and 1"),
        ("HNSW_EF_SEARCH", 5000, "between 1 and 1000"),
        ("EMBEDDING_BATCH_SIZE", 0, "at least 1"),
    ],
)
def test_an_out_of_range_audit_setting_is_a_check_error(settings, name, value, wanted):
    setattr(settings, name, value)
    (error,) = check_settings(None)
    assert error.id == "dbarchitect.E015"
    assert error.msg == f"{name}={value!r} is out of range: it must be {wanted}"


@pytest.mark.parametrize(
    "name", ["NLSQL_STATEMENT_TIMEOUT_MS", "NLSQL_MAX_ROWS", "NLSQL_PAGE_SIZE"]
)
def test_an_ask_limit_of_zero_is_a_check_error(settings, name):
    setattr(settings, name, 0)
    (error,) = check_nlsql_settings(None)
    assert error.id == "nlsql.E004" and error.msg.startswith(f"{name}=0 is out of range")


def test_verifying_on_a_target_that_is_not_configured_is_a_check_error(settings):
    settings.DBARCHITECT_VERIFY = "database:copy"
    (error,) = check_settings(None)
    assert error.id == "dbarchitect.E011"
    assert "'database:copy' names a target that is not configured" in error.msg
    settings.DBARCHITECT_TARGETS = "copy=postgres://auditor@replica/shop"
    assert check_settings(None) == []


def test_a_server_log_of_a_target_that_is_not_configured_is_a_check_error(settings):
    settings.DBARCHITECT_SERVER_LOG = {"default": "/var/log/pg.csv", "shop": "/var/log/shop.csv"}
    [error] = [e for e in check_settings(None) if e.id == "dbarchitect.E019"]
    assert error.msg.startswith("DBARCHITECT_SERVER_LOG names 'shop', not a configured target")


def test_a_server_log_setting_without_a_target_name_names_the_variable():
    result = manage_check(DBARCHITECT_SERVER_LOG="/var/log/pg.csv")
    assert result.returncode != 0
    assert "DBARCHITECT_SERVER_LOG='/var/log/pg.csv' is not a valid dict" in result.stderr


def test_a_soft_time_limit_above_the_hard_one_is_a_check_error(settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = settings.CELERY_TASK_TIME_LIMIT
    (error,) = check_settings(None)
    assert error.id == "dbarchitect.E016"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/nonexistent/minilm", "EMBEDDING_MODEL='/nonexistent/minilm' does not exist"),
        ("sentence-transformers/not-a-model", "nor a model in the local Hugging Face cache"),
    ],
)
def test_an_embedding_model_that_cannot_load_is_a_check_error(settings, value, message):
    settings.EMBEDDING_MODEL = value
    (error,) = check_settings(None)
    assert error.id == "dbarchitect.E017" and message in error.msg


@pytest.mark.parametrize("value", ["fp16", "", "BFLOAT16"])
def test_an_unknown_embedding_precision_is_a_check_error(settings, value):
    settings.EMBEDDING_PRECISION = value
    (error,) = check_settings(None)
    assert error.id == "dbarchitect.E018"
    assert error.msg == f"EMBEDDING_PRECISION={value!r} is not auto, float32 or bfloat16"


def test_an_embedding_model_directory_without_a_model_is_a_check_error(settings, tmp_path):
    settings.EMBEDDING_MODEL = str(tmp_path)
    (error,) = check_settings(None)
    assert error.id == "dbarchitect.E017" and "without a model" in error.msg


def test_the_packaged_model_directory_passes(settings):
    from optimizations.embeddings import model_path

    settings.EMBEDDING_MODEL = model_path()
    assert check_settings(None) == []


def test_a_command_stops_on_a_bad_setting_before_it_runs(settings, db):
    settings.EMBEDDING_MODEL = "/nonexistent/minilm"
    with pytest.raises(SystemCheckError, match=r"dbarchitect\.E017"):
        call_command("nlsql_train", "--schema", skip_checks=False)


def test_the_default_production_settings_without_a_secret_key_say_how_to_get_one():
    result = manage_check(default_settings=True, SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY is not set; the production settings" in result.stderr
    assert ".local/secret_key" in result.stderr
