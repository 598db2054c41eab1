"""The Celery app: Redis broker, tasks discovered in the Django apps."""

import logging
import os

from celery import Celery
from celery.signals import before_task_publish

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("dbarchitect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def task_mark_sent(sender: str | None = None, headers: dict | None = None, **kwargs) -> None:
    """Record "SENT" for a task as it is queued: its id then reads as queued, not unknown
    (Celery's PENDING means both). Done before publishing, so it never hides a result."""
    task_id = (headers or {}).get("id")
    if not (task_id and app.conf.result_backend):
        return
    try:
        app.backend.store_result(task_id, None, "SENT")
    except Exception:  # the publish itself then says whether Redis is down
        logger.warning("could not mark task %s as sent", task_id, exc_info=True)
