"""Statements pg_stat_statements never records, from the server's own log.

A statement cancelled by statement_timeout never reaches pg_stat_statements; the log has
it when log_min_error_statement is `error` or lower (the ERROR line and its STATEMENT),
and every statement over log_min_duration_statement (a `duration:` line). They are read
through pg_ls_logdir() and pg_read_binary_file(), or from a file the operator names, in
the stderr or csvlog format, only the newest `max_bytes` of it, and grouped by their
normalized shape (constants as $n, as pg_stat_statements shows them).
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import psycopg
from pglast.parser import ParseError, fingerprint, normalize

from .marker import MARKER, execute

TIMEOUT_MESSAGE = "canceling statement due to statement timeout"
# "duration: 1234.567 ms  statement: ..." (simple protocol) or "... execute <name>: ..."
# (extended protocol); parse and bind phases are not executions and are left out.
DURATION = re.compile(
    r"duration: (?P<ms>[0-9.]+) ms  (?:statement|execute [^:]*): (?P<sql>.*)", re.S
)
# Where a csvlog record starts: its timestamp, first column.
CSV_RECORD_START = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.M)
# The severities a stderr line of the server starts its message with.
SEVERITIES = (
    "DEBUG1|DEBUG2|DEBUG3|DEBUG4|DEBUG5|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC"
    "|DETAIL|HINT|QUERY|CONTEXT|LOCATION|STATEMENT"
)
# Lines that belong to the error report before them (an ERROR's STATEMENT comes after these).
REPORT_PARTS = frozenset({"DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION"})
# log_line_prefix escapes (with an optional padding such as %-10d), and what each matches.
PREFIX_ESCAPE = re.compile(r"%(-?\d+)?([a-zA-Z%])")
PREFIX_PATTERNS = {"d": r"(?P<database>.*?)", "p": r"(?P<pid>\d+)", "%": "%"}
# log_min_error_statement levels at which an ERROR's statement is written.
STATEMENT_LEVELS = frozenset(
    {"debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error"}
)
EXAMPLE_PREFIX = "%m [%p] %q%u@%d "
READ_GRANT = "GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint) TO {role}"


class LogFormat(StrEnum):
    STDERR = "stderr"
    CSV = "csvlog"


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


class LoggedKind(StrEnum):
    TIMED_OUT = "timed_out"
    SLOW = "slow"


@dataclass(frozen=True)
class LogEntry:
    """One message of the log: its severity, text and, where the format says, database."""

    severity: str
    message: str
    database: str | None = None
    pid: str | None = None
    statement: str | None = None  # csvlog's query column


@dataclass(frozen=True)
class LoggedStatement:
    kind: LoggedKind
    text: str
    duration_ms: float | None = None


@dataclass(frozen=True)
class LoggedQuery:
    """One normalized statement shape of the log, and how it fared."""

    fingerprint: str  # pglast's fingerprint: the same for the same shape, any constants
    query: str  # constants as $n
    example: str  # the last text logged, with its constants
    timeouts: int
    slow_runs: int
    # The longest completed run logged; a timed-out run lasted at least statement_timeout.
    longest_ms: float | None


@dataclass(frozen=True)
class LogChunk:
    name: str
    text: str
    whole: bool  # read from the file's start: its first line is a whole one
    size: int  # bytes read


@dataclass(frozen=True)
class ServerLogQueries:
    status: ServerLogStatus
    queries: tuple[LoggedQuery, ...] = ()
    bytes_read: int = 0
    files: tuple[str, ...] = ()
    unparsed: int = 0  # statements pglast could not parse


def prefix_pattern(prefix: str) -> re.Pattern:
    """A regular expression for a stderr line written with log_line_prefix `prefix`: the
    part after %q is optional (processes without a session stop there)."""
    parts, optional, position = [], [], 0
    current = parts
    for match in PREFIX_ESCAPE.finditer(prefix):
        current.append(re.escape(prefix[position : match.start()]))
        escape = match.group(2)
        position = match.end()
        if escape == "q":
            current = optional
            continue
        pattern = PREFIX_PATTERNS.get(escape, r".*?")
        current.append(rf"\s*{pattern}\s*" if match.group(1) else pattern)
    current.append(re.escape(prefix[position:]))
    head = "".join(parts) + (f"(?:{''.join(optional)})?" if optional else "")
    return re.compile(rf"^{head}(?P<severity>{SEVERITIES}):  (?P<message>.*)$")


def stderr_entries(text: str, *, prefix: str, whole: bool = True) -> Iterator[LogEntry]:
    """The entries of stderr-format log text. A message's further lines start with a tab;
    text read from the middle of a file (`whole` False) starts at its first whole line."""
    pattern = prefix_pattern(prefix)
    entry: dict | None = None
    if not whole:
        text = text[text.find("\n") + 1 :] if "\n" in text else ""
    for line in text.split("\n"):
        if line.startswith("\t") and entry is not None:
            entry["message"] += "\n" + line[1:]
            continue
        match = pattern.match(line)
        if entry is not None:
            yield LogEntry(**entry)
            entry = None
        if match is None:
            continue
        groups = match.groupdict()
        entry = {
            "severity": groups["severity"],
            "message": groups["message"],
            "database": groups.get("database"),
            "pid": groups.get("pid"),
        }
    if entry is not None:
        yield LogEntry(**entry)


def csv_entries(text: str, *, whole: bool = True) -> Iterator[LogEntry]:
    """The entries of csvlog text (PostgreSQL 13+ columns); text read from the middle of
    a file starts at its first whole record."""
    if not whole:
        start = CSV_RECORD_START.search(text, text.find("\n") + 1 if "\n" in text else len(text))
        text = text[start.start() :] if start else ""
    for row in csv.reader(io.StringIO(text, newline="")):
        if len(row) < 20:
            continue  # a record cut by the end of what was read
        yield LogEntry(
            severity=row[11],
            message=row[13],
            database=row[2],
            pid=row[3],
            statement=row[19] or None,
        )


def logged_statements(entries: Iterable[LogEntry], *, database: str) -> Iterator[LoggedStatement]:
    """The timed-out and over-long statements of `database` among `entries`; the
    architect's own (marked) are left out."""
    pending = False  # a statement timeout whose STATEMENT line is still to come (stderr)
    for entry in entries:
        if entry.database != database:
            pending = False
            continue
        found = None
        if entry.severity == "ERROR" and entry.message == TIMEOUT_MESSAGE:
            pending = entry.statement is None
            if entry.statement:
                found = LoggedStatement(kind=LoggedKind.TIMED_OUT, text=entry.statement)
        elif entry.severity == "STATEMENT" and pending:
            pending = False
            found = LoggedStatement(kind=LoggedKind.TIMED_OUT, text=entry.message)
        elif entry.severity in REPORT_PARTS:
            continue
        else:
            pending = False
            duration = DURATION.match(entry.message) if entry.severity == "LOG" else None
            if duration:
                found = LoggedStatement(
                    kind=LoggedKind.SLOW,
                    text=duration.group("sql"),
                    duration_ms=float(duration.group("ms")),
                )
        if found is not None and not found.text.lstrip().startswith(MARKER):
            yield found


