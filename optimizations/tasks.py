"""Celery tasks of the memory: embeddings are computed here, outside the request path."""

from celery import shared_task
from django.db import close_old_connections

from .services import optimization_backfill_embeddings


@shared_task(name="optimizations.backfill_embeddings", soft_time_limit=30 * 60, time_limit=35 * 60)
def optimization_backfill_embeddings_task() -> int:
    """Embed every OptimizationLog still without an embedding; returns how many."""
    close_old_connections()
    return optimization_backfill_embeddings()
