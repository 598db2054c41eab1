"""An analytical schema and an application schema the advisor has never been tuned on, built
once per session in the test database, dropped after.

- dss: a TPC-H-like star (region, nation, supplier, customer, part, partsupp, orders,
  lineitem). Fact tables of 100k / 250k rows; orders.o_custkey, lineitem.l_partkey,
  l_suppkey and the dates have no index: the join keys a nested loop wants on its inner
  side and the selective filters are there to be found, while aggregates over whole
  tables have nothing an index could do.
- app: accounts keyed by uuid (mixed-case e-mails, a rare admin flag, soft deletes, jsonb
  settings) and their posts (keyset pagination by (created_at, id), a nullable score sorted
  NULLS LAST, a text body searched with full-text search and ILIKE).
Plain SQL, not Django models, so the flush of transactional tests leaves them alone.
"""

from collections.abc import Iterator

import psycopg
import pytest

from pgaccess.targets import target_connection

from .schema_db import SchemaDatabase, schema_database

ORDERS = 100_000
CUSTOMERS = 15_000
PARTS = 10_000
SUPPLIERS = 1_000
ACCOUNTS = 40_000
POSTS = 100_000
# One word of every post body is w<n> with n < WORDS: a search for one matches 1 in WORDS.
WORDS = 4_000

