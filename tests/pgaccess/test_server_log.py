from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgaccess.log_lines import (
    LogFormat,
    LoggedKind,
    chunks_parse,
    csv_entries,
    logged_statements,
    prefix_pattern,
    stderr_entries,
)
from pgaccess.server_log import (
    ServerLogState,
    log_file_read,
    server_log_queries,
    server_log_read,
    server_log_status,
)
from tests.dbarchitect.private_server import private_server

# Long enough to see the log whole; the bounded reads are tested with less.
ALL = 10_000_000
LOGGING = {
    "logging_collector": "on",
    "log_min_error_statement": "error",
    "log_min_duration_statement": "200",
}
STDERR_PREFIX = "%m [%p] %q%u@%d "
# Two runs of one shape time out (different constants), one over several lines.
TIMES_OUT = "SELECT pg_sleep(%s), 'it''s' FROM generate_series(1, 2) WHERE 1 = 1"
MULTI_LINE = "SELECT n, pg_sleep(1)\nFROM generate_series(1, %s) AS n\nWHERE n > 0"
SLOW = "SELECT pg_sleep(0.3), 'slow' AS label"  # no parameter: the simple protocol


@dataclass(frozen=True)
class Logged:
    url: str
    data: Path
    log_format: LogFormat


def _workload(url: str, database: str) -> None:
    with psycopg.connect(url.rsplit("/", 1)[0] + f"/{database}", autocommit=True) as conn:
        conn.execute("SET statement_timeout = 150")
        for statement, params in [
            (TIMES_OUT, [1]),
            (TIMES_OUT.replace("1 = 1", "2 = 2"), [2]),
            (MULTI_LINE, [3]),
            ("/* dbarchitect */ SELECT pg_sleep(1)", None),
        ]:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(statement, params)
        conn.execute("SET statement_timeout = 0")
        conn.execute(SLOW)
        conn.execute("SELECT pg_sleep(%s)", [0.25])


@pytest.fixture(scope="module", params=[LogFormat.CSV, LogFormat.STDERR])
def logged(request, bindir) -> Iterator[Logged]:
    """A server that wrote a workload's timeouts and slow statements to its log, in
    database shop, and one timeout in database other; csvlog keeps the default prefix."""
    settings = {**LOGGING, "log_destination": str(request.param)}
    if request.param is LogFormat.STDERR:
        settings["log_line_prefix"] = f"'{STDERR_PREFIX}'"
    with private_server(bindir, settings=settings) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
            conn.execute("CREATE DATABASE other")
            conn.execute("CREATE ROLE auditor LOGIN")
        _workload(server.url("shop"), "shop")
        with psycopg.connect(server.url("other"), autocommit=True) as conn:
            conn.execute("SET statement_timeout = 100")
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(1), 'elsewhere'")
        yield Logged(url=server.url("shop"), data=server.data, log_format=request.param)


def _by_shape(result):
    return {query.query: query for query in result.queries}


def test_timed_out_and_slow_statements_are_grouped_by_shape(logged):
    with psycopg.connect(logged.url) as conn:
        result = server_log_queries(conn, max_bytes=ALL)
    assert result.status.ready and result.status.log_format is logged.log_format
    assert result.status.min_duration_ms == 200 and result.unparsed == 0
    shapes = _by_shape(result)
    timed_out = shapes["SELECT pg_sleep($1), $2 FROM generate_series($3, $4) WHERE $5 = $6"]
    assert (timed_out.timeouts, timed_out.slow_runs, timed_out.longest_ms) == (2, 0, None)
    assert "2 = 2" in timed_out.example
    multi = shapes["SELECT n, pg_sleep($2)\nFROM generate_series($3, $1) AS n\nWHERE n > $4"]
    assert multi.timeouts == 1 and multi.example == MULTI_LINE.replace("%s", "$1")
    slow = shapes["SELECT pg_sleep($1), $2 AS label"]
    assert slow.timeouts == 0 and slow.slow_runs == 1 and 300 <= slow.longest_ms < 1000
    extended = shapes["SELECT pg_sleep($1)"]
    assert extended.slow_runs == 1 and 250 <= extended.longest_ms < 1000
    # The architect's own statement and the other database's are not there.
    assert len(shapes) == 4 and "elsewhere" not in str(shapes)
    # The most timed-out shape comes first.
    assert result.queries[0] is timed_out


