"""The real server, started the README's ways (runserver as `make demo` runs it, gunicorn with
docker/gunicorn.conf.py), with secrets in its environment: no error path shows one, in any
response or log line, with DEBUG unset and with a deliberate DEBUG=1.

The 500s are a real failure, not a test hook: the app's database role lacks the grants on
the session and token tables (only django_migrations is readable, for runserver's start).
"""

import http.client
import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from .servers import ROOT, running_server

pytestmark = pytest.mark.django_db

DB_PASSWORD = "Db-Passw0rd-91c4"
SECRET_ENV = {
    "SECRET_KEY": "django-s3cret-key-0b7e5d",
    "DBARCHITECT_TARGETS": "shh=postgres://auditor:S3cret-7a1f@127.0.0.1:5544/x",
    "REDIS_URL": "redis://:R3dis-Passw0rd-e2@127.0.0.1:6379/0",
    "GITHUB_TOKEN": "ghp_gh0stT0kenValue55",
    "GEMINI_API_KEY": "AIza-gemini-key-c0ffee",
    "OPENAI_API_KEY": "sk-openai-key-decaf",
    "METRICS_BEARER_TOKEN": "metrics-bearer-f00d",
    "DJANGO_ADMIN_PASSWORD": "admin-passw0rd-beef",
}
NEEDLES = [
    DB_PASSWORD,
    "S3cret-7a1f",
    "R3dis-Passw0rd-e2",
    *(SECRET_ENV[name] for name in SECRET_ENV if name not in ("DBARCHITECT_TARGETS", "REDIS_URL")),
]
BIG = 3 * 1024 * 1024  # past Django's 2.5 MB upload limit


@pytest.fixture
def restricted_role():
    """A login role that may read django_migrations and nothing else of the test database."""
    params = connection.settings_dict
    role = f"secrets_probe_{uuid.uuid4().hex[:8]}"
    conninfo = (
        f"host={params['HOST']} port={params['PORT']} user={params['USER']} dbname={params['NAME']}"
    )
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(DB_PASSWORD)
            )
        )
        admin.execute(
            sql.SQL("GRANT SELECT ON django_migrations TO {}").format(sql.Identifier(role))
        )
    yield f"postgres://{role}:{DB_PASSWORD}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _request(port: int, method: str, path: str, *, body: bytes = b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# (what, method, path, body, headers, expected status)
ERROR_PATHS = [
    ("bad host, admin", "GET", "/admin/", b"", {"Host": "evil.example"}, 400),
    ("bad host, api", "GET", "/api/audits/", b"", {"Host": "evil.example"}, 400),
    (
        "3 MB form post",
        "POST",
        "/admin/login/",
        b"a=" + b"x" * BIG,
        # with a CSRF cookie, so the CSRF check reads the body (without: a 403, body unread)
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "csrftoken=" + "a" * 32},
        (400, 413),  # 400: the debug page, which has no 413
    ),
    (
        "3 MB api post",
        "POST",
        "/api/ask",
        json.dumps({"question": "x" * BIG}).encode(),
        {"Content-Type": "application/json"},
        413,
    ),
    ("csrf failure", "POST", "/admin/login/", b"username=a&password=b", {}, 403),
    ("404 page", "GET", "/no-such-page/", b"", {}, 404),
    ("404 api", "GET", "/api/no-such-endpoint/", b"", {}, 404),
    (
        "500 page",
        "GET",
        "/admin/",
        b"",
        {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"},
        500,
    ),
    ("500 api", "GET", "/api/optimizations/", b"", {"Authorization": "Token " + "a" * 40}, 500),
]


@pytest.mark.parametrize("debug", ["", "1"], ids=["debug_unset", "debug_1"])
@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
def test_no_error_path_shows_a_secret_in_a_response_or_the_log(kind, debug, restricted_role):
    env = {
        **SECRET_ENV,
        "DATABASE_URL": restricted_role,
        "SESSION_COOKIE_SECURE": "false",  # as `make demo` sets them
        "CSRF_COOKIE_SECURE": "false",
        "LOG_LEVEL": "INFO",
    }
    if debug:
        env["DEBUG"] = debug
    with running_server(kind, env) as server:
        answers = {}
        for what, method, path, body, headers, expected in ERROR_PATHS:
            status, response_headers, content = _request(
                server.port, method, path, body=body, headers=headers
            )
            assert status in (expected if isinstance(expected, tuple) else (expected,)), what
            shown = content.decode(errors="replace") + json.dumps(response_headers)
            for needle in NEEDLES:
                assert needle not in shown, (what, needle)
            if path.startswith("/api/"):
                assert response_headers["Content-Type"] == "application/json", what
                assert set(json.loads(content)) == {"error", "detail"}, what
            answers[what] = content.decode(errors="replace")
        log = server.log
    for needle in NEEDLES:
        assert needle not in log, needle
    # The errors were logged (so the check of the log read something), and DEBUG decided
    # which pages were shown: the debug page lists the settings, masked.
    assert "permission denied for table" in log
    if debug:
        assert "DBARCHITECT_TARGETS" in answers["500 page"]
        assert "REDIS_URL" in answers["500 page"]
        assert "Traceback" in answers["500 page"]
        assert "Using the URLconf" in answers["404 page"]
    else:
        assert "Traceback" not in answers["500 page"]
        assert "Using the URLconf" not in answers["404 page"]
        assert answers["3 MB form post"].startswith("The request is too large")


def test_the_demo_server_serves_static_files_without_debug(restricted_role):
    """`make demo` runs runserver with the production settings: WhiteNoise serves the
    admin's CSS (collected by `make migrate`), runserver's DEBUG-only static view does not."""
    env = {**SECRET_ENV, "DATABASE_URL": restricted_role}
    collect = [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"]
    subprocess.run(collect, cwd=ROOT, env={"PATH": os.environ["PATH"], **env}, check=True)
    with running_server("runserver", env) as server:
        status, _headers, body = _request(server.port, "GET", "/static/admin/css/base.css")
    assert status == 200
    assert b"body" in body
