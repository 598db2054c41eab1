"""The web container's process, run for real: gunicorn with docker/gunicorn.conf.py and the
production settings, two workers in multiprocess metrics mode, static files through WhiteNoise."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from .conftest import parse

ROOT = Path(settings.BASE_DIR)
TOKEN = "gunicorn-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def production_env(db, tmp_path) -> dict[str, str]:
    db_settings = connection.settings_dict
    url = (
        f"postgres://{db_settings['USER']}@{db_settings['HOST']}:{db_settings['PORT']}"
        f"/{db_settings['NAME']}"
    )
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "gunicorn-test-secret",
        "DATABASE_URL": url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"),
        "METRICS_BEARER_TOKEN": TOKEN,
        "METRICS_ALLOWED_IPS": "192.0.2.1",
        "GUNICORN_WORKERS": "2",
        "LOG_LEVEL": "WARNING",
    }


def test_gunicorn_serves_health_static_and_merged_metrics(production_env, tmp_path):
    env = production_env
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    # A file left by a process of an earlier run: gunicorn must not count it again.
    stale = Path(env["PROMETHEUS_MULTIPROC_DIR"])
    stale.mkdir()
    code = "from prometheus_client import Counter; Counter('dbarchitect_stale', 'x').inc()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert list(stale.glob("*.db"))

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "docker/gunicorn.conf.py"],
        cwd=ROOT,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        status, deadline = None, time.monotonic() + 90
        while status != 200 and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.5)
            try:
                status, body = _get(f"{base}/healthz")
            except OSError:
                continue  # not listening yet
        assert server.poll() is None, server.stderr.read().decode()
        assert status == 200
        for _ in range(5):
            assert _get(f"{base}/healthz")[0] == 200

        status, css = _get(f"{base}/static/admin/css/base.css")
        assert status == 200
        assert b"body" in css

        assert _get(f"{base}/metrics")[0] == 403
        status, body = _get(f"{base}/metrics", token=TOKEN)
        assert status == 200
        samples = parse(body.decode())
        assert samples["db_architect_metrics_up"][()] == 1
        requests = samples["django_http_requests_total_by_view_transport_method_total"]
        healthz = sum(v for k, v in requests.items() if dict(k)["view"] == "healthz")
        assert healthz == 6  # every worker's requests, added up
        assert "dbarchitect_stale_total" not in samples
    finally:
        server.terminate()
        server.wait(timeout=30)
