"""Statements pg_stat_statements never records, from the server's own log.

A statement cancelled by statement_timeout never reaches pg_stat_statements; the log has
it when log_min_error_statement is `error` or lower, and every statement over
log_min_duration_statement. It is read through pg_ls_logdir() and pg_read_binary_file(),
or from a file the operator names, only the newest `max_bytes` of it; log_lines.py
parses it. Without access, the status says what to GRANT or set.
"""

import io
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import psycopg

from .log_lines import LogChunk, LogFormat, LoggedQuery, chunks_parse
from .marker import execute

# log_min_error_statement levels at which an ERROR's statement is written.
STATEMENT_LEVELS = frozenset(
    {"debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error"}
)
# A log_line_prefix naming the database (services.sh writes it).
EXAMPLE_PREFIX = "%m [%p] %q%u@%d "
READ_GRANT = "GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint) TO {role}"


class ServerLogState(StrEnum):
    """Whether an audit can read the server's log of cancelled and slow statements."""

    READY = "ready"
    NO_COLLECTOR = "no_collector"  # logging_collector off and no file named
    NO_PRIVILEGE = "no_privilege"  # pg_ls_logdir / pg_read_binary_file not granted
    UNSUPPORTED_FORMAT = "unsupported_format"  # neither stderr nor csvlog goes to files
    NO_DATABASE = "no_database"  # a stderr log whose prefix has no %d
    NOT_ENGLISH = "not_english"  # lc_messages translates the messages read here
    STATEMENTS_NOT_LOGGED = "statements_not_logged"  # log_min_error_statement above error
    READ_FAILED = "read_failed"  # the file went away or cannot be opened


@dataclass(frozen=True)
class ServerLogStatus:
    state: ServerLogState
    fix: str | None  # what to GRANT or set (or why the read failed); None when ready
    log_format: LogFormat | None = None
    prefix: str = ""
    # Over-long statements are logged from this many ms; None when they are not.
    min_duration_ms: int | None = None
    log_file: Path | None = None  # the operator's file, read in place of the log folder

    @property
    def ready(self) -> bool:
        return self.state is ServerLogState.READY


@dataclass(frozen=True)
class ServerLogQueries:
    status: ServerLogStatus
    queries: tuple[LoggedQuery, ...] = ()
    bytes_read: int = 0
    files: tuple[str, ...] = ()
    unparsed: int = 0  # statements pglast could not parse


def server_log_status(conn: psycopg.Connection, *, log_file: Path | None = None) -> ServerLogStatus:
    """Whether the log of the server `conn` is on can be read and says what is needed.

    With `log_file` (a copy or mount of the server's log the app can read) only the
    settings that shape its lines are checked, not the role's file privileges. What is
    logged is read as a session of this role and database starts with (its defaults,
    not a SET of this session)."""
    row = execute(
        conn,
        """
        SELECT current_setting('log_destination'), current_setting('logging_collector'),
               current_setting('log_line_prefix'), current_setting('lc_messages'),
               (SELECT reset_val FROM pg_settings WHERE name = 'log_min_error_statement'),
               (SELECT reset_val::int FROM pg_settings
                WHERE name = 'log_min_duration_statement'),
               has_function_privilege('pg_ls_logdir()', 'EXECUTE'),
               has_function_privilege('pg_read_binary_file(text, bigint, bigint)', 'EXECUTE'),
               quote_ident(current_user)""",
    ).fetchone()
    destination, collector, prefix, messages, error_level, min_ms, can_list, can_read, role = row
    destinations = {part.strip() for part in destination.split(",")}
    if log_file is not None:
        log_format = LogFormat.CSV if log_file.suffix == ".csv" else LogFormat.STDERR
    else:
        log_format = next((f for f in (LogFormat.CSV, LogFormat.STDERR) if f in destinations), None)
    common = {
        "log_format": log_format,
        "prefix": prefix,
        "min_duration_ms": None if min_ms < 0 else min_ms,
        "log_file": log_file,
    }
    problem = None
    if log_file is None and collector != "on":
        problem = (
            ServerLogState.NO_COLLECTOR,
            "set logging_collector = on on the server (a restart), or point "
            "DBARCHITECT_SERVER_LOG at a copy of its log the app can read",
        )
    elif log_format is None:
        problem = (
            ServerLogState.UNSUPPORTED_FORMAT,
            f"log_destination is {destination!r}: add csvlog (log_destination = 'csvlog')",
        )
    elif log_file is None and not (can_list and can_read):
        problem = (
            ServerLogState.NO_PRIVILEGE,
            f"GRANT pg_monitor TO {role}; {READ_GRANT.format(role=role)}",
        )
    elif log_format is LogFormat.STDERR and not re.search(r"%-?\d*d", prefix):
        problem = (
            ServerLogState.NO_DATABASE,
            f"log_line_prefix {prefix!r} does not name the database: set it to one with %d, "
            f"such as log_line_prefix = '{EXAMPLE_PREFIX}', or log_destination = 'csvlog'",
        )
    elif not messages.lower().startswith(("c", "posix", "en")):
        problem = (
            ServerLogState.NOT_ENGLISH,
            f"lc_messages is {messages!r}: set lc_messages = 'C' on the server "
            "(the log's messages are read in English)",
        )
    elif error_level not in STATEMENT_LEVELS:
        problem = (
            ServerLogState.STATEMENTS_NOT_LOGGED,
            f"log_min_error_statement is {error_level}: set log_min_error_statement = error "
            "so that a statement cancelled by statement_timeout is written with its text",
        )
    if problem is not None:
        return ServerLogStatus(state=problem[0], fix=problem[1], **common)
    return ServerLogStatus(state=ServerLogState.READY, fix=None, **common)


