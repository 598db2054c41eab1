"""After a 413 on a kept-alive connection the client's next request works, against a real
gunicorn (docker/gunicorn.conf.py) and runserver (`make demo`): gunicorn's 413 says
Connection: close, since it would otherwise drop the connection under the client while
draining the unread body; runserver reads the rest of the body itself."""

import http.client
import json

import pytest
from django.db import connection

from tests.servers import running_server

pytestmark = pytest.mark.django_db

BIG = 3 * 1024 * 1024  # past Django's 2.5 MB upload limit


@pytest.fixture(params=["gunicorn", "runserver"])
def server(request):
    params = connection.settings_dict
    env = {
        "SECRET_KEY": "keepalive-test-key",
        "DATABASE_URL": f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}"
        f"/{params['NAME']}",
        "LOG_LEVEL": "WARNING",
    }
    with running_server(request.param, env) as server:
        yield server


def _post(conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
    conn.request("POST", "/api/ask", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response


def test_the_request_after_a_413_on_a_kept_alive_connection_is_answered(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        first = _post(conn, json.dumps({"question": "x" * BIG}).encode())
        assert first.status == 413
        if server.kind == "gunicorn":
            assert first.getheader("Connection") == "close"
        second = _post(conn, b'{"question": "how many users?"}')
        assert second.status == 401  # answered (no credentials), not a dropped connection
    finally:
        conn.close()


def test_a_small_request_keeps_the_connection_alive(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        first = _post(conn, b'{"question": "how many users?"}')
        kept = conn.sock
        second = _post(conn, b'{"question": "how many users?"}')
        assert (first.status, second.status) == (401, 401)
        assert first.getheader("Connection") != "close"
        assert conn.sock is kept  # the same socket served both
    finally:
        conn.close()
