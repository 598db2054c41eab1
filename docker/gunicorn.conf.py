"""gunicorn for the web container: `gunicorn -c docker/gunicorn.conf.py` (docker-compose.yml).

With PROMETHEUS_MULTIPROC_DIR set, every worker process writes its request metrics there and
/metrics adds them up (config/metrics.py); the directory is wiped when gunicorn starts, since
files left by the processes of an earlier run would be counted again.
"""

import os
from pathlib import Path

wsgi_app = "config.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# The ask page runs a query with its own statement timeout (NLSQL_STATEMENT_TIMEOUT_MS).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
accesslog = "-"
errorlog = "-"


def _multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    return Path(value) if value else None


def on_starting(server) -> None:
    directory = _multiproc_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def pre_request(worker, req) -> None:
    """A body past Django's upload limit is answered 413 unread, and gunicorn drains only
    64 KB of what a response left unread before it drops the connection: the client's next
    request on it would fail. Such a request's answer says Connection: close instead."""
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), "")
    if limit is not None and length.isascii() and length.isdigit() and int(length) > limit:
        req.must_close = True


def child_exit(server, worker) -> None:
    if _multiproc_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
