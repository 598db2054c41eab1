"""The advise phase at scale: 1,000 distinct slow statements over 50 tables.

Builds its own database (bench_advise_scale: 50 tables of ROWS rows, primary keys only,
ANALYZEd) and hands the advisor 1,000 normalized statements (20 shapes on each table, some
joining the next table), as the collector would after reading pg_stat_statements: the
statements' texts with `$n`, each with its calls and time. One `advise()` is timed: the
phase an audit calls "advise" (analysis, catalog, costing every query, candidates,
what-if costing, selection). The statements are handed over directly, not run into
pg_stat_statements: 1,000 single-call entries would be evicted from a shared server's
pg_stat_statements by the other databases' traffic before the audit read them.

Goal on the 2-core machine: the advise phase within 30 s (`advise_1000_queries_s`).
"""

import os
import time

from _common import bench_database, emit, log

os.environ["LLM_PROVIDER"] = ""  # no LLM: the advisor's own work only

TABLES = 50
ROWS = 12_000  # over DBARCHITECT_MIN_TABLE_ROWS (10,000): every table is worth an index
STATUSES = ("new", "open", "paid", "shipped", "closed")

SHAPES = (
    "SELECT * FROM {t} WHERE a_id = $1",
    "SELECT id FROM {t} WHERE status = $1 AND created_at > $2",
    "SELECT id FROM {t} WHERE code = $1",
    "SELECT count(*) FROM {t} WHERE score BETWEEN $1 AND $2",
    "SELECT id, amount FROM {t} WHERE a_id = $1 ORDER BY created_at DESC LIMIT $2",
    "SELECT sum(amount) FROM {t} WHERE status = $1 AND flag",
    "SELECT t.id FROM {t} AS t JOIN {u} AS u ON u.id = t.a_id WHERE u.code = $1",
    "SELECT status, count(*) FROM {t} WHERE created_at >= $1 AND created_at < $2 GROUP BY status",
    "SELECT id FROM {t} WHERE lower(code) = $1",
    "SELECT id FROM {t} WHERE code LIKE $1",
    "SELECT id FROM {t} WHERE a_id = ANY($1)",
    "SELECT * FROM {t} WHERE score = $1 AND status = $2 ORDER BY id LIMIT $3",
    "SELECT max(created_at) FROM {t} WHERE a_id = $1 AND status = $2",
    "SELECT id FROM {t} WHERE amount > $1 ORDER BY amount DESC LIMIT $2",
    "SELECT count(*) FROM {t} AS t WHERE EXISTS "
    "(SELECT 1 FROM {u} AS u WHERE u.a_id = t.id AND u.status = $1)",
    "SELECT id FROM {t} WHERE created_at > $1 AND flag = $2",
    "SELECT a_id, sum(amount) FROM {t} WHERE score > $1 GROUP BY a_id",
    "SELECT id FROM {t} WHERE status IN ($1, $2) AND score < $3",
    "SELECT * FROM {t} WHERE code = $1 OR a_id = $2",
    "SELECT id FROM {t} WHERE created_at BETWEEN $1 AND $2 ORDER BY created_at",
)


def table_name(number: int) -> str:
    return f"scale_{number:02d}"


def schema() -> list[str]:
    statements = ["SELECT setseed(0.15)"]
    for number in range(TABLES):
        name = table_name(number)
        statements += [
            f"""CREATE TABLE {name} (
                id bigint PRIMARY KEY, a_id bigint NOT NULL, status text NOT NULL,
                created_at timestamptz NOT NULL, amount numeric(12, 2) NOT NULL,
                code text NOT NULL, score int NOT NULL, flag bool NOT NULL)""",
            f"""INSERT INTO {name}
                SELECT g, 1 + (g * 7919) % {ROWS // 10},
                       (ARRAY{list(STATUSES)!r})[1 + g % {len(STATUSES)}],
                       timestamptz '2025-01-01' + g * interval '7 min', (g % 997) + 0.25,
                       'code-' || g, g % 1000, g % 13 = 0
                FROM generate_series(1::bigint, {ROWS}) AS g""",
        ]
    statements.append("VACUUM ANALYZE")
    return statements


def statements() -> list:
    """1,000 distinct statements as the collector hands them over, slowest first."""
    from dbarchitect.collector import QueryStat

    found = []
    for number in range(TABLES):
        t, u = table_name(number), table_name((number + 1) % TABLES)
        for shape_number, shape in enumerate(SHAPES):
            calls = 10 + (number * 31 + shape_number * 17) % 500
            mean_ms = 20.0 + (number + shape_number) % 40
            found.append(
                QueryStat(
                    queryid=number * 1000 + shape_number + 1,
                    userid=10,
                    query=shape.format(t=t, u=u),
                    calls=calls,
                    total_time_ms=calls * mean_ms,
                    mean_time_ms=mean_ms,
                    rows=calls,
                    shared_blks_hit=0,
                    shared_blks_read=0,
                )
            )
    return sorted(found, key=lambda stat: stat.total_time_ms, reverse=True)


def main() -> None:
    import psycopg
    from django.conf import settings

    with bench_database("bench_advise_scale", migrate=False) as url:
        from dbarchitect.advisor import advise

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            started = time.perf_counter()
            for statement in schema():
                conn.execute(statement)
            log(f"{TABLES} tables of {ROWS:,} rows in {time.perf_counter() - started:.0f}s")
            queries = statements()
            started = time.perf_counter()
            advice = advise(
                conn,
                queries,
                min_table_rows=settings.DBARCHITECT_MIN_TABLE_ROWS,
                min_cost_reduction=settings.DBARCHITECT_MIN_COST_REDUCTION,
            )
            advise_s = time.perf_counter() - started
    log(f"advise: {len(queries)} statements in {advise_s:.1f}s")
    emit(
        {
            "advise_scale_statements": len(queries),
            "advise_scale_tables": TABLES,
            "advise_1000_queries_s": round(advise_s, 2),
            "advise_scale_recommendations": len(advice.recommendations),
            "advise_scale_not_costed": len(advice.skipped),
            "advise_scale_not_costed_reasons": sorted({s.reason for s in advice.skipped}),
            "load_average": os.getloadavg(),
        }
    )


if __name__ == "__main__":
    main()