SCHEMA = [
    "DROP SCHEMA IF EXISTS dss, app CASCADE",
    "CREATE SCHEMA dss",
    "CREATE SCHEMA app",
    "CREATE TABLE dss.region (r_regionkey int PRIMARY KEY, r_name text NOT NULL)",
    """INSERT INTO dss.region
        SELECT g, (ARRAY['AFRICA', 'AMERICA', 'ASIA', 'EUROPE', 'MIDDLE EAST'])[g + 1]
        FROM generate_series(0, 4) AS g""",
    """CREATE TABLE dss.nation (
        n_nationkey int PRIMARY KEY, n_name text NOT NULL, n_regionkey int NOT NULL
    )""",
    "INSERT INTO dss.nation SELECT g, 'NATION' || g, g % 5 FROM generate_series(0, 24) AS g",
    """CREATE TABLE dss.supplier (
        s_suppkey int PRIMARY KEY, s_name text NOT NULL, s_nationkey int NOT NULL,
        s_acctbal numeric(12, 2) NOT NULL
    )""",
    f"""INSERT INTO dss.supplier
        SELECT g, 'Supplier#' || g, g % 25, (g * 37 % 11000) - 1000
        FROM generate_series(1, {SUPPLIERS}) AS g""",
    """CREATE TABLE dss.customer (
        c_custkey int PRIMARY KEY, c_name text NOT NULL, c_nationkey int NOT NULL,
        c_mktsegment text NOT NULL, c_acctbal numeric(12, 2) NOT NULL
    )""",
    f"""INSERT INTO dss.customer
        SELECT g, 'Customer#' || g, g % 25,
               (ARRAY['AUTOMOBILE', 'BUILDING', 'FURNITURE', 'HOUSEHOLD', 'MACHINERY'])
                   [g / 25 % 5 + 1],
               (g * 53 % 11000) - 1000
        FROM generate_series(1, {CUSTOMERS}) AS g""",
    """CREATE TABLE dss.part (
        p_partkey int PRIMARY KEY, p_name text NOT NULL, p_brand text NOT NULL,
        p_type text NOT NULL, p_size int NOT NULL, p_retailprice numeric(12, 2) NOT NULL
    )""",
    f"""INSERT INTO dss.part
        SELECT g, 'part ' || g, 'Brand#' || (g % 5 + 1) || (g % 7 + 1),
               (ARRAY['STANDARD', 'SMALL', 'MEDIUM', 'LARGE', 'ECONOMY', 'PROMO'])[g % 6 + 1]
               || ' BRASS', g % 47 + 1, 900 + (g % 1000)
        FROM generate_series(1, {PARTS}) AS g""",
    """CREATE TABLE dss.partsupp (
        ps_partkey int NOT NULL, ps_suppkey int NOT NULL, ps_availqty int NOT NULL,
        ps_supplycost numeric(12, 2) NOT NULL, PRIMARY KEY (ps_partkey, ps_suppkey)
    )""",
    f"""INSERT INTO dss.partsupp
        SELECT p, (p + s * 250) % {SUPPLIERS} + 1, (p * s) % 9999 + 1, (p + s) % 1000 + 1
        FROM generate_series(1, {PARTS}) AS p, generate_series(0, 3) AS s""",
    # Orders spread over 1992-1998 independently of their key; customers interleaved.
    """CREATE TABLE dss.orders (
        o_orderkey int PRIMARY KEY, o_custkey int NOT NULL, o_orderstatus char(1) NOT NULL,
        o_totalprice numeric(12, 2) NOT NULL, o_orderdate date NOT NULL,
        o_orderpriority text NOT NULL
    )""",
    f"""INSERT INTO dss.orders
        SELECT g, (g * 7919) % {CUSTOMERS} + 1,
               (ARRAY['F', 'O', 'P'])[g % 3 + 1], (g * 7907 % 400000) + 900.5,
               date '1992-01-01' + (g * 7901 % 2500),
               (ARRAY['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'])[g % 5 + 1]
        FROM generate_series(1, {ORDERS}) AS g""",
    # 1 to 4 lines an order (250k), clustered by order as loaded, parts and suppliers
    # interleaved.
    """CREATE TABLE dss.lineitem (
        l_orderkey int NOT NULL, l_linenumber int NOT NULL, l_partkey int NOT NULL,
        l_suppkey int NOT NULL, l_quantity int NOT NULL,
        l_extendedprice numeric(12, 2) NOT NULL, l_discount numeric(4, 2) NOT NULL,
        l_returnflag char(1) NOT NULL, l_shipdate date NOT NULL,
        PRIMARY KEY (l_orderkey, l_linenumber)
    )""",
    f"""INSERT INTO dss.lineitem
        SELECT o, l, (o * 31 + l * 7919) % {PARTS} + 1, (o * 17 + l) % {SUPPLIERS} + 1,
               (o + l) % 50 + 1, ((o + l) % 50 + 1) * (900 + (o * 31 + l) % 1000),
               ((o + l) % 11) / 100.0, (ARRAY['A', 'N', 'R'])[(o + l) % 3 + 1],
               date '1992-01-02' + (o * 7901 % 2500) + l * 3
        FROM generate_series(1, {ORDERS}) AS o, generate_series(1, 4) AS l
        WHERE l <= o % 4 + 1""",
    """CREATE TABLE app.accounts (
        id uuid PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL,
        is_admin boolean NOT NULL, deleted_at timestamptz, settings jsonb NOT NULL
    )""",
    # 1 admin in 500; 5% soft-deleted.
    f"""INSERT INTO app.accounts
        SELECT md5('account' || g)::uuid, 'Person' || g || '@Example.org',
               timestamptz '2023-01-01' + (g * 7907 % {ACCOUNTS}) * interval '10 minutes',
               g % 500 = 0, CASE WHEN g % 20 = 0 THEN timestamptz '2024-05-01' END,
               jsonb_build_object('theme', (ARRAY['dark', 'light'])[g % 2 + 1],
                                  'ref', 'r' || g)
        FROM generate_series(1, {ACCOUNTS}) AS g""",
    """CREATE TABLE app.posts (
        id bigint PRIMARY KEY, account_id uuid NOT NULL, created_at timestamptz NOT NULL,
        title text NOT NULL, body text NOT NULL, score int, archived_at timestamptz
    )""",
    # Timestamps uncorrelated with the key; a score on one post in 20, the rest NULL.
    f"""INSERT INTO app.posts
        SELECT g, md5('account' || (g * 7919 % {ACCOUNTS} + 1))::uuid,
               timestamptz '2024-01-01' + (g * 7907 % {POSTS}) * interval '3 minutes',
               'Post ' || g,
               'notes on ' || (ARRAY['databases', 'indexes', 'queries', 'planning'])[g % 4 + 1]
               || ' and w' || (g * 7 % {WORDS}) || ' with more words about the topic',
               CASE WHEN g % 20 = 0 THEN g % 1000 END,
               CASE WHEN g % 10 = 0 THEN timestamptz '2024-06-01' END
        FROM generate_series(1, {POSTS}) AS g""",
    "ANALYZE dss.region, dss.nation, dss.supplier, dss.customer, dss.part, dss.partsupp",
    "ANALYZE dss.orders, dss.lineitem, app.accounts, app.posts",
]
TEARDOWN = ["DROP SCHEMA IF EXISTS dss, app CASCADE"]


@pytest.fixture(scope="session", name="analytical_db")
def analytical_db_fixture(django_db_setup, django_db_blocker) -> Iterator[SchemaDatabase]:
    with django_db_blocker.unblock():
        conninfo = target_connection("default").conninfo
    yield from schema_database(conninfo, SCHEMA, TEARDOWN)


@pytest.fixture(name="analytical_conn")
def analytical_conn_fixture(analytical_db) -> Iterator[psycopg.Connection]:
    """The audit's connection to the target: autocommit, as the pipeline opens it."""
    with analytical_db.connect() as connection:
        yield connection
