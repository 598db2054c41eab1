"""A database holding a test schema, built once per session, for the advisor's tests."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class SchemaDatabase:
    conninfo: str

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, autocommit=True)


def statements_run(conninfo: str, statements: Iterable[str]) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def schema_database(
    conninfo: str, setup: Iterable[str], teardown: Iterable[str] = ()
) -> Iterator[SchemaDatabase]:
    """Run `setup` in the database, hand it over, then run `teardown` (a fixture's body)."""
    statements_run(conninfo, setup)
    yield SchemaDatabase(conninfo)
    statements_run(conninfo, teardown)
