"""Reads of audits for the API: lists, one audit, and audits still waiting in the queue."""

import uuid
from dataclasses import dataclass

from celery.result import AsyncResult
from django.db.models import QuerySet

from config.celery_app import app as celery_app
from optimizations.models import OptimizationLog
from pgaccess.scrub import secrets_scrub

from .models import AuditRun

# Celery states of a task that was published but has not created its AuditRun yet
# ("SENT" is recorded at publish time by config/celery_app.py).
QUEUED_STATES = frozenset({"SENT", "RECEIVED", "STARTED", "RETRY"})


def audit_list(*, target: str | None = None, status: str | None = None) -> QuerySet[AuditRun]:
    """Audits, newest first, optionally of one target (by name) and in one status."""
    queryset = AuditRun.objects.select_related("target")
    if target is not None:
        queryset = queryset.filter(target__name=target)
    if status is not None:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-started_at", "id")


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def audit_get(*, audit_id: uuid.UUID | str) -> AuditRun | None:
    """One recorded audit, or None when the id is malformed or unknown."""
    key = _as_uuid(audit_id)
    if key is None:
        return None
    return AuditRun.objects.select_related("target").filter(pk=key).first()


def audit_recommendations(*, audit: AuditRun) -> QuerySet[OptimizationLog]:
    """What one audit recommended, most confident first."""
    return (
        OptimizationLog.objects.filter(audit=audit)
        .select_related("target", "decided_by")
        .defer("embedding")
        .order_by("-confidence", "id")
    )


class TaskStateUnavailable(Exception):
    """The Celery result backend cannot be reached to tell whether an audit is queued."""


@dataclass(frozen=True)
class PendingAudit:
    """An audit known only to Celery: queued, running its first steps, or failed before
    it could record anything (for example: another audit of the target was running)."""

    id: uuid.UUID
    status: str  # "queued" or "failed"
    error: str = ""


def audit_pending_get(*, audit_id: uuid.UUID | str) -> PendingAudit | None:
    """The Celery side of an audit that has no AuditRun; None when Celery never saw it."""
    key = _as_uuid(audit_id)
    if key is None:
        return None
    result = AsyncResult(str(key), app=celery_app)
    try:
        state = result.state
    except getattr(celery_app.backend, "connection_errors", ()) as exc:
        raise TaskStateUnavailable(f"the task result backend is unreachable: {exc}") from exc
    if state in QUEUED_STATES:
        return PendingAudit(id=key, status="queued")
    if state == "FAILURE":
        # The worker's exception text, without any configured password in it.
        return PendingAudit(id=key, status="failed", error=secrets_scrub(str(result.result)))
    return None  # PENDING is Celery's word for "no such task"; SUCCESS without a row: gone
