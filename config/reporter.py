"""Secrets never reach an error page, an error e-mail or a log line, DEBUG or not.

Django's own filter hides settings by name (SECRET_KEY, *_PASSWORD) but shows a URL's
password in DBARCHITECT_TARGETS, REDIS_URL or the request environment, and with DEBUG on
it shows every frame's local variables unfiltered. Here every text an error report or a
log record carries goes through `secrets_redact`: URL and conninfo passwords are masked
wherever they appear, and so is the value of every configured secret.
"""

import functools
import logging
import os
import re
from pprint import pformat

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.log import AdminEmailHandler
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MASK = "********************"

# Setting and environment names whose whole value is hidden: Django's list, plus the
# connection URLs (their hosts are internal even without a password) and the targets.
SECRET_NAMES = re.compile(
    r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|DSN"
    r"|DATABASE_URL|REDIS_URL|BROKER|RESULT_BACKEND|TARGETS",
    flags=re.IGNORECASE,
)
# Names whose values are masked wherever they appear in a text (narrower than the above:
# AUTH_USER_MODEL or GITHUB_API_URL are no secrets, and a connection URL keeps its host and
# loses only its password, so a log line still says where it failed).
SECRET_VALUE_NAMES = re.compile(
    r"SECRET|PASSWORD|TOKEN|API_KEY|_KEY$|CREDENTIAL|DSN", flags=re.IGNORECASE
)
# scheme://user:password@host -> the password part (user and host stay, to find it).
URL_PASSWORD = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)", flags=re.IGNORECASE
)
# libpq key=value connection strings: password=... or password='...'.
CONNINFO_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", flags=re.IGNORECASE
)
# Shorter configured values are not masked inside other text: "on" or "1" would garble it.
MIN_SECRET_LENGTH = 4


def _texts(value: object) -> list[str]:
    """A setting's text: itself, or the texts in a list of them (SECRET_KEY_FALLBACKS)."""
    items = value if isinstance(value, list | tuple) else [value]
    return [item for item in items if isinstance(item, str)]


def _collect_secrets() -> frozenset[str]:
    """The values of every setting and environment variable named like a secret, and the
    passwords inside every URL they hold."""
    values: set[str] = set()
    named = dict(os.environ)
    if settings.configured:
        named.update({name: getattr(settings, name) for name in dir(settings) if name.isupper()})
        for alias in settings.DATABASES.values():
            values.add(str(alias.get("PASSWORD") or ""))
    for name, value in named.items():
        for text in _texts(value):
            if SECRET_VALUE_NAMES.search(name):
                values.add(text)
            values.update(match["secret"] for match in URL_PASSWORD.finditer(text))
    return frozenset(value for value in values if len(value) >= MIN_SECRET_LENGTH)


@functools.cache
def _settled_secrets() -> tuple[str, ...]:
    """_collect_secrets once settings are loaded (reading them all takes milliseconds, too
    long per log line), longest first so a secret inside another is not half-masked."""
    return tuple(sorted(_collect_secrets(), key=len, reverse=True))


@receiver(setting_changed)
def _settings_changed(**kwargs) -> None:
    _settled_secrets.cache_clear()


def _configured_secrets() -> tuple[str, ...]:
    if settings.configured:
        return _settled_secrets()
    return tuple(sorted(_collect_secrets(), key=len, reverse=True))


def secrets_redact(text: str) -> str:
    """`text` with URL and conninfo passwords and every configured secret masked."""
    text = URL_PASSWORD.sub(lambda match: match["head"] + MASK, text)
    text = CONNINFO_PASSWORD.sub(lambda match: match["head"] + MASK, text)
    for secret in _configured_secrets():
        text = text.replace(secret, MASK)
    return text


class _Shown:
    """A frame variable already printed and redacted: the debug page shows it as is."""

    def __init__(self, value: object):
        try:  # printing can fail (a queryset on a database that is down), as Django allows
            text = pformat(value)
        except Exception as exc:
            text = f"Error in formatting: {exc.__class__.__name__}: {exc}"
        self.text = secrets_redact(text)

    def __repr__(self) -> str:
        return self.text


class SecretsReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, always active, hiding secrets by name and by value."""

    hidden_settings = SECRET_NAMES

    def is_active(self, request) -> bool:
        return True  # sensitive_variables / sensitive_post_parameters hold under DEBUG too

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        return secrets_redact(cleansed) if isinstance(cleansed, str) else cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, _Shown(value)) for name, value in variables]


class SecretsExceptionReporter(ExceptionReporter):
    """The debug page and the error e-mail with the exception's message redacted too
    (a driver's error can quote its connection string)."""

    def get_traceback_data(self) -> dict:
        data = super().get_traceback_data()
        if isinstance(data.get("exception_value"), str):
            data["exception_value"] = secrets_redact(data["exception_value"])
        return data

    def get_traceback_text(self) -> str:
        return secrets_redact(super().get_traceback_text())


class RedactingFormatter(logging.Formatter):
    """Log lines, tracebacks included, with every secret masked."""

    def format(self, record: logging.LogRecord) -> str:
        return secrets_redact(super().format(record))


class RedactingAdminEmailHandler(AdminEmailHandler):
    """Django's error e-mail to ADMINS with the subject (the log message) redacted too; its
    body is the redacting formatter's and SecretsExceptionReporter's."""

    def format_subject(self, subject: str) -> str:
        return super().format_subject(secrets_redact(subject))
