from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgaccess.qualstats import (
    CONSTANT_BYTES,
    EvalType,
    QualstatsState,
    qualstats_pause,
    qualstats_read,
    qualstats_status,
)
from tests.dbarchitect.private_server import private_server

from .servers import qualstats_server

ROWS = 20_000
TABLE = [
    """CREATE TABLE ticket (
        id int PRIMARY KEY, status text NOT NULL, n int NOT NULL, note text, urgent bool)""",
    # One ticket in 100 is open: 'open' is the rare constant, 'closed' the common one.
    f"""INSERT INTO ticket
        SELECT g, CASE WHEN g % 100 = 0 THEN 'open' ELSE 'closed' END, g, 'note ' || g,
               g % 50 = 0
        FROM generate_series(1, {ROWS}) AS g""",
    "ANALYZE ticket",
]
BY_STATUS = "SELECT count(*) FROM ticket WHERE status = %s"
BY_RANGE = "SELECT count(*) FROM ticket WHERE n BETWEEN %s AND %s"
BY_ID = "SELECT note FROM ticket WHERE id = %s"
BY_NOTE = "SELECT count(*) FROM ticket WHERE note = %s"
BY_LIST = "SELECT count(*) FROM ticket WHERE status IN (%s, %s)"
BY_FLAG = "SELECT count(*) FROM ticket WHERE urgent = %s"
BY_FLAG_TEST = "SELECT count(*) FROM ticket WHERE urgent IS TRUE"
EXPLAIN_BY_STATUS = sql.SQL("EXPLAIN {}").format(sql.SQL(BY_STATUS))


@pytest.fixture(scope="module")
def server(bindir) -> Iterator:
    """A server preloading pg_qualstats that samples every statement, after a workload:
    'open' five times, 'closed' once, one range, two primary-key look-ups, a long constant."""
    with qualstats_server(TABLE) as (server, conn):
        conn.execute("CREATE ROLE watcher LOGIN")
        conn.execute("CREATE ROLE reader LOGIN IN ROLE pg_read_all_stats")
        for _ in range(5):
            conn.execute(BY_STATUS, ["open"])
        conn.execute(BY_STATUS, ["closed"])
        conn.execute(BY_RANGE, [1001, 1500])
        conn.execute(BY_ID, [7])
        conn.execute(BY_ID, [8])
        conn.execute(BY_NOTE, ["x" * 200])
        conn.execute(BY_LIST, ["open", "closed"])
        conn.execute(BY_FLAG, [True])
        conn.execute(BY_FLAG_TEST)
        yield server


def _queryid(conn, text: str) -> int:
    """The queryid pg_stat_statements gave `text` in the connection's database."""
    normalized = text.replace("%s", "$1", 1).replace("%s", "$2", 1)
    return conn.execute(
        "SELECT queryid FROM pg_stat_statements WHERE query = %s "
        "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [normalized],
    ).fetchone()[0]


def _quals(server, text: str):
    with psycopg.connect(server.url("postgres")) as conn:
        status = qualstats_status(conn)
        queryid = _queryid(conn, text)
        return queryid, qualstats_read(conn, status=status, queryids=[queryid])


def test_a_preloaded_pg_qualstats_is_ready_with_its_sample_rate(server):
    with psycopg.connect(server.url("postgres")) as conn:
        status = qualstats_status(conn)
    assert status.state is QualstatsState.READY and status.fix is None
    assert status.sample_rate == 1.0 and status.schema == "public"


def test_the_constants_used_come_with_their_count_and_real_selectivity(server):
    queryid, quals = _quals(server, BY_STATUS)
    [qual] = quals
    assert (qual.queryid, qual.schema, qual.table, qual.column, qual.operator) == (
        queryid,
        "public",
        "ticket",
        "status",
        "=",
    )
    assert [(use.value, use.occurrences) for use in qual.constants] == [
        ("'open'::text", 5),
        ("'closed'::text", 1),
    ]
    rare, common = qual.constants
    # A sequential scan evaluates the filter on every row: 1 in 100 kept for 'open'.
    assert rare.rows_examined == 5 * ROWS and rare.selectivity == pytest.approx(0.01)
    assert common.selectivity == pytest.approx(0.99)
    assert qual.occurrences == 6 and qual.eval_types == {EvalType.FILTER}
    assert qual.selectivity == pytest.approx((5 * 0.01 + 0.99) / 6)


def test_a_two_sided_range_gives_both_bounds_and_its_real_width(server):
    _, quals = _quals(server, BY_RANGE)
    bounds = {qual.operator: qual for qual in quals}
    assert set(bounds) == {">=", "<="}
    assert bounds[">="].constants[0].value.startswith("1001")
    assert bounds["<="].constants[0].value.startswith("1500")
    # pg_qualstats counts what the whole AND removed: both bounds read the 500 rows kept.
    assert bounds[">="].selectivity == pytest.approx(500 / ROWS)
    assert bounds["<="].selectivity == pytest.approx(500 / ROWS)


def test_an_index_condition_has_constants_but_no_filtered_rows(server):
    _, [qual] = _quals(server, BY_ID)
    assert qual.column == "id" and qual.eval_types == {EvalType.INDEX}
    assert sorted(use.value for use in qual.constants) == ["7::smallint", "8::smallint"]
    assert qual.selectivity is None


def test_a_constant_pg_qualstats_cut_is_not_whole(server):
    _, [qual] = _quals(server, BY_NOTE)
    [use] = qual.constants
    assert len(use.value.encode()) <= CONSTANT_BYTES and not use.whole
    _, [status_qual] = _quals(server, BY_STATUS)
    assert all(use.whole for use in status_qual.constants)


