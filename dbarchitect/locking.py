"""One audit per target at a time: a session advisory lock on the app's own database.

The lock lives on a connection of its own, so it is held exactly as long as the audit's
process is alive: a killed worker releases it with its connection, and the audit it left
`running` is recognised as dead (`audit_mark_stale`).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from .collector import MARKER
from .targets import target_connection

# First half of the two-int advisory lock key: "dbar" in ASCII, so other users of advisory
# locks on the same database do not collide with ours.
LOCK_NAMESPACE = 0x64626172


class AuditAlreadyRunning(Exception):
    """Another audit of the same target holds the lock."""


def _app_connect() -> psycopg.Connection:
    # The app database, as Django sees it (under tests: the test database).
    return psycopg.connect(
        target_connection("default").conninfo, autocommit=True, application_name="dbarchitect"
    )


def lock_try(conn: psycopg.Connection, target: str) -> bool:
    row = conn.execute(
        f"{MARKER} SELECT pg_try_advisory_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, target]
    ).fetchone()
    return bool(row and row[0])


def lock_release(conn: psycopg.Connection, target: str) -> None:
    conn.execute(f"{MARKER} SELECT pg_advisory_unlock(%s, hashtext(%s))", [LOCK_NAMESPACE, target])


@contextmanager
def audit_lock(target: str) -> Iterator[None]:
    """Hold the target's audit lock for the block, or raise AuditAlreadyRunning at once."""
    conn = _app_connect()
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
    with _app_connect() as conn:
        if not lock_try(conn, target):
            return False
        lock_release(conn, target)
        return True
