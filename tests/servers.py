"""The web server started as the README starts it, in a child process: `manage.py runserver`
(what `make demo` runs) or gunicorn with docker/gunicorn.conf.py (the web container).

The child gets only the environment given (no DJANGO_SETTINGS_MODULE unless given), so the
entry points' own default settings are what runs; its output is kept for the caller.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    kind: str  # "runserver" or "gunicorn"
    port: int
    log_path: Path
    process: subprocess.Popen

    @property
    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")


def _command(kind: str, port: int) -> tuple[list[str], dict[str, str]]:
    if kind == "runserver":
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], {}
    if kind == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "-c", "docker/gunicorn.conf.py"]
        return command, {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"}
    raise ValueError(f"unknown server kind {kind!r}: runserver or gunicorn")


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
    except urllib.error.HTTPError:
        return True  # it answered, if not with 200
    except OSError:
        return False
    return True


@contextmanager
def running_server(kind: str, env: dict[str, str]) -> Iterator[Server]:
    """The server listening on a free port until the block ends (then stopped)."""
    port = free_port()
    command, extra = _command(kind, port)
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    with tempfile.NamedTemporaryFile(prefix=f"{kind}_", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**base, **extra, **env}, stdout=out, stderr=out
        )
    server = Server(kind=kind, port=port, log_path=log_path, process=process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start:\n{server.log}")
            time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_path.unlink(missing_ok=True)
