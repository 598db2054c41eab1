"""Tasks routed to a queue of one test's own, on the real Redis broker, for a real worker."""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from config.celery_app import app as celery_app


@contextmanager
def own_queue(*task_names: str) -> Iterator[str]:
    """Send `task_names` to a fresh queue (no other worker on the broker takes them), for
    real: not eagerly. Yields the queue's name for `start_worker(queues=[...])`."""
    queue = f"test-{uuid.uuid4().hex}"
    eager = celery_app.conf.task_always_eager
    routes = celery_app.conf.task_routes
    celery_app.conf.update(
        task_always_eager=False, task_routes={name: {"queue": queue} for name in task_names}
    )
    try:
        yield queue
    finally:
        celery_app.conf.update(task_always_eager=eager, task_routes=routes)
        queues = celery_app.amqp.queues
        queues._consume_from = None  # undo the worker's queue selection for later workers
        queues.pop(queue, None)
        with celery_app.connection_for_write() as conn:
            conn.default_channel.client.delete(queue)


def worker_process(*options: str, **env: str) -> subprocess.Popen:
    """A real Celery worker in a process of its own (one a test can SIGKILL) on the test
    database, with `options` (e.g. "-Q", queue) and `env` added to its environment."""
    params = settings.DATABASES["default"]
    database_url = f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"),
            *options,
            *("-l", "warning", "--without-heartbeat", "--without-mingle", "--without-gossip"),
        ],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
