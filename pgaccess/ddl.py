"""Index DDL: one way to write a CREATE INDEX, one parsed form of it (IndexSpec), one way
to name an index, one DROP.

Every index the architect proposes is written by `create_index_sql` (the advisor's
candidates, the health checks' foreign-key indexes) and named by `index_name` (those, and
a DDL that came without a name); every CREATE INDEX it runs or writes into a migration is
an IndexSpec printed by pglast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol

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


class KeyLike(Protocol):
    """One key of an index: a column, or an expression as pglast prints it."""

    text: str
    expression: bool
    opclass: str | None
    descending: bool
    nulls_first: bool | None  # None: the direction's default


@dataclass(frozen=True)
class IndexColumn:
    """A key that is a plain column, ascending, with its type's default operator class."""

    text: str
    expression: bool = False
    opclass: str | None = None
    descending: bool = False
    nulls_first: bool | None = None


def key_sql(key: KeyLike) -> sql.Composable:
    """`"col"` or `(expression)`, then its operator class, DESC and NULLS FIRST / LAST."""
    parts: list[sql.Composable] = [
        sql.SQL("({})").format(sql.SQL(key.text)) if key.expression else sql.Identifier(key.text)
    ]
    if key.opclass:
        parts.append(sql.SQL(key.opclass))
    if key.descending:
        parts.append(sql.SQL("DESC"))
    if key.nulls_first is True:
        parts.append(sql.SQL("NULLS FIRST"))
    elif key.nulls_first is False:
        parts.append(sql.SQL("NULLS LAST"))
    return sql.SQL(" ").join(parts)


def create_index_sql(
    *,
    schema: str,
    table: str,
    keys: Iterable[KeyLike],
    method: str | None = None,
    where: str | None = None,
    name: str | None = None,
    concurrent: bool = False,
    if_not_exists: bool = False,
    include: Iterable[str] = (),
) -> sql.Composed:
    """CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON schema.table [USING method]
    (keys) [INCLUDE (columns)] [WHERE predicate]; `where` and expression keys are SQL as
    pglast printed it."""
    head = "CREATE INDEX " + ("CONCURRENTLY " if concurrent else "")
    head += "IF NOT EXISTS " if if_not_exists else ""
    statement = sql.SQL(head + "{name}ON {table}{using} ({keys})").format(
        name=sql.SQL("{} ").format(sql.Identifier(name)) if name else sql.SQL(""),
        table=sql.Identifier(schema, table),
        using=sql.SQL(" USING {}").format(sql.SQL(method)) if method else sql.SQL(""),
        keys=sql.SQL(", ").join(key_sql(key) for key in keys),
    )
    include = list(include)
    if include:
        columns = sql.SQL(", ").join(sql.Identifier(column) for column in include)
        statement = sql.SQL("{} INCLUDE ({})").format(statement, columns)
    if where:
        statement = sql.SQL("{} WHERE {}").format(statement, sql.SQL(where))
    return statement


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