def statements_group(statements: Iterable[LoggedStatement]) -> tuple[list[LoggedQuery], int]:
    """One LoggedQuery per normalized shape, most timeouts first, then the longest; and
    how many statements could not be parsed (they are not grouped)."""
    groups: dict[str, dict] = {}
    unparsed = 0
    for statement in statements:
        try:
            key = fingerprint(statement.text)
            shape = normalize(statement.text)
        except ParseError:
            unparsed += 1
            continue
        group = groups.setdefault(key, {"query": shape, "timeouts": 0, "slow": 0, "longest": None})
        group["example"] = statement.text
        if statement.kind is LoggedKind.TIMED_OUT:
            group["timeouts"] += 1
        else:
            group["slow"] += 1
            group["longest"] = max(group["longest"] or 0.0, statement.duration_ms)
    queries = [
        LoggedQuery(
            fingerprint=key,
            query=group["query"],
            example=group["example"],
            timeouts=group["timeouts"],
            slow_runs=group["slow"],
            longest_ms=group["longest"],
        )
        for key, group in groups.items()
    ]
    queries.sort(key=lambda q: (-q.timeouts, -(q.longest_ms or 0.0), q.fingerprint))
    return queries, unparsed


def chunks_parse(
    chunks: Iterable[LogChunk], *, status: ServerLogStatus, database: str
) -> tuple[list[LoggedQuery], int]:
    """The grouped statements of `database` in log text of `status`'s format."""

    def entries() -> Iterator[LogEntry]:
        for chunk in chunks:
            if status.log_format is LogFormat.CSV:
                yield from csv_entries(chunk.text, whole=chunk.whole)
            else:
                yield from stderr_entries(chunk.text, prefix=status.prefix, whole=chunk.whole)

    return statements_group(logged_statements(entries(), database=database))


def server_log_status(conn: psycopg.Connection, *, log_file: Path | None = None) -> ServerLogStatus:
    """Whether the log of the server `conn` is on can be read and says what is needed.

    With `log_file` (a copy or mount of the server's log the app can read) only the
    settings that shape its lines are checked, not the role's file privileges."""
    row = execute(
        conn,
        """
        SELECT current_setting('log_destination'), current_setting('logging_collector'),
               current_setting('log_line_prefix'), current_setting('lc_messages'),
               current_setting('log_min_error_statement'),
               (SELECT setting::int FROM pg_settings
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
    queries, unparsed = chunks_parse(chunks, status=status, database=database)
    return ServerLogQueries(
        status=status,
        queries=tuple(queries),
        bytes_read=sum(chunk.size for chunk in chunks),
        files=tuple(chunk.name for chunk in chunks),
        unparsed=unparsed,
    )
