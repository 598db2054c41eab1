"""A second audit target: the PostgreSQL 17 that scripts/pg17.sh starts (`make test` does).

The tests/dbarchitect workload (tables, planted index problems, the slow query) is built
in a database of its own on that server, so the audit runs there end to end: collect
(pg_stat_statements 1.11), advise (EXPLAIN (GENERIC_PLAN)), verify and record.
"""

import os
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.test import override_settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dbarchitect.models import Target
from tests.dbarchitect.conftest import INVALID_INDEX, SCHEMA
from tests.tools import requires_tool

TARGET = "pg17"
SERVER_URL = os.environ.get(
    "DBARCHITECT_PG17_URL",
    f"postgres://postgres@127.0.0.1:{os.environ.get('DBARCHITECT_PG17_PORT', '5545')}/postgres",
)


def server_version() -> int | None:
    """The major version of the server at SERVER_URL, or None when none answers."""
    try:
        with psycopg.connect(SERVER_URL, connect_timeout=3) as conn:
            return conn.info.server_version // 10000
    except psycopg.OperationalError:
        return None


pg17 = requires_tool(
    server_version() == 17, f"PostgreSQL 17 at {SERVER_URL} (sudo bash scripts/pg17.sh starts one)"
)


def database_create(name: str, *, pgss_version: str | None = None) -> str:
    """A fresh database on the server with hypopg and pg_stat_statements (at
    `pgss_version`, default the newest); its conninfo."""
    database_drop(name)
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conninfo = make_conninfo(SERVER_URL, dbname=name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION hypopg")
        version = sql.SQL(" VERSION {}").format(pgss_version) if pgss_version else sql.SQL("")
        conn.execute(sql.SQL("CREATE EXTENSION pg_stat_statements{}").format(version))
    return conninfo


def database_drop(name: str) -> None:
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        conn.execute(drop)


def database_name(suffix: str) -> str:
    """Named after this run's test database: parallel runs on one server never collide."""
    return f"{settings.DATABASES['default']['TEST']['NAME']}_{suffix}"


def architect_statements(conn, fragment: str) -> list[tuple[str, int]]:
    """The architect's statements that pg_stat_statements recorded in this database and
    whose text contains `fragment`, with their calls."""
    rows = conn.execute(
        "SELECT query, calls FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND starts_with(query, '/* dbarchitect */') AND strpos(query, %s) > 0",
        [fragment],
    )
    return rows.fetchall()


@pytest.fixture(scope="session")
def pg17_workload(django_db_setup) -> Iterator[str]:
    """The pipeline workload of tests/dbarchitect in a database on PostgreSQL 17."""
    name = database_name("pg17")
    conninfo = database_create(name)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(INVALID_INDEX)
    yield conninfo
    database_drop(name)


@pytest.fixture
def pg17_conn(pg17_workload) -> Iterator[psycopg.Connection]:
    """A client connection to the PostgreSQL 17 database, as an application would open one."""
    with psycopg.connect(pg17_workload, autocommit=True) as conn:
        yield conn


@pytest.fixture
def pg17_target(pg17_workload) -> Iterator[Target]:
    """The PostgreSQL 17 database configured as the target `pg17`, verification allowed.
    Needs a django_db mark on the test."""
    url = "postgres://{user}@{host}:{port}/{dbname}".format(**conninfo_to_dict(pg17_workload))
    with override_settings(DBARCHITECT_TARGETS=f"{TARGET}={url}"):
        yield Target.objects.create(name=TARGET, allow_verify=True)
