"""Writes the admin and the API call to start work on the agent: queue an audit."""

import uuid

from django.db import transaction
from kombu.exceptions import OperationalError

from .targets import target_get


def audit_queue(*, target: str, verify: bool | None = None) -> uuid.UUID:
    """Queue one audit of `target` once the caller's transaction commits; returns its id.

    The id is made here so the caller can follow the audit at once: the Celery task is queued
    with it as task id and the agent creates the AuditRun with it. Raises kombu's
    OperationalError when the broker cannot be reached, UnknownTarget (a ValueError) for a
    target that is not configured.
    """
    row = target_get(name=target)
    if not row.enabled:
        raise ValueError(f"Target {target!r} is disabled; enable it in the admin to audit it")
    from .tasks import audit_run_task

    audit_id = uuid.uuid4()
    kwargs = {"target": target, "verify": verify, "audit_id": str(audit_id)}

    def publish() -> None:
        try:
            audit_run_task.apply_async(kwargs=kwargs, task_id=str(audit_id))
        except RuntimeError as exc:  # Celery's result store gave up reconnecting to Redis
            raise OperationalError(str(exc).strip()) from exc

    transaction.on_commit(publish)
    return audit_id
