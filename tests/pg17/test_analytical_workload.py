"""The analytical and application workloads of tests/dbarchitect, run again on PostgreSQL 17,
where they are costed with EXPLAIN (GENERIC_PLAN). `analytical_db` below builds the same
schemas there."""

from collections.abc import Iterator

import pytest

from tests.dbarchitect.analytical_fixtures import SCHEMA
from tests.dbarchitect.schema_db import SchemaDatabase, schema_database
from tests.dbarchitect.test_analytical_workload import *  # noqa: F403 - collected again here

from .conftest import database_create, database_drop, database_name, pg17

pytestmark = pg17

# It audits the target `default`, the app's own database on PostgreSQL 15; the whole audit
# on 17 is tests/pg17/test_audit.py.
del test_a_whole_audit_costs_or_explains_every_statement_and_measures_its_gains  # noqa: F821


@pytest.fixture(scope="session", name="analytical_db")
def analytical_db_fixture(django_db_setup) -> Iterator[SchemaDatabase]:
    name = database_name("pg17_analytical")
    yield from schema_database(database_create(name), SCHEMA)
    database_drop(name)