def server_log_read(
    conn: psycopg.Connection, *, status: ServerLogStatus, max_bytes: int
) -> list[LogChunk]:
    """The newest `max_bytes` of the server's log files of `status`'s format, read
    through pg_ls_logdir() and pg_read_binary_file(), oldest first."""
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
    files = execute(
        conn,
        """
        SELECT name, size FROM pg_ls_logdir() ORDER BY modification DESC, name DESC""",
    ).fetchall()
    csv_files = status.log_format is LogFormat.CSV
    files = [
        (n, size)
        for n, size in files
        if n.endswith(".csv") == csv_files and not n.endswith(".json")
    ]
    directory = execute(conn, "SELECT current_setting('log_directory')").fetchone()[0]
    chunks, budget = [], max_bytes
    for name, size in files:
        if budget <= 0:
            break
        offset = max(0, size - budget)
        data = execute(
            conn,
            "SELECT pg_read_binary_file(%s, %s, %s)",
            [f"{directory.rstrip('/')}/{name}", offset, size - offset],
        ).fetchone()[0]
        budget -= len(data)
        chunks.append(
            LogChunk(
                name=name,
                text=bytes(data).decode(errors="replace"),
                whole=offset == 0,
                size=len(data),
            )
        )
    return chunks[::-1]


def log_file_read(path: Path, *, max_bytes: int) -> LogChunk:
    """The last `max_bytes` of a log file the app can read itself."""
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
    with path.open("rb") as file:
        size = file.seek(0, io.SEEK_END)
        offset = max(0, size - max_bytes)
        file.seek(offset)
        data = file.read(max_bytes)
    return LogChunk(
        name=str(path), text=data.decode(errors="replace"), whole=offset == 0, size=len(data)
    )


def server_log_queries(
    conn: psycopg.Connection, *, max_bytes: int, log_file: Path | None = None
) -> ServerLogQueries:
    """The timed-out and over-long statements of the database `conn` is on, from its
    server's log (or `log_file`), or the status saying what to grant or set."""
    status = server_log_status(conn, log_file=log_file)
    if not status.ready:
        return ServerLogQueries(status=status)
    try:
        if log_file is not None:
            chunks = [log_file_read(log_file, max_bytes=max_bytes)]
        else:
            chunks = server_log_read(conn, status=status, max_bytes=max_bytes)
    except (OSError, psycopg.Error) as exc:
        where = f"the log file {log_file}" if log_file is not None else "the server's log"
        why = exc.strerror if isinstance(exc, OSError) else str(exc).strip()
        failed = replace(status, state=ServerLogState.READ_FAILED, fix=f"{where}: {why}")
        return ServerLogQueries(status=failed)
    database = execute(conn, "SELECT current_database()").fetchone()[0]
    queries, unparsed = chunks_parse(
        chunks, log_format=status.log_format, prefix=status.prefix, database=database
    )
    return ServerLogQueries(
        status=status,
        queries=tuple(queries),
        bytes_read=sum(chunk.size for chunk in chunks),
        files=tuple(chunk.name for chunk in chunks),
        unparsed=unparsed,
    )