def test_an_in_list_is_one_array_constant_without_a_selectivity(server):
    _, [qual] = _quals(server, BY_LIST)
    [use] = qual.constants
    # Its counters count one evaluation per element: 2 x 20,000, not the rows.
    assert use.value == "'{open,closed}'::text[]" and use.array
    assert use.rows_examined == 2 * ROWS and use.selectivity is None and qual.selectivity is None


def test_a_boolean_compared_with_a_constant_is_not_seen_but_is_true_is(server):
    with psycopg.connect(server.url("postgres")) as conn:
        status = qualstats_status(conn)
        flag, test = _queryid(conn, BY_FLAG), _queryid(conn, BY_FLAG_TEST)
        quals = qualstats_read(conn, status=status, queryids=[flag, test])
    [qual] = quals
    assert qual.queryid == test and qual.column == "urgent"
    assert qual.operator == "=" and qual.constants[0].value == "TRUE::bool"
    assert qual.selectivity == pytest.approx(1 / 50)


def test_a_paused_session_leaves_no_constant_behind_and_still_reads_ready(server):
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        qualstats_pause(conn)
        conn.execute(EXPLAIN_BY_STATUS, ["paused"])
        conn.execute(BY_STATUS, ["paused"])
        assert qualstats_status(conn).ready
        _, [qual] = _quals(server, BY_STATUS)
    assert "'paused'::text" not in {use.value for use in qual.constants}
    # Another session is sampled as before: even a plain EXPLAIN records its constant.
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(EXPLAIN_BY_STATUS, ["explained"])
    _, [qual] = _quals(server, BY_STATUS)
    assert "'explained'::text" in {use.value for use in qual.constants}


def test_a_generic_plan_parameter_is_a_use_without_a_value(server):
    by_n = "SELECT count(*) FROM ticket WHERE n > %s"
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(by_n, [19000], prepare=True)
        [qual] = qualstats_read(
            conn, status=qualstats_status(conn), queryids=[_queryid(conn, by_n)]
        )
    [use] = qual.constants
    assert use.value is None and not use.whole and not use.array
    # Its rows are counted, but a value never seen might have been an array: no selectivity.
    assert (use.rows_examined, use.rows_removed, use.selectivity) == (ROWS, 19000, None)


def test_all_queries_are_read_without_a_queryid_list(server):
    with psycopg.connect(server.url("postgres")) as conn:
        quals = qualstats_read(conn, status=qualstats_status(conn))
        wanted = {_queryid(conn, text) for text in (BY_STATUS, BY_RANGE, BY_ID, BY_NOTE)}
    assert wanted <= {qual.queryid for qual in quals}
    # Heaviest first: the status filter ran six times.
    assert quals[0].column == "status"


def test_a_role_without_pg_read_all_stats_is_told_the_grant(server):
    with psycopg.connect(server.url("postgres").replace("postgres@", "watcher@")) as conn:
        status = qualstats_status(conn)
        assert status.state is QualstatsState.NO_PRIVILEGE
        assert status.fix.startswith("GRANT pg_read_all_stats TO watcher")
        with pytest.raises(ValueError, match="GRANT pg_read_all_stats TO watcher"):
            qualstats_read(conn, status=status)
    with psycopg.connect(server.url("postgres").replace("postgres@", "reader@")) as conn:
        assert qualstats_status(conn).ready


def test_another_database_without_the_extension_is_told_to_create_it(server):
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bare")
    with psycopg.connect(server.url("bare")) as conn:
        status = qualstats_status(conn)
    assert status.state is QualstatsState.NOT_CREATED
    assert status.fix == "CREATE EXTENSION pg_qualstats in database bare"


def test_a_server_that_does_not_preload_it_is_told_the_preload_line(bindir):
    preload = {"shared_preload_libraries": "pg_stat_statements"}
    with private_server(bindir, settings=preload) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            assert qualstats_status(conn).state is QualstatsState.NOT_PRELOADED
            conn.execute("CREATE EXTENSION pg_qualstats")
            conn.execute("CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats")
        # A role that may not read shared_preload_libraries finds out too.
        for role in ("postgres", "watcher"):
            with psycopg.connect(server.url("postgres").replace("postgres@", f"{role}@")) as conn:
                status = qualstats_status(conn)
            assert status.state is QualstatsState.NOT_PRELOADED, role
            assert "shared_preload_libraries = 'pg_stat_statements,pg_qualstats'" in status.fix
            assert "CREATE EXTENSION" not in status.fix


def test_pg_qualstats_in_a_schema_of_its_own_needs_usage_on_it(server):
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE walled")
    with psycopg.connect(server.url("walled"), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA qs")
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION pg_qualstats SCHEMA qs")
        conn.execute("CREATE TABLE ticket (status text)")
        conn.execute("INSERT INTO ticket SELECT 'open' FROM generate_series(1, 10)")
        conn.execute("GRANT SELECT ON ticket TO reader")
    reader = server.url("walled").replace("postgres@", "reader@")
    with psycopg.connect(reader) as conn:
        status = qualstats_status(conn)
        assert status.state is QualstatsState.NO_PRIVILEGE
        assert status.fix.startswith("GRANT USAGE ON SCHEMA qs TO reader")
    with psycopg.connect(server.url("walled"), autocommit=True) as conn:
        conn.execute("GRANT USAGE ON SCHEMA qs TO reader")
    with psycopg.connect(reader, autocommit=True) as conn:
        conn.execute(BY_STATUS, ["open"])
        status = qualstats_status(conn)
        assert status.ready and status.schema == "qs"
        [qual] = qualstats_read(conn, status=status, queryids=[_queryid(conn, BY_STATUS)])
    assert (qual.table, qual.column, qual.constants[0].value) == (
        "ticket",
        "status",
        "'open'::text",
    )