def test_the_log_is_read_as_a_file_the_operator_points_at(logged):
    with psycopg.connect(logged.url) as conn:
        from_sql = server_log_queries(conn, max_bytes=ALL)
        suffix = ".csv" if logged.log_format is LogFormat.CSV else ".log"
        [path] = [p for p in (logged.data / "log").iterdir() if p.suffix == suffix]
        from_file = server_log_queries(conn, max_bytes=ALL, log_file=path)
    assert from_file.status.ready and from_file.files == (str(path),)
    assert _by_shape(from_file).keys() == _by_shape(from_sql).keys()
    assert from_file.bytes_read == path.stat().st_size == from_sql.bytes_read


def test_a_bounded_read_keeps_the_newest_whole_entries_only(logged):
    with psycopg.connect(logged.url) as conn:
        status = server_log_status(conn)
        [whole] = server_log_read(conn, status=status, max_bytes=ALL)
        # The last 700 bytes: the slow statements' lines, the first of them cut.
        [tail] = server_log_read(conn, status=status, max_bytes=700)
    assert tail.size == 700 and not tail.whole and whole.text.endswith(tail.text)
    entries = list(_entries(whole, status)), list(_entries(tail, status))
    assert 0 < len(entries[1]) < len(entries[0])
    assert entries[1] == entries[0][-len(entries[1]) :]
    parsing = {"log_format": status.log_format, "prefix": status.prefix, "database": "shop"}
    tail_shapes = {q.query for q in chunks_parse([tail], **parsing)[0]}
    assert tail_shapes and tail_shapes < {q.query for q in chunks_parse([whole], **parsing)[0]}


def _entries(chunk, status):
    if status.log_format is LogFormat.CSV:
        return csv_entries(chunk.text, whole=chunk.whole)
    return stderr_entries(chunk.text, prefix=status.prefix, whole=chunk.whole)


def test_a_role_without_the_functions_is_told_the_grants_that_work(logged):
    auditor = logged.url.replace("postgres@", "auditor@")
    with psycopg.connect(auditor) as conn:
        status = server_log_status(conn)
    assert status.state is ServerLogState.NO_PRIVILEGE
    assert status.fix == (
        "GRANT pg_monitor TO auditor; "
        "GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint) TO auditor"
    )
    with psycopg.connect(logged.url, autocommit=True) as conn:
        for grant in status.fix.split("; "):
            conn.execute(grant)
    try:
        with psycopg.connect(auditor) as conn:
            result = server_log_queries(conn, max_bytes=ALL)
        assert result.status.ready and len(result.queries) == 4
    finally:
        with psycopg.connect(logged.url, autocommit=True) as conn:
            conn.execute("REVOKE pg_monitor FROM auditor")
            conn.execute(
                "REVOKE EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint) FROM auditor"
            )


def test_a_stderr_log_without_the_database_in_its_prefix_is_refused(logged, tmp_path):
    with psycopg.connect(logged.url) as conn:
        prefix = conn.execute("SHOW log_line_prefix").fetchone()[0]
        status = server_log_status(conn, log_file=tmp_path / "postgresql.log")
    if logged.log_format is LogFormat.STDERR:
        assert status.ready and prefix == STDERR_PREFIX
        return
    assert prefix == "%m [%p] "
    assert status.state is ServerLogState.NO_DATABASE
    assert "log_line_prefix = '%m [%p] %q%u@%d '" in status.fix


