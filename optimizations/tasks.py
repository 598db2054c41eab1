"""Celery tasks of the memory: embeddings and index builds run here, outside the request path."""

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections

from .applying import recommendation_apply_fail, recommendation_apply_run
from .services import optimization_backfill_embeddings

# An index build ends at DBARCHITECT_APPLY_STATEMENT_TIMEOUT_MS; the task's limits come after.
APPLY_SOFT_TIME_LIMIT = settings.DBARCHITECT_APPLY_STATEMENT_TIMEOUT_MS // 1000 + 60
APPLY_TIME_LIMIT = APPLY_SOFT_TIME_LIMIT + 60


@shared_task(name="optimizations.backfill_embeddings", soft_time_limit=30 * 60, time_limit=35 * 60)
def optimization_backfill_embeddings_task() -> int:
    """Embed every OptimizationLog still without an embedding; returns how many."""
    close_old_connections()
    return optimization_backfill_embeddings()


@shared_task(
    bind=True,
    name="optimizations.apply_index",
    acks_late=True,
    soft_time_limit=APPLY_SOFT_TIME_LIMIT,
    time_limit=APPLY_TIME_LIMIT,
)
def recommendation_apply_task(self, recommendation_id: str, job_id: str) -> str:
    """Build the index of one queued apply; returns what happened (the recommendation says it
    too). Any failure of the task itself is recorded, so the recommendation never stays
    APPLYING."""
    if not self.request.is_eager:
        close_old_connections()  # a worker's connection may have died since the last task
    try:
        result = recommendation_apply_run(recommendation_id=recommendation_id, job_id=job_id)
    except Exception as exc:
        if not self.request.is_eager:
            close_old_connections()  # the error may have been a lost database connection
        recommendation_apply_fail(
            recommendation_id=recommendation_id, job_id=job_id, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    return result.message
