"""Waiting on a Celery worker in tests: a bound on how long, never a speed assertion."""

import time


def wait_for(predicate, *, seconds: float, what: str):
    """Poll predicate() every half second until it is truthy and return that value; fail
    naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def audits_ended(audit_ids) -> list | None:
    """The audits of these ids once every one has an AuditRun that is no longer running,
    else None (for wait_for)."""
    from dbarchitect.models import AuditRun

    audits = list(AuditRun.objects.filter(id__in=audit_ids))
    done = [a for a in audits if a.status != AuditRun.Status.RUNNING]
    return audits if len(done) == len(audit_ids) else None
