"""Tables the advisor and verifier tests audit, built once per session in the test database.

Plain SQL (not Django models), prefixed adv_, dropped at the end. Columns are chosen so
each index kind has a query that needs it: independent low-cardinality columns for
composites, a skewed status for partial indexes, rare NULLs, unique mixed-case emails,
selective jsonb keys, an unindexed join key, and a tiny table.
"""

from collections.abc import Iterator, Sequence
from dataclasses import replace

import psycopg
import pytest

from dbarchitect.advisor import Advice, advise
from dbarchitect.collector import QueryStat
from pgaccess.targets import target_connection

from .pgss import pgss_reset_own_database
from .schema_db import SchemaDatabase, schema_database

ORDERS = 200_000
LINEITEMS = 300_000
CUSTOMERS = 20_000

SCHEMA = [
    "DROP VIEW IF EXISTS adv_pending_orders",
    "DROP TABLE IF EXISTS adv_lineitems, adv_orders, adv_customers, adv_tiny CASCADE",
    """CREATE TABLE adv_customers (
        id int PRIMARY KEY,
        segment text NOT NULL,
        nation int NOT NULL
    )""",
    f"""INSERT INTO adv_customers
        SELECT g, 'seg' || (g % 5), g % 25 FROM generate_series(1, {CUSTOMERS}) AS g""",
    """CREATE TABLE adv_orders (
        id bigint PRIMARY KEY,
        customer_id int NOT NULL REFERENCES adv_customers (id),
        account_id int NOT NULL,
        tenant_id int NOT NULL,
        kind int NOT NULL,
        region int NOT NULL,
        score int NOT NULL,
        status text NOT NULL,
        email text NOT NULL,
        code varchar(32) NOT NULL,
        created_at timestamptz NOT NULL,
        shipped_at timestamptz,
        meta jsonb NOT NULL,
        tags int[] NOT NULL
    )""",
    # Independent columns (coprime moduli) and timestamps uncorrelated with the heap order,
    # so each account's rows are spread over the whole table like a real log's.
    f"""INSERT INTO adv_orders
        SELECT g, g % {CUSTOMERS} + 1, g % 97, g % 100, g % 47, g % 10,
               (g * 7919) % 100000,
               CASE WHEN g % 100 = 7 THEN 'pending' WHEN g % 50 = 3 THEN 'failed'
                    ELSE 'done' END,
               'User' || g || '@Example.com',
               'ORD-' || ((g * 7919) % 1000003),
               timestamptz '2024-01-01' + ((g * 7907) % {ORDERS}) * interval '1 minute',
               CASE WHEN g % 101 = 5 THEN NULL
                    ELSE timestamptz '2024-01-02' + g * interval '1 minute' END,
               jsonb_build_object('sku', 's' || (g % 50000),
                                  'color', (ARRAY['red', 'green', 'blue'])[g % 3 + 1]),
               ARRAY[g % 1000, 1000 + g % 997]
        FROM generate_series(1, {ORDERS}) AS g""",
    # The demo's situation: single-column indexes that a composite need is not covered by.
    "CREATE INDEX adv_orders_customer ON adv_orders (customer_id)",
    "CREATE INDEX adv_orders_account ON adv_orders (account_id)",
    "CREATE INDEX adv_orders_created ON adv_orders (created_at)",
    """CREATE TABLE adv_lineitems (
        id bigint PRIMARY KEY,
        order_id bigint NOT NULL,
        quantity int NOT NULL,
        price numeric(10, 2) NOT NULL
    )""",
    f"""INSERT INTO adv_lineitems
        SELECT g, (g * 7) % {ORDERS} + 1, g % 20 + 1, (g % 1000) / 10.0
        FROM generate_series(1, {LINEITEMS}) AS g""",
    "CREATE TABLE adv_tiny (id int PRIMARY KEY, code text NOT NULL)",
    "INSERT INTO adv_tiny SELECT g, 'c' || g FROM generate_series(1, 100) AS g",
    """CREATE VIEW adv_pending_orders AS
        SELECT id, account_id, created_at FROM adv_orders WHERE status = 'pending'""",
    "ANALYZE adv_customers, adv_orders, adv_lineitems, adv_tiny",
]
TEARDOWN = [
    "DROP VIEW IF EXISTS adv_pending_orders",
    "DROP TABLE IF EXISTS adv_lineitems, adv_orders, adv_customers, adv_tiny CASCADE",
]


