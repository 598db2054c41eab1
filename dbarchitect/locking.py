"""One audit per target at a time: a session advisory lock on the app's own database.

The lock lives on a connection of its own, so it is held exactly as long as the audit's
process is alive: a killed worker releases it with its connection, and the audit it left
`running` is recognised as dead (`audit_mark_stale`). The key is the target's name
(pgaccess.locks lays it out).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from pgaccess.locks import lock_release, lock_try
from pgaccess.session import session_connect
from pgaccess.targets import DEFAULT_TARGET


class AuditAlreadyRunning(Exception):
    """Another audit of the same target holds the lock."""


@contextmanager
def audit_lock(target: str) -> Iterator[None]:
    """Hold the target's audit lock for the block, or raise AuditAlreadyRunning at once."""
    # The app database, as Django sees it (under tests: the test database).
    conn = session_connect(DEFAULT_TARGET, purpose="the audit lock")
    try:
        if not lock_try(conn, target):
            raise AuditAlreadyRunning(
                f"an audit of target {target!r} is already running; wait for it to finish "
                "(see the running audit in the admin) and try again"
            )
        try:
            yield
        finally:
            lock_release(conn, target)
    finally:
        conn.close()


def audit_lock_free(target: str) -> bool:
    """True when no live process holds the target's audit lock (checked by taking it)."""
    with session_connect(DEFAULT_TARGET, purpose="the audit lock") as conn:
        if not lock_try(conn, target):
            return False
        lock_release(conn, target)
        return True
