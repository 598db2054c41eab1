"""Extended statistics on a real correlated pair: each of 2,000 zip codes lies in exactly
one of 200 cities, so the planner, multiplying 1/200 by 1/2,000, expects 100 times fewer
rows for `city = ... AND zip = ...` than there are."""

from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from dbarchitect.analysis import analyze_query
from dbarchitect.extended_stats import (
    MIN_ESTIMATE_FACTOR,
    columns_correlated,
    estimate_misses,
    proof_helps,
    statistics_kinds,
)
from pgaccess.column_statistics import (
    StatisticsKind,
    StatisticsProofRefused,
    columns_correlation,
    rows_factor,
    statistics_existing,
    statistics_prove,
    worst_scan,
)
from tests.pgaccess.servers import pg15_bindir

from .private_server import private_server

ROWS = 400_000
CITIES = 200
ZIPS = 2_000  # zip z lies in city z % CITIES: the zip determines the city
SCHEMA = [
    "CREATE SCHEMA geo",
    """CREATE TABLE geo.address (
        id int PRIMARY KEY, city text NOT NULL, zip text NOT NULL,
        a int NOT NULL, b int NOT NULL, zone int NOT NULL, country text NOT NULL)""",
    # a and b are independent: every one of the 100 x 101 combinations occurs. Each of 100
    # zones lies in one of 20 countries: 100 combinations, few enough for an MCV list.
    f"""INSERT INTO geo.address
        SELECT g, 'city' || (g % {ZIPS}) % {CITIES}, 'zip' || g % {ZIPS}, g % 100, g % 101,
               g % 100, 'country' || (g % 100) % 20
        FROM generate_series(1, {ROWS}) AS g""",
    "CREATE TABLE geo.visit (id int PRIMARY KEY, address_id int NOT NULL)",
    f"INSERT INTO geo.visit SELECT g, (g * 7) % {ROWS} + 1 FROM generate_series(1, {ROWS}) AS g",
    "CREATE INDEX ON geo.visit (address_id)",
    "ANALYZE geo.address, geo.visit",
    # Never ANALYZEd: the catalog does not know its size (reltuples -1).
    "CREATE TABLE geo.raw (a int, b int) WITH (autovacuum_enabled = off)",
    "INSERT INTO geo.raw SELECT g % 10, g % 10 FROM generate_series(1, 100000) AS g",
    "CREATE ROLE stranger LOGIN",
    "GRANT USAGE ON SCHEMA geo TO stranger",
    "GRANT SELECT ON ALL TABLES IN SCHEMA geo TO stranger",
]
# zip7 is in city7: ROWS / ZIPS = 200 rows, estimated at ROWS / CITIES / ZIPS = 1.
CORRELATED = "SELECT count(*) FROM geo.address WHERE city = 'city7' AND zip = 'zip7'"
JOINED = (
    "SELECT count(*) FROM geo.address AS ad JOIN geo.visit AS v ON v.address_id = ad.id "
    "WHERE ad.city = 'city7' AND ad.zip = 'zip7'"
)
INDEPENDENT = "SELECT count(*) FROM geo.address WHERE a = 7 AND b = 7"
# 4,000 rows, estimated at ROWS / 100 / 20 = 200.
FEW_COMBINATIONS = "SELECT count(*) FROM geo.address WHERE zone = 7 AND country = 'country7'"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    # One process per scan: the rows a plan node reports are then the table's, not a share.
    with private_server(pg15_bindir(), settings={"max_parallel_workers_per_gather": "0"}) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            for statement in SCHEMA:
                conn.execute(statement)
        yield server.url("postgres")


def _plan(url: str, query: str) -> list:
    with psycopg.connect(url) as conn:
        explain = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(sql.SQL(query))
        return conn.execute(explain).fetchone()[0]


def test_the_correlated_pair_is_found_100x_underestimated(server):
    plan = _plan(server, CORRELATED)
    [miss] = estimate_misses(plan, analyze_query(CORRELATED))
    assert (miss.schema, miss.table, miss.columns) == ("geo", "address", ("city", "zip"))
    assert miss.actual_rows == ROWS // ZIPS and miss.factor >= 100
    # A join above the scan inherits the error; the scan's own columns are what is named.
    [joined] = estimate_misses(_plan(server, JOINED), analyze_query(JOINED))
    assert (joined.table, joined.columns) == ("address", ("city", "zip"))


def test_independent_columns_are_estimated_well_and_not_misses(server):
    plan = _plan(server, INDEPENDENT)
    assert rows_factor(*worst_scan(plan, "address")) < MIN_ESTIMATE_FACTOR
    assert estimate_misses(plan, analyze_query(INDEPENDENT)) == []
    # The same plan with a bar it passes names both columns: the bar is what held it back.
    [miss] = estimate_misses(plan, analyze_query(INDEPENDENT), min_factor=1.0)
    assert miss.columns == ("a", "b")


def test_the_sample_tells_correlated_columns_from_independent_ones(server):
    with psycopg.connect(server) as conn:
        pair = columns_correlation(conn, schema="geo", table="address", columns=["zip", "city"])
        free = columns_correlation(conn, schema="geo", table="address", columns=["a", "b"])
    assert 20_000 < pair.sampled_rows < 40_000
    assert pair.distinct == (ZIPS, CITIES) and pair.combinations == ZIPS
    assert pair.dependency == 1.0 and pair.combination_share == pytest.approx(
        ZIPS / 30_000, rel=0.2
    )
    assert columns_correlated(pair)
    # A 30,000-row sample meets nearly all of the 10,100 combinations.
    assert free.distinct == (100, 101) and 9_000 < free.combinations <= 100 * 101
    assert free.dependency < 0.1 and free.combination_share > 0.3
    assert not columns_correlated(free)


