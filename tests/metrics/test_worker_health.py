"""The worker's compose health check, run for real against a Celery worker on Redis."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
# A Redis database of its own: this worker must not take other tests' tasks.
REDIS_URL = "redis://127.0.0.1:6379/14"


def healthcheck_command(timeout: int | None = None) -> str:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kind, command = compose["services"]["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$")  # compose's escape for the container's shell
    if timeout is not None:
        command = command.replace("--timeout 10", f"--timeout {timeout}")
    return command


@pytest.fixture
def worker_env(db) -> dict[str, str]:
    db_settings = connection.settings_dict
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "HOSTNAME": socket.gethostname(),  # as in a container: the worker's node name
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "worker-test-secret",
        "DATABASE_URL": (
            f"postgres://{db_settings['USER']}@{db_settings['HOST']}:{db_settings['PORT']}"
            f"/{db_settings['NAME']}"
        ),
        "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING",
    }


def test_worker_healthcheck_fails_without_and_passes_with_a_worker(worker_env):
    check = ["sh", "-c", healthcheck_command(timeout=2)]
    assert subprocess.run(check, cwd=ROOT, env=worker_env, capture_output=True).returncode != 0

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1"],
        cwd=ROOT,
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        check = ["sh", "-c", healthcheck_command()]
        healthy, deadline = False, time.monotonic() + 90
        while not healthy and time.monotonic() < deadline and worker.poll() is None:
            healthy = (
                subprocess.run(check, cwd=ROOT, env=worker_env, capture_output=True).returncode == 0
            )
        assert worker.poll() is None, "the worker exited"
        assert healthy
    finally:
        worker.terminate()
        worker.wait(timeout=60)
