"""Index DDL: one parsed CREATE INDEX (IndexSpec), one way to name an index, one DROP.

Every index the architect writes is named by `index_name` (the advisor's candidates, the
health checks' foreign-key indexes, a DDL that came without a name), and every CREATE INDEX
it runs or writes into a migration is an IndexSpec printed by pglast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pglast import parse_sql
from pglast.ast import IndexStmt
from pglast.enums.parsenodes import SortByDir, SortByNulls
from pglast.stream import RawStream
from psycopg import sql

# PostgreSQL truncates identifiers longer than this many bytes.
POSTGRES_NAME_MAX = 63
# Hex digits of the hash that keeps a shortened or taken name unique.
DIGEST_LENGTH = 8


class DdlError(ValueError):
    """The text is not one CREATE INDEX statement; str() says why."""


def index_name(
    table: str,
    parts: Iterable[str],
    *,
    identity: str | None = None,
    suffix: str = "idx",
    taken: Collection[str] = (),
) -> str:
    """<table>_<parts>_<suffix>; when that is longer than PostgreSQL's 63 bytes or already
    taken, its head with a stable hash of `identity` (default: the table and parts)."""
    parts = list(parts)
    name = "_".join([table, *parts, suffix])
    if len(name.encode()) <= POSTGRES_NAME_MAX and name not in taken:
        return name
    identity = "\0".join([table, *parts]) if identity is None else identity
    digest = hashlib.sha1(identity.encode()).hexdigest()[:DIGEST_LENGTH]
    head = name.encode()[: POSTGRES_NAME_MAX - DIGEST_LENGTH - 1].decode(errors="ignore")
    return f"{head.rstrip('_')}_{digest}"


def drop_index_sql(schema: str | None, name: str) -> sql.Composed:
    """DROP INDEX CONCURRENTLY IF EXISTS [schema.]name."""
    parts = (schema, name) if schema else (name,)
    return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(*parts))


@dataclass(frozen=True)
class IndexSpec:
    """One CREATE INDEX statement, parsed: what building it, or a migration, needs to know."""

    statement: IndexStmt = field(compare=False)
    schema: str | None
    table: str
    name: str
    columns: tuple[str, ...]  # plain columns, in order; empty when any element is an expression
    descending: tuple[bool, ...]
    plain: bool  # btree, no expression/WHERE/UNIQUE/NULLS/opclass/collation: a models.Index

    def create_sql(self, *, if_not_exists: bool = True, concurrent: bool = True) -> str:
        self.statement.concurrent = concurrent
        self.statement.if_not_exists = if_not_exists
        self.statement.idxname = self.name
        return RawStream()(self.statement)

    def drop_sql(self) -> str:
        return drop_index_sql(self.schema, self.name).as_string(None)

    @property
    def qualified(self) -> sql.Identifier:
        return sql.Identifier(*((self.schema, self.name) if self.schema else (self.name,)))


def index_spec_parse(ddl: str) -> IndexSpec:
    """Parse one CREATE INDEX statement with the PostgreSQL parser (DdlError if it is not)."""
    try:
        statements = parse_sql(ddl)
    except Exception as exc:  # pglast.parser.ParseError and friends
        raise DdlError(f"Cannot parse the DDL {ddl!r}: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, IndexStmt):
        raise DdlError(f"Expected one CREATE INDEX statement, got {ddl!r}")
    stmt = statements[0].stmt
    columns, descending, plain = [], [], True
    for element in stmt.indexParams:
        if element.name is None:
            plain = False
            columns.append("expr")
            descending.append(False)
            continue
        columns.append(element.name)
        descending.append(element.ordering == SortByDir.SORTBY_DESC)
        if element.nulls_ordering != SortByNulls.SORTBY_NULLS_DEFAULT:
            plain = False
        if element.opclass or element.collation:
            plain = False
    if stmt.unique or stmt.whereClause is not None or stmt.indexIncludingParams:
        plain = False
    if (stmt.accessMethod or "btree") != "btree":
        plain = False
    table = stmt.relation.relname
    return IndexSpec(
        statement=stmt,
        schema=stmt.relation.schemaname,
        table=table,
        name=stmt.idxname or index_name(table, columns, identity=ddl),
        columns=tuple(columns) if plain else (),
        descending=tuple(descending),
        plain=plain,
    )
