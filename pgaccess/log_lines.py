"""Log lines of a PostgreSQL server, stderr or csvlog, parsed: the statements cancelled by
statement_timeout (an ERROR and its STATEMENT) and those over log_min_duration_statement
(a `duration:` line), grouped by their normalized shape (constants as $n, as
pg_stat_statements shows them). Pure: text in, statements out; server_log.py reads it.
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from pglast.parser import ParseError, fingerprint, normalize

from .marker import MARKER

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


class LogFormat(StrEnum):
    STDERR = "stderr"
    CSV = "csvlog"


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
    chunks: Iterable[LogChunk], *, log_format: LogFormat, prefix: str, database: str
) -> tuple[list[LoggedQuery], int]:
    """The grouped statements of `database` in log text of `log_format` (stderr lines
    written with log_line_prefix `prefix`)."""

    def entries() -> Iterator[LogEntry]:
        for chunk in chunks:
            if log_format is LogFormat.CSV:
                yield from csv_entries(chunk.text, whole=chunk.whole)
            else:
                yield from stderr_entries(chunk.text, prefix=prefix, whole=chunk.whole)

    return statements_group(logged_statements(entries(), database=database))
