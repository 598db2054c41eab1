"""pg_qualstats and extended statistics: what an audit recommends with and without them.

A private PostgreSQL 15 with pg_qualstats preloaded (every statement sampled) holds two
databases with the same data and workload: `seen` has the extension, `blind` has not.
Two schemas: a demo-like shop (orders by customer, a rare 'open' status always queried
alone) and a skewed one of our own (a flag queried for its rare value, one for its common
value, and a correlated city/zip pair whose row estimate is far off). Each database is
audited once, verification on (the statistics proof needs it); then each recommended set
is built for real (indexes, statistics objects and their ANALYZE) and the workload timed
before and after (median of PASSES passes), the set dropped again. Printed: the workload
speed-up of both sets, their sizes, and the statistics findings with the estimate error
before and after.

ROWS (default 100000) sizes the tables.
"""

import os
import statistics
import time

import psycopg
from _common import PGSS_RESET_SQL, bench_database, emit, log
from psycopg import sql

os.environ["LLM_PROVIDER"] = ""  # no LLM: the advisor's own work only

ROWS = int(os.environ.get("ROWS", "100000"))
PASSES = 5
SCHEMA = [
    "CREATE EXTENSION pg_stat_statements",
    "CREATE EXTENSION hypopg",
    # The demo-like shop: 1% of the orders open, the open ones read by the back office.
    """CREATE TABLE shop_order (
        id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
        total int NOT NULL)""",
    f"""INSERT INTO shop_order SELECT g, g % 5000,
        CASE WHEN g % 100 = 0 THEN 'open' ELSE 'shipped' END, g % 997
        FROM generate_series(1, {ROWS}) AS g""",
    # Skewed: 2% urgent, 98% archived; each zip lies in one city, city0 and zip0 the
    # most common of each (the planner multiplies their frequencies).
    """CREATE TABLE skew_ticket (
        id int PRIMARY KEY, urgent bool NOT NULL, archived bool NOT NULL,
        city text NOT NULL, zip text NOT NULL)""",
    f"""INSERT INTO skew_ticket
        SELECT g, g % 50 = 0, g % 50 <> 0,
               CASE WHEN g <= {ROWS // 200} THEN 'city0' ELSE 'city' || 1 + z % 399 END,
               CASE WHEN g <= {ROWS // 400} THEN 'zip0'
                    WHEN g <= {ROWS // 200} THEN 'zipc' || g % 9 ELSE 'zip' || z END
        FROM (SELECT g, g % 3990 + 1 FROM generate_series(1, {ROWS}) AS g) AS s(g, z)""",
    "CREATE INDEX ON skew_ticket (city)",
    "ANALYZE",
]
# (statement, its values): each run CALLS times, the values bound on the client.
WORKLOAD = [
    ("SELECT id, total FROM shop_order WHERE status = %s", ["open"]),
    ("SELECT count(*) FROM shop_order WHERE customer_id = %s", [42]),
    ("SELECT count(*) FROM skew_ticket WHERE urgent IS TRUE", []),
    ("SELECT count(*) FROM skew_ticket WHERE archived IS TRUE", []),
    ("SELECT count(*) FROM skew_ticket WHERE city = %s AND zip = %s", ["city0", "zip0"]),
]
CALLS = 10
PRELOAD = {
    "shared_preload_libraries": "pg_stat_statements,pg_qualstats",
    "pg_qualstats.sample_rate": "1",
}


def main() -> None:
    from pathlib import Path

    from tests.dbarchitect.private_server import private_server

    with (
        bench_database("bench_qualstats"),
        private_server(Path("/usr/lib/postgresql/15/bin"), settings=PRELOAD) as server,
    ):
        urls = {name: server.url(name) for name in ("seen", "blind")}
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            for name in urls:
                conn.execute(f"CREATE DATABASE {name}")
        for name, url in urls.items():
            _load(url, qualstats=name == "seen")
        result = {"rows": ROWS}
        for name, url in urls.items():
            result[name] = _audit_and_measure(name, url, urls)
        emit(result)


def _client(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)


def _load(url: str, *, qualstats: bool) -> None:
    with _client(url) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        if qualstats:
            conn.execute("CREATE EXTENSION pg_qualstats")
        conn.execute(PGSS_RESET_SQL)  # this database only: the other one keeps its workload
        for _ in range(CALLS):
            for statement, values in WORKLOAD:
                conn.execute(statement, values).fetchall()


def _audit_and_measure(name: str, url: str, urls: dict[str, str]) -> dict:
    from django.test import override_settings

    from dbarchitect.agent import run_audit

    targets = ",".join(f"{n}={u}" for n, u in urls.items())
    with override_settings(
        DBARCHITECT_TARGETS=targets,
        DBARCHITECT_MIN_TABLE_ROWS=1_000,
        DBARCHITECT_MIN_MEAN_MS=0.0,
        DBARCHITECT_VERIFY=f"database:{name}",
    ):
        started = time.perf_counter()
        audit = run_audit(target=name)
        seconds = time.perf_counter() - started
    if audit.error:
        raise RuntimeError(f"audit of {name} failed: {audit.error}")
    logs = list(audit.optimizations.filter(kind__in=["index", "statistics"]))
    log(f"{name}: {[entry.ddl for entry in logs]}")
    with _client(url) as conn:
        before = _workload_ms(conn)
        sizes = _build(conn, logs)
        after = _workload_ms(conn)
        _drop(conn, logs)
    return {
        "qualstats": audit.report["qualstats"]["state"],
        "audit_seconds": seconds,
        "set": [entry.ddl for entry in logs],
        "index_bytes": sum(sizes),
        "workload_ms_before": before,
        "workload_ms_after": after,
        "speedup": before / after if after else None,
        "statistics": [
            {
                "table": entry.table_name,
                "columns": entry.columns,
                "estimate_error_before": entry.details["estimates"]["factor_before"],
                "estimate_error_after": entry.details["estimates"]["factor_after"],
            }
            for entry in logs
            if entry.kind == "statistics"
        ],
        "statistics_not_proposed": audit.report["statistics"]["not_proposed"],
    }


def _workload_ms(conn: psycopg.Connection) -> float:
    """One pass of the workload (each statement once), median of PASSES, in ms."""
    passes = []
    for _ in range(PASSES):
        started = time.perf_counter()
        for statement, values in WORKLOAD:
            conn.execute(statement, values).fetchall()
        passes.append((time.perf_counter() - started) * 1000)
    return statistics.median(passes)


def _build(conn: psycopg.Connection, logs) -> list[int]:
    """Build the set; the bytes each index takes (a statistics object: none)."""
    from pgaccess.statistics_ddl import statistics_spec_parse

    sizes = []
    for entry in logs:
        if entry.kind == "statistics":
            spec = statistics_spec_parse(entry.ddl)
            conn.execute(spec.create_sql())
            conn.execute(spec.analyze_sql())
            continue
        conn.execute(entry.ddl)
        name = entry.details["index_name"]
        size = conn.execute(
            "SELECT pg_relation_size(to_regclass(quote_ident(%s)))", [name]
        ).fetchone()[0]
        sizes.append(size)
    return sizes


def _drop(conn: psycopg.Connection, logs) -> None:
    from pgaccess.statistics_ddl import statistics_spec_parse

    for entry in logs:
        if entry.kind == "statistics":
            conn.execute(statistics_spec_parse(entry.ddl).drop_sql())
        else:
            name = sql.Identifier(entry.details["index_name"])
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(name))
    conn.execute("ANALYZE")


if __name__ == "__main__":
    main()
