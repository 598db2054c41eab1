"""The advisor and verifier tests of tests/dbarchitect, run again on PostgreSQL 17.

There every normalized query is costed with EXPLAIN (GENERIC_PLAN) instead of PREPARE +
EXPLAIN EXECUTE, so each index kind, each awkward parameter and each verification is
proved on both costing paths. Only the database they run in changes: `advisor_db` below
builds the same tables on the PostgreSQL 17 server.
"""

from collections.abc import Iterator

import pytest

from tests.dbarchitect.advisor_fixtures import SCHEMA
from tests.dbarchitect.schema_db import SchemaDatabase, schema_database
from tests.dbarchitect.test_advisor import *  # noqa: F403 - the tests, collected again here
from tests.dbarchitect.test_verifier import *  # noqa: F403

from .conftest import database_create, database_drop, database_name, pg17

pytestmark = pg17


@pytest.fixture(scope="session", name="advisor_db")
def advisor_db_fixture(django_db_setup) -> Iterator[SchemaDatabase]:
    name = database_name("pg17_advisor")
    yield from schema_database(database_create(name), SCHEMA)
    database_drop(name)
