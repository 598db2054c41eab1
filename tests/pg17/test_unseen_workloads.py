"""The unseen-workload tests of tests/dbarchitect (quoted schemas, partitions, awkward
normalized texts, array parameters), run again on PostgreSQL 17, where they are costed
with EXPLAIN (GENERIC_PLAN). `unseen_db` below builds the same schemas there."""

from collections.abc import Iterator

import pytest

from tests.dbarchitect.schema_db import SchemaDatabase, schema_database
from tests.dbarchitect.test_unseen_workloads import *  # noqa: F403 - collected again here
from tests.dbarchitect.unseen_fixtures import SCHEMA

from .conftest import database_create, database_drop, database_name, pg17

pytestmark = pg17

# It audits the target `default`, the app's own database on PostgreSQL 15; the whole audit
# on 17 is tests/pg17/test_audit.py.
del test_a_whole_audit_of_the_shop_costs_or_explains_every_query  # noqa: F821


@pytest.fixture(scope="session", name="unseen_db")
def unseen_db_fixture(django_db_setup) -> Iterator[SchemaDatabase]:
    name = database_name("pg17_unseen")
    yield from schema_database(database_create(name), SCHEMA)
    database_drop(name)
