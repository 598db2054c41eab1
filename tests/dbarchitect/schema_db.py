"""A database holding a test schema, built once per session, for the advisor's tests."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql


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


def recommendations_build(conn: psycopg.Connection, recommendations: list) -> None:
    """Run each recommendation's DDL as written: each index must come out valid. They are
    all dropped again, also when one fails."""
    built = []
    try:
        for rec in recommendations:
            conn.execute(rec.ddl)
            built.append(rec)
            valid = conn.execute(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                [sql.Identifier(rec.schema, rec.name).as_string(conn)],
            ).fetchone()
            assert valid == (True,), rec.ddl
    finally:
        for rec in built:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(rec.schema, rec.name)))
