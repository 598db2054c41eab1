"""Workloads unlike the demo's, built once per session in the test database, dropped after.

- "Shop": an analytical shop in its own mixed-case schema: quoted mixed-case identifiers,
  an enum, a table range-partitioned by month, a composite primary key, a materialized
  view, numeric / date / jsonb / array / text columns.
- saas: a multi-tenant table where every query filters by tenant and skips soft-deleted
  rows (10% live), and a table freshly bulk-loaded and backfilled (its lifetime counters
  are all writes).
Plain SQL, not Django models, so the flush of transactional tests leaves them alone.
"""

from collections.abc import Iterator

import psycopg
import pytest

from pgaccess.targets import target_connection

from .schema_db import SchemaDatabase, schema_database

ORDERS = 120_000
CUSTOMERS = 30_000
PRODUCTS = 20_000
DOCUMENTS = 100_000
FRESH = 60_000

SCHEMA = [
    'DROP SCHEMA IF EXISTS "Shop", saas CASCADE',
    'CREATE SCHEMA "Shop"',
    "CREATE SCHEMA saas",
    """CREATE TYPE "Shop".order_status AS ENUM
        ('new', 'paid', 'shipped', 'cancelled', 'returned')""",
    """CREATE TABLE "Shop"."Customers" (
        "customerId" int PRIMARY KEY,
        email text NOT NULL,
        country char(2) NOT NULL,
        created_at timestamptz NOT NULL,
        deleted_at timestamptz
    )""",
    f"""INSERT INTO "Shop"."Customers"
        SELECT g, 'Cust' || g || '@Mail.example',
               (ARRAY['DE', 'FR', 'US', 'GB', 'IT', 'ES', 'NL', 'PL'])[g % 8 + 1],
               timestamptz '2023-01-01' + (g * 7907 % 30000) * interval '1 hour',
               CASE WHEN g % 20 = 0 THEN timestamptz '2024-06-01' END
        FROM generate_series(1, {CUSTOMERS}) AS g""",
    """CREATE TABLE "Shop".products (
        id int PRIMARY KEY,
        sku text NOT NULL UNIQUE,
        category int NOT NULL,
        price numeric(10, 2) NOT NULL,
        tags text[] NOT NULL,
        attrs jsonb NOT NULL
    )""",
    f"""INSERT INTO "Shop".products
        SELECT g, 'SKU-' || g, g % 40, (g % 500) + 0.99,
               ARRAY['t' || (g % 300), 't' || (300 + g % 97)],
               jsonb_build_object('color', (ARRAY['red', 'blue', 'green'])[g % 3 + 1],
                                  'brand', 'b' || (g % 2000))
        FROM generate_series(1, {PRODUCTS}) AS g""",
    # Range-partitioned by month; its primary key must include the partition key.
    """CREATE TABLE "Shop".orders (
        "orderId" bigint NOT NULL,
        "customerId" int NOT NULL,
        status "Shop".order_status NOT NULL,
        ordered_at timestamptz NOT NULL,
        total numeric(12, 2) NOT NULL,
        PRIMARY KEY ("orderId", ordered_at)
    ) PARTITION BY RANGE (ordered_at)""",
    *(
        f"""CREATE TABLE "Shop".orders_2024_{month:02d} PARTITION OF "Shop".orders
            FOR VALUES FROM ('2024-{month:02d}-01') TO ('2024-{month + 1:02d}-01')"""
        for month in (1, 2, 3)
    ),
    # 1% returned, 1% new, 1% cancelled: rare statuses; timestamps spread over the quarter.
    f"""INSERT INTO "Shop".orders
        SELECT g, (g * 7919) % {CUSTOMERS} + 1,
               (CASE WHEN g % 100 = 1 THEN 'new' WHEN g % 100 = 2 THEN 'cancelled'
                     WHEN g % 100 = 3 THEN 'returned' WHEN g % 3 = 0 THEN 'paid'
                     ELSE 'shipped' END)::"Shop".order_status,
               timestamptz '2024-01-01' + ((g * 7907) % 120000) * interval '1 minute',
               (g % 1000) + 0.5
        FROM generate_series(1, {ORDERS}) AS g""",
    # A composite primary key; product_id has no index.
    """CREATE TABLE "Shop"."OrderLines" (
        "orderId" bigint NOT NULL,
        line_no int NOT NULL,
        product_id int NOT NULL,
        qty int NOT NULL,
        price numeric(10, 2) NOT NULL,
        PRIMARY KEY ("orderId", line_no)
    )""",
    f"""INSERT INTO "Shop"."OrderLines"
        SELECT o, l, (o * 31 + l * 7) % {PRODUCTS} + 1, (o + l) % 5 + 1, ((o + l) % 300) + 0.25
        FROM generate_series(1, {ORDERS}) AS o, generate_series(1, 2) AS l""",
    # What a function runs is not the statement pg_stat_statements shows at the top.
    """CREATE FUNCTION "Shop".units_sold(product int) RETURNS bigint LANGUAGE sql STABLE
        AS 'SELECT sum(qty) FROM "Shop"."OrderLines" WHERE product_id = product'""",
    """CREATE MATERIALIZED VIEW "Shop".daily_sales AS
        SELECT date_trunc('day', ordered_at) AS day, "customerId", sum(total) AS revenue
        FROM "Shop".orders GROUP BY 1, 2""",
    """CREATE TABLE saas.documents (
        id bigint PRIMARY KEY,
        tenant_id int NOT NULL,
        owner_id int NOT NULL,
        title text NOT NULL,
        updated_at timestamptz NOT NULL,
        deleted_at timestamptz,
        payload jsonb NOT NULL
    )""",
    # 90% soft-deleted: only live rows matter, a partial index keeps just those.
    f"""INSERT INTO saas.documents
        SELECT g, g % 200, g % 5000, 'Doc ' || g,
               timestamptz '2024-01-01' + ((g * 7907) % {DOCUMENTS}) * interval '1 minute',
               CASE WHEN g % 10 <> 0 THEN timestamptz '2024-06-01' END,
               jsonb_build_object('ref', 'r' || g)
        FROM generate_series(1, {DOCUMENTS}) AS g""",
    # The single-column tenant index most multi-tenant schemas start with.
    "CREATE INDEX documents_tenant ON saas.documents (tenant_id)",
    # Bulk-loaded, then backfilled by an UPDATE of every row: its lifetime counters are
    # nothing but writes, although the workload only reads it.
    "CREATE TABLE saas.fresh (id bigint PRIMARY KEY, kind int NOT NULL, note text NOT NULL)",
    f"""INSERT INTO saas.fresh SELECT g, g % 150, repeat('x', 50)
        FROM generate_series(1, {FRESH}) AS g""",
    "UPDATE saas.fresh SET note = note || 'y'",
    "VACUUM ANALYZE saas.fresh",
    'ANALYZE "Shop"."Customers", "Shop".products, "Shop".orders, "Shop"."OrderLines"',
    'ANALYZE "Shop".daily_sales, saas.documents',
]
TEARDOWN = ['DROP SCHEMA IF EXISTS "Shop", saas CASCADE']


@pytest.fixture(scope="session", name="unseen_db")
def unseen_db_fixture(django_db_setup, django_db_blocker) -> Iterator[SchemaDatabase]:
    with django_db_blocker.unblock():
        conninfo = target_connection("default").conninfo
    yield from schema_database(conninfo, SCHEMA, TEARDOWN)


@pytest.fixture(name="unseen_conn")
def unseen_conn_fixture(unseen_db) -> Iterator[psycopg.Connection]:
    """The audit's connection to the target: autocommit, as the pipeline opens it."""
    with unseen_db.connect() as connection:
        yield connection
