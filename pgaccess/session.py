"""One way to open a connection to a target: purpose, timeouts, read-only, application name.

The architect's sessions mark every statement (see marker.py). Ask-the-database opens
its sessions here too, unmarked: it runs the staff's SQL as written, and the workload
shows it as any client's query.
"""

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum

import psycopg
from django.conf import settings
from psycopg.conninfo import conninfo_to_dict

from .extensions import extensions_on_path, hypopg_problem
from .marker import MarkedCursor
from .qualstats import qualstats_pause
from .scrub import conninfo_describe, secrets_scrub
from .targets import DEFAULT_TARGET, database_conninfo, target_connection

logger = logging.getLogger(__name__)

APPLICATION_NAME = "dbarchitect"


class Savepoint(StrEnum):
    """The savepoints the architect rolls back to, by what they guard."""

    ATTEMPT = "dbarchitect_attempt"  # one way of planning a query (generic_plan)
    SAMPLE = "dbarchitect_sample"  # one read of sampled values
    COSTING = "dbarchitect_costing"  # one EXPLAIN under hypothetical indexes
    HYPOTHETICAL = "dbarchitect_hypo"  # one hypothetical index HypoPG may refuse (hypopg)


class TargetUnavailable(Exception):
    """The target database could not be reached; the message names it, never its password."""

    def __init__(self, target: str, purpose: str, where: str, reason: str) -> None:
        self.target = target
        self.purpose = purpose
        self.where = where
        self.reason = reason
        super().__init__(target, purpose, where, reason)  # args rebuild it (pickle, Celery)

    def __str__(self) -> str:
        return (
            f"target {self.target!r} is unreachable for {self.purpose} ({self.where}): "
            f"{self.reason}"
        )


def savepoint(conn: psycopg.Connection, name: Savepoint) -> AbstractContextManager:
    """A block that a failure rolls back to `name`, leaving the transaction usable."""
    return conn.transaction(savepoint_name=str(name))


def session_connect(
    target: str,
    *,
    purpose: str,
    database: str = "default",
    autocommit: bool = True,
    read_only: bool = False,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int | None = None,
    application_name: str = APPLICATION_NAME,
    mark: bool = True,
) -> psycopg.Connection:
    """A connection to target `target` with the architect's bounded waits.

    `purpose` ("audit", "verify", "apply"...) labels the error and the log line;
    `database` is the Django database the default target is reached through (`readonly`
    for ask-the-database). Timeouts default to DBARCHITECT_STATEMENT_TIMEOUT_MS and
    DBARCHITECT_LOCK_TIMEOUT_MS; `read_only` makes every transaction READ ONLY. Raises
    UnknownTarget, or TargetUnavailable with a message free of secrets.
    """
    if target == DEFAULT_TARGET:
        conninfo = database_conninfo(database)
    else:
        conninfo = target_connection(target).conninfo
    statement_ms = statement_timeout_ms or settings.DBARCHITECT_STATEMENT_TIMEOUT_MS
    lock_ms = lock_timeout_ms or settings.DBARCHITECT_LOCK_TIMEOUT_MS
    timeout_s = settings.DBARCHITECT_CONNECT_TIMEOUT_S
    flags = [f"-c statement_timeout={int(statement_ms)}", f"-c lock_timeout={int(lock_ms)}"]
    if read_only:
        flags.append("-c default_transaction_read_only=on")
    try:
        own = conninfo_to_dict(conninfo).get("options") or ""
        conn = psycopg.connect(
            conninfo,
            autocommit=autocommit,
            application_name=application_name,
            connect_timeout=timeout_s,
            options=" ".join(filter(None, [own, *flags])),
            cursor_factory=MarkedCursor if mark else psycopg.Cursor,
        )
    except psycopg.Error as exc:
        reason = secrets_scrub(str(exc)).strip()
        if isinstance(exc, psycopg.errors.ConnectionTimeout):
            reason += f" (no answer within DBARCHITECT_CONNECT_TIMEOUT_S={timeout_s}s)"
        raise TargetUnavailable(
            target=target,
            purpose=purpose,
            where=secrets_scrub(conninfo_describe(conninfo)),
            reason=reason,
        ) from None
    if read_only:
        conn.read_only = True
    logger.debug("connected to target %s for %s", target, purpose)
    return conn


@contextmanager
def target_session(target: str, *, purpose: str) -> Iterator[psycopg.Connection]:
    """An audit's session for a block: hypopg's schema reachable, its own statements kept
    out of pg_qualstats, and no hypothetical index left behind when it closes."""
    conn = session_connect(target, purpose=purpose)
    try:
        extensions_on_path(conn)
        qualstats_pause(conn)
        yield conn
    finally:
        if not conn.closed and not conn.broken:
            try:
                if hypopg_problem(conn) is None:
                    conn.execute("SELECT hypopg_reset()")
            except psycopg.Error:
                logger.warning("hypopg_reset failed on target %s", target, exc_info=True)
        conn.close()