def test_a_server_without_the_logging_collector_says_what_to_set(bindir):
    with private_server(bindir) as server, psycopg.connect(server.url("postgres")) as conn:
        result = server_log_queries(conn, max_bytes=ALL)
    assert result.status.state is ServerLogState.NO_COLLECTOR
    assert (
        "logging_collector = on" in result.status.fix
        and "DBARCHITECT_SERVER_LOG" in result.status.fix
    )
    assert result.queries == ()


def test_the_prefix_pattern_reads_padded_escapes_and_sessionless_lines():
    pattern = prefix_pattern("%t [%-6p] %q db=%-10d ")
    line = pattern.match("2026-12-04 18:00:00 UTC [123   ]  db=shop       ERROR:  boom")
    assert line["database"].strip() == "shop" and line["severity"] == "ERROR"
    postmaster = pattern.match("2026-12-04 18:00:00 UTC [123   ] LOG:  ready")
    assert postmaster["database"] is None and postmaster["message"] == "ready"


def test_a_statement_line_without_its_timeout_is_not_a_timeout():
    text = (
        "2026-12-04 18:00:00 UTC [1] u@shop ERROR:  division by zero\n"
        "2026-12-04 18:00:00 UTC [1] u@shop STATEMENT:  SELECT 1/0\n"
        "2026-12-04 18:00:01 UTC [1] u@shop ERROR:  canceling statement due to statement timeout\n"
        "2026-12-04 18:00:01 UTC [1] u@shop CONTEXT:  PL/pgSQL function f() line 3\n"
        "2026-12-04 18:00:01 UTC [1] u@shop STATEMENT:  SELECT f()\n"
    )
    found = list(logged_statements(stderr_entries(text, prefix=STDERR_PREFIX), database="shop"))
    assert [(s.kind, s.text) for s in found] == [(LoggedKind.TIMED_OUT, "SELECT f()")]


def test_a_file_read_is_bounded_and_rejects_a_zero_budget(tmp_path):
    path = tmp_path / "postgresql.log"
    path.write_bytes(b"x" * 5000)
    chunk = log_file_read(path, max_bytes=100)
    assert (chunk.size, chunk.whole) == (100, False)
    with pytest.raises(ValueError, match="max_bytes must be at least 1"):
        log_file_read(path, max_bytes=0)


def test_a_log_file_that_cannot_be_read_says_so(logged, tmp_path):
    with psycopg.connect(logged.url) as conn:
        result = server_log_queries(conn, max_bytes=ALL, log_file=tmp_path / "gone.csv")
    assert result.status.state is ServerLogState.READ_FAILED
    assert result.status.fix == f"the log file {tmp_path / 'gone.csv'}: No such file or directory"


def test_a_json_only_log_says_to_add_csvlog(bindir):
    settings = {"logging_collector": "on", "log_destination": "jsonlog"}
    with (
        private_server(bindir, settings=settings) as server,
        psycopg.connect(server.url("postgres")) as conn,
    ):
        status = server_log_status(conn)
    assert status.state is ServerLogState.UNSUPPORTED_FORMAT
    assert status.fix == "log_destination is 'jsonlog': add csvlog (log_destination = 'csvlog')"


def test_a_database_whose_errors_are_logged_without_statements_says_what_to_set(logged):
    other = logged.url.rsplit("/", 1)[0] + "/other"
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("ALTER DATABASE other SET log_min_error_statement = 'panic'")
    try:
        with psycopg.connect(other) as conn:
            status = server_log_status(conn)
        assert status.state is ServerLogState.STATEMENTS_NOT_LOGGED
        assert status.fix.startswith("log_min_error_statement is panic: set ")
        # A SET in the audit's own session is not what the workload's sessions log with.
        with psycopg.connect(logged.url) as conn:
            conn.execute("SET log_min_error_statement = 'panic'")
            assert server_log_status(conn).ready
    finally:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute("ALTER DATABASE other RESET log_min_error_statement")
