"""A table no index serves yet, and recommendations to build indexes on it, in the test DB."""

import psycopg
import pytest

from dbarchitect.targets import target_sync
from optimizations.models import OptimizationLog
from pgaccess.targets import target_connection

TABLE = "dec_orders"
ROWS = 200_000
LOOKUP = f"SELECT count(*) FROM {TABLE} WHERE customer_id = %s"


def connect() -> psycopg.Connection:
    return psycopg.connect(target_connection("default").conninfo, autocommit=True)


def index_valid(name: str) -> bool | None:
    """True valid, False INVALID (a failed build), None no such index."""
    with connect() as conn:
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]
        ).fetchone()
    return None if row is None else row[0]


@pytest.fixture
def orders():
    """A table in the test database with a lookup no index serves yet."""
    with connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, customer_id int NOT NULL)")
        conn.execute(f"INSERT INTO {TABLE} SELECT g, g % 5000 FROM generate_series(1, {ROWS}) AS g")
        conn.execute(f"ANALYZE {TABLE}")
    yield TABLE
    with connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def recommendation(ddl: str, **fields) -> OptimizationLog:
    target = target_sync()[0]
    return OptimizationLog.objects.create(
        target=target,
        query_text=LOOKUP,
        recommendation=ddl,
        ddl=ddl,
        fingerprint=ddl,
        **fields,
    )
