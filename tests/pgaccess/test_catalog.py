"""Catalog and pg_stat_statements reads: the one pg_index reader, the system-schema rule,
and the one entry reader (all entries, or a few queries')."""

from dataclasses import dataclass

import psycopg
import pytest

from pgaccess.catalog import catalog_tables, is_system_schema
from pgaccess.pgss import pgss_read
from pgaccess.targets import database_conninfo

SCHEMA = [
    "DROP TABLE IF EXISTS cat_item",
    "CREATE TABLE cat_item (id bigint PRIMARY KEY, name text NOT NULL, made timestamptz)",
    "CREATE INDEX cat_item_name_made ON cat_item (name text_pattern_ops, made DESC)",
    "CREATE INDEX cat_item_lower ON cat_item (lower(name)) WHERE made IS NOT NULL",
]


@dataclass(frozen=True)
class Rel:
    schema: str | None
    name: str


@pytest.fixture
def conn(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), psycopg.connect(database_conninfo(), autocommit=True) as c:
        for statement in SCHEMA:
            c.execute(statement)
        yield c
        c.execute("DROP TABLE cat_item")


def test_the_servers_own_schemas_are_information_schema_and_every_pg_one():
    assert all(map(is_system_schema, ["pg_catalog", "information_schema", "pg_toast"]))
    assert is_system_schema("pg_temp_3") and not is_system_schema("public")
    assert not is_system_schema("Shop")


def test_index_facts_come_as_the_advisor_reads_them(conn):
    [info] = catalog_tables(conn, [Rel(None, "cat_item")]).values()
    indexes = {index.name: index for index in info.indexes}
    pair = indexes["cat_item_name_made"]
    assert (pair.method, pair.keys, pair.descending) == ("btree", ("name", "made"), (False, True))
    assert pair.opclasses == ("text_pattern_ops", "timestamptz_ops") and pair.predicate is None
    assert pair.valid and not pair.unique and pair.size_bytes > 0
    expression = indexes["cat_item_lower"]
    assert expression.keys == ("lower(name)",) and expression.predicate == "made IS NOT NULL"
    assert indexes["cat_item_pkey"].unique and not info.is_system


def test_the_entry_reader_reads_every_entry_or_only_the_queries_asked_for(conn):
    conn.execute("SELECT count(*) FROM cat_item WHERE id = %s", [1]).fetchall()
    everything = pgss_read(conn)
    mine = [row for row in everything if "FROM cat_item WHERE id" in row.query]
    assert mine and mine[0].calls >= 1
    only = pgss_read(conn, queryids=[mine[0].queryid])
    assert {row.queryid for row in only} == {mine[0].queryid}
    assert pgss_read(conn, queryids=[]) == []
