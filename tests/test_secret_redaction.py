"""Error e-mails to ADMINS and log lines carry no secret (config/reporter.py), through the
handlers the settings configure: a URL password, a target's, a token."""

import io
import logging

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db

TARGET_PASSWORD = "S3cret-7a1f"
TOKEN = "ghp_gh0stT0kenValue55"


@pytest.fixture
def secrets(settings):
    settings.DBARCHITECT_TARGETS = f"shh=postgres://auditor:{TARGET_PASSWORD}@10.0.0.9:5432/x"
    settings.GITHUB_TOKEN = TOKEN
    settings.ADMINS = [("ops", "ops@example.com")]
    return settings


def _log_a_failure() -> None:
    """A driver error quoting its connection string, logged as Django logs a 500."""
    conninfo = f"host=10.0.0.9 user=auditor password={TARGET_PASSWORD}"  # a frame variable
    try:
        raise ConnectionError(f"cannot reach postgres://auditor:{TARGET_PASSWORD}@10.0.0.9/x")
    except ConnectionError as exc:
        logging.getLogger("django.request").error(
            "Internal Server Error: %s (token %s, %s)", "/api/ask", TOKEN, conninfo, exc_info=exc
        )


def test_the_error_email_to_admins_carries_no_secret(secrets):
    _log_a_failure()
    (message,) = mail.outbox
    whole = message.subject + message.body
    assert TARGET_PASSWORD not in whole and TOKEN not in whole
    assert "cannot reach postgres://auditor:" in message.body  # the error is still there
    assert "Internal Server Error: /api/ask" in message.subject


def test_a_log_line_carries_no_secret(secrets):
    """Through the console handler LOGGING gives the root logger, its stream swapped."""
    (console,) = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    stream = io.StringIO()
    previous = console.setStream(stream)
    try:
        _log_a_failure()
    finally:
        console.setStream(previous)
    logged = stream.getvalue()
    assert "Internal Server Error: /api/ask" in logged and "ConnectionError" in logged
    assert TARGET_PASSWORD not in logged and TOKEN not in logged
