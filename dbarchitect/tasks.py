"""Celery tasks: thin wrappers that take names and ids, and own their failure handling."""

import logging
import uuid

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from .agent import AuditAlreadyRunning, run_audit
from .locking import audit_lock_free
from .models import AuditRun, Target
from .recording import audit_mark_dead, audit_mark_stale
from .services import audit_queue
from .targets import configured_targets, target_sync

logger = logging.getLogger(__name__)


def _audit_uuid(audit_id: str | None, task_id: str | None) -> uuid.UUID:
    for candidate in (audit_id, task_id):
        if candidate:
            try:
                return uuid.UUID(str(candidate))
            except ValueError:
                if candidate is audit_id:
                    raise ValueError(f"audit_id {audit_id!r} is not a UUID") from None
    return uuid.uuid4()


def _record_refusal(*, audit_id: uuid.UUID, target: str, error: str) -> None:
    """Leave a failed AuditRun under the id the caller follows, saying why nothing ran."""
    row = Target.objects.filter(name=target).first()
    if row is not None:
        now = timezone.now()
        AuditRun.objects.get_or_create(
            id=audit_id,
            defaults={
                "target": row,
                "status": AuditRun.Status.FAILED,
                "finished_at": now,
                "error": error,
                "task_id": str(audit_id),
            },
        )


@shared_task(
    bind=True,
    name="dbarchitect.tasks.audit_run_task",
    acks_late=True,
    # A pool process killed mid-audit (OOM, SIGKILL) puts the message back at once: its
    # redelivery finds the audit running with no lock held and marks it failed, saying why.
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def audit_run_task(
    self, target: str, verify: bool | None = None, audit_id: str | None = None
) -> str:
    """Run one audit of `target`; returns the audit id (the AuditRun says how it went)."""
    if not self.request.is_eager:
        close_old_connections()  # a worker's connection may have died since the last task
    audit_uuid = _audit_uuid(audit_id, self.request.id)
    # Running audits whose worker died (no lock held, old enough) are marked failed first.
    audit_mark_stale()
    existing = AuditRun.objects.filter(id=audit_uuid).select_related("target").first()
    if existing is not None:
        # A redelivery of a task whose worker was lost mid-audit: never run it twice.
        if existing.status == AuditRun.Status.RUNNING and audit_lock_free(existing.target.name):
            audit_mark_dead(audit=existing, why="its worker was lost")
        return str(audit_uuid)
    try:
        audit = run_audit(target=target, verify=verify, audit_id=audit_uuid)
    except AuditAlreadyRunning as exc:
        logger.warning("audit %s not run: %s", audit_uuid, exc)
        _record_refusal(audit_id=audit_uuid, target=target, error=str(exc))
        return str(audit_uuid)
    except SoftTimeLimitExceeded:
        # Raised outside the agent's own handler (e.g. while waiting for the lock).
        _record_refusal(
            audit_id=audit_uuid,
            target=target,
            error=f"time limit: the audit ran past CELERY_TASK_SOFT_TIME_LIMIT="
            f"{settings.CELERY_TASK_SOFT_TIME_LIMIT}s",
        )
        return str(audit_uuid)
    logger.info("audit %s of %s: %s", audit.id, target, audit.status)
    return str(audit.id)


@shared_task(bind=True, name="dbarchitect.tasks.audit_weekly_task")
def audit_weekly_task(self) -> list[str]:
    """Queue one audit per enabled target; workers anywhere on the broker pick them up."""
    if not self.request.is_eager:
        close_old_connections()
    target_sync()
    configured = configured_targets()
    audit_ids = []
    for target in Target.objects.filter(enabled=True, name__in=list(configured)):
        audit_ids.append(str(audit_queue(target=target.name)))
    logger.info("weekly audit: queued %d audits", len(audit_ids))
    return audit_ids