@pytest.fixture(scope="session", name="advisor_db")
def advisor_db_fixture(django_db_setup, django_db_blocker) -> Iterator[SchemaDatabase]:
    with django_db_blocker.unblock():
        conninfo = target_connection("default").conninfo
    yield from schema_database(conninfo, SCHEMA, TEARDOWN)


@pytest.fixture(name="conn")
def conn_fixture(advisor_db) -> Iterator[psycopg.Connection]:
    """The audit's connection to the target: autocommit, as the pipeline opens it."""
    with advisor_db.connect() as connection:
        yield connection


def stat(queryid: int, query: str, calls: int = 100) -> QueryStat:
    """A collected query as the collector hands it over (normalized text, delta counters)."""
    return QueryStat(
        queryid=queryid,
        userid=10,
        query=query,
        calls=calls,
        total_time_ms=calls * 20.0,
        mean_time_ms=20.0,
        rows=calls,
        shared_blks_hit=0,
        shared_blks_read=0,
    )


def run_as_client(conninfo: str, statements: Sequence[str | tuple[str, Sequence]]) -> None:
    """Run statements as a client would: constants in the text, or a (text, values) pair
    prepared on the server; rows are read and dropped."""
    with psycopg.connect(conninfo, autocommit=True) as client:
        for statement in statements:
            if isinstance(statement, tuple):
                cursor = client.execute(statement[0], statement[1], prepare=True)
            else:
                cursor = client.execute(statement)
            if cursor.description is not None:
                cursor.fetchall()


def audit_report_checked(audit) -> dict:
    """The report of an audit that succeeded and costed every query or said why not."""
    from dbarchitect.models import AuditRun

    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    report = audit.report
    skipped = {s["queryid"]: s["reason"] for s in report["skipped"]}
    assert report["queries"]
    for query in report["queries"]:
        assert query["generic_cost"] is not None or skipped.get(query["queryid"]), query
    return report


def collected(
    conn: psycopg.Connection,
    statements: Sequence[str | tuple[str, Sequence]],
    *,
    fragment: str = "adv_",
) -> list[QueryStat]:
    """Run statements as a client would (constants in the text, or a (text, values) pair
    prepared on the server), then read back from pg_stat_statements, with the normalized
    text it made of them, those naming `fragment`."""
    pgss_reset_own_database(conn)
    run_as_client(conn.info.dsn, statements)
    rows = conn.execute(
        "SELECT queryid, query, calls, rows FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND toplevel AND strpos(query, %s) > 0 AND query NOT LIKE '%%pg_stat_statements%%'",
        [fragment],
    ).fetchall()
    return [
        replace(stat(queryid, query, calls), rows=rows_) for queryid, query, calls, rows_ in rows
    ]


def leftovers(conn: psycopg.Connection) -> tuple[list, list]:
    """Hypothetical indexes of this session and real indexes on the adv_ tables."""
    hypothetical = conn.execute("SELECT * FROM hypopg_list_indexes").fetchall()
    real = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename LIKE 'adv\\_%' ORDER BY 1"
    ).fetchall()
    return hypothetical, real


EXISTING_INDEXES = [
    ("adv_customers_pkey",),
    ("adv_lineitems_pkey",),
    ("adv_orders_account",),
    ("adv_orders_created",),
    ("adv_orders_customer",),
    ("adv_orders_pkey",),
    ("adv_tiny_pkey",),
]


# The thresholds the workload tests advise with: tables of their size, clear gains only.
MIN_TABLE_ROWS = 10_000
MIN_COST_REDUCTION = 0.5


def advised(
    conn: psycopg.Connection,
    statements: Sequence[str | tuple[str, Sequence]],
    *,
    fragment: str,
    times: int = 3,
) -> tuple[list[QueryStat], Advice]:
    """The statements run `times` times each, read back from pg_stat_statements, advised."""
    stats = collected(conn, [s for s in statements for _ in range(times)], fragment=fragment)
    advice = advise(
        conn, stats, min_table_rows=MIN_TABLE_ROWS, min_cost_reduction=MIN_COST_REDUCTION
    )
    return stats, advice


def by_shape(advice: Advice) -> dict:
    """The recommendations by (table, key columns, partial index predicate)."""
    return {(rec.table, tuple(rec.columns), rec.where): rec for rec in advice.recommendations}