def test_a_table_never_analyzed_is_sampled_no_further_than_the_sample(server):
    with psycopg.connect(server) as conn:
        reltuples = "SELECT reltuples FROM pg_class WHERE oid = 'geo.raw'::regclass"
        assert conn.execute(reltuples).fetchone()[0] == -1
        raw = columns_correlation(conn, schema="geo", table="raw", columns=["a", "b"])
    assert raw.sampled_rows == 30_000 and raw.combinations == 10 and raw.dependency == 1.0


def test_the_proof_fixes_the_estimate_and_leaves_nothing_behind(server):
    with psycopg.connect(server) as conn:
        pair = columns_correlation(conn, schema="geo", table="address", columns=["city", "zip"])
        # 2,000 combinations do not fit the MCV list of 100: dependencies and ndistinct only.
        kinds = statistics_kinds(pair)
        assert kinds == (StatisticsKind.DEPENDENCIES, StatisticsKind.NDISTINCT)
        proof = statistics_prove(
            conn,
            schema="geo",
            table="address",
            columns=["city", "zip"],
            kinds=kinds,
            query=CORRELATED,
        )
        assert (
            statistics_existing(conn, schema="geo", table="address", columns=["city", "zip"]) == []
        )
    assert proof.ddl == (
        'CREATE STATISTICS "geo"."address_city_zip_stx" (dependencies, ndistinct) '
        'ON "city", "zip" FROM "geo"."address"'
    )
    assert proof.actual_before == proof.actual_after == ROWS // ZIPS
    assert rows_factor(proof.estimated_before, proof.actual_before) >= 100
    assert rows_factor(proof.estimated_after, proof.actual_after) <= 2
    assert proof.ms_before > 0 and proof.ms_after > 0
    assert estimate_misses(proof.plan_after, analyze_query(CORRELATED)) == []
    # Whether it helps also weighs the time: a slower query is not helped.
    assert proof_helps(replace(proof, ms_after=proof.ms_before)) is True
    assert proof_helps(replace(proof, ms_after=proof.ms_before * 2)) is False
    # Without it, the estimate is back to 100x off: the proof was rolled back.
    assert estimate_misses(_plan(server, CORRELATED), analyze_query(CORRELATED))


def test_few_combinations_get_an_mcv_list_that_fixes_the_estimate(server):
    [miss] = estimate_misses(_plan(server, FEW_COMBINATIONS), analyze_query(FEW_COMBINATIONS))
    assert miss.columns == ("country", "zone") and miss.factor >= 10
    with psycopg.connect(server) as conn:
        pair = columns_correlation(conn, schema="geo", table="address", columns=list(miss.columns))
        assert pair.combinations == 100 and columns_correlated(pair)
        kinds = statistics_kinds(pair)
        assert StatisticsKind.MCV in kinds
        proof = statistics_prove(
            conn,
            schema="geo",
            table="address",
            columns=list(miss.columns),
            kinds=kinds,
            query=FEW_COMBINATIONS,
        )
    assert proof.actual_after == ROWS // 100
    assert rows_factor(proof.estimated_after, proof.actual_after) <= 1.2


def test_an_existing_statistics_object_is_found(server):
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("CREATE STATISTICS geo.kept (dependencies) ON zip, city, a FROM geo.address")
        try:
            found = statistics_existing(
                conn, schema="geo", table="address", columns=["city", "zip"]
            )
            assert [(s.name, s.kinds) for s in found] == [("geo.kept", frozenset({"f"}))]
            assert (
                statistics_existing(conn, schema="geo", table="address", columns=["b", "zip"]) == []
            )
        finally:
            conn.execute("DROP STATISTICS geo.kept")


def test_bad_input_and_a_role_that_does_not_own_the_table_are_refused(server):
    with psycopg.connect(server) as conn:
        for columns, message in [
            (["city", "nope"], "table geo.address has no column nope"),
            (["city", "city"], "two or more distinct columns"),
        ]:
            with pytest.raises(ValueError, match=message):
                statistics_prove(
                    conn, schema="geo", table="address", columns=columns, query=CORRELATED
                )
        with pytest.raises(ValueError, match="there is no table"):
            columns_correlation(conn, schema="geo", table="missing", columns=["a", "b"])
        for query in [
            "DELETE FROM geo.address",
            "SELECT 1; SELECT 2",
            "SELECT * FROM geo.address FOR UPDATE",
        ]:
            with pytest.raises(ValueError):
                statistics_prove(
                    conn, schema="geo", table="address", columns=["a", "b"], query=query
                )
        assert conn.execute("SELECT count(*) FROM geo.address").fetchone()[0] == ROWS
    stranger = server.replace("postgres@", "stranger@")
    with psycopg.connect(stranger) as conn, pytest.raises(StatisticsProofRefused, match="owner"):
        statistics_prove(
            conn, schema="geo", table="address", columns=["city", "zip"], query=CORRELATED
        )
