"""Read-only sessions kept between questions, so an answer does not start a backend.

A new connection costs a fork and cold catalog caches on the server: about 10 ms of a
55 ms answer, and more under load. A process keeps a few idle read-only sessions per
target and hands one to each question. Between two questions a session is rolled back
and `DISCARD ALL`ed (settings, prepared statements, advisory locks, temporary objects:
nothing of one question reaches the next, whoever asked it); one that is broken, not idle,
older than NLSQL_SESSION_MAX_AGE_S or no longer answering is closed instead.
"""

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from django.conf import settings
from psycopg.pq import TransactionStatus

from pgaccess.targets import DEFAULT_TARGET, database_conninfo, target_connection

# The most idle sessions a process keeps per target: one per serving thread is enough.
MAX_IDLE_PER_TARGET = 4


@dataclass
class _Idle:
    conn: psycopg.Connection
    opened: float  # time.monotonic() when it was connected


_lock = threading.Lock()
# Keyed by the target and the connection string it has now, so a changed URL or role
# (DBARCHITECT_TARGETS, the readonly database) never gets an old session.
_idle: dict[tuple[str, str], list[_Idle]] = defaultdict(list)


def _key(target: str) -> tuple[str, str]:
    if target == DEFAULT_TARGET:
        return target, database_conninfo("readonly")
    return target, target_connection(target).conninfo


def _usable(idle: _Idle) -> bool:
    """Young enough, and still answering (the server may have closed it meanwhile)."""
    if time.monotonic() - idle.opened > settings.NLSQL_SESSION_MAX_AGE_S or idle.conn.broken:
        return False
    try:
        idle.conn.execute("SELECT 1")
        idle.conn.rollback()
    except psycopg.Error:
        return False
    return True


def _take(key: tuple[str, str]) -> _Idle | None:
    while True:
        with _lock:
            if not _idle[key]:
                return None
            idle = _idle[key].pop()
        if _usable(idle):
            return idle
        idle.conn.close()


def _give_back(key: tuple[str, str], idle: _Idle) -> None:
    """Keep the session for the next question, cleaned; close it when it cannot be."""
    conn = idle.conn
    try:
        conn.rollback()
        if conn.info.transaction_status != TransactionStatus.IDLE:
            raise psycopg.InterfaceError("session not idle after rollback")
        conn.autocommit = True
        conn.execute("DISCARD ALL")
        conn.autocommit = False
    except psycopg.Error:
        conn.close()
        return
    with _lock:
        if len(_idle[key]) < MAX_IDLE_PER_TARGET:
            _idle[key].append(idle)
            return
    conn.close()


@contextmanager
def kept_session(
    target: str, connect: Callable[[str], psycopg.Connection]
) -> Iterator[psycopg.Connection]:
    """A read-only session to `target` for one question: a kept one, or `connect(target)`."""
    key = _key(target)
    idle = _take(key) or _Idle(connect(target), time.monotonic())
    try:
        yield idle.conn
    finally:
        # A failed or refused question leaves a session that rolls back like any other.
        _give_back(key, idle)


def kept_sessions_close() -> None:
    """Close every kept session (a database about to be dropped, a process shutting down)."""
    with _lock:
        kept = [idle for sessions in _idle.values() for idle in sessions]
        _idle.clear()
    for idle in kept:
        idle.conn.close()
