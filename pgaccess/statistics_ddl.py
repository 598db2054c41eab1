"""Statistics-object DDL: one parsed form of a CREATE STATISTICS (StatisticsSpec), printed
the same way wherever it runs (the apply) or is written (the pull request's migration).

A statistics object changes nothing until its table is ANALYZEd, so every create goes with
an ANALYZE of only its columns, and a drop undoes both.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.parser import ParseError
from psycopg import sql

from .column_statistics import StatisticsKind


class StatisticsDdlError(ValueError):
    """The text is not one CREATE STATISTICS the architect writes; str() says why."""


@dataclass(frozen=True)
class StatisticsSpec:
    schema: str
    table: str
    name: str
    columns: tuple[str, ...]
    kinds: tuple[StatisticsKind, ...]

    def create_sql(self, *, if_not_exists: bool = False) -> str:
        return (
            sql.SQL("CREATE STATISTICS {exists}{name} ({kinds}) ON {columns} FROM {relation}")
            .format(
                exists=sql.SQL("IF NOT EXISTS " if if_not_exists else ""),
                name=sql.Identifier(self.schema, self.name),
                kinds=sql.SQL(", ").join(sql.SQL(kind.value) for kind in self.kinds),
                columns=self._columns(),
                relation=sql.Identifier(self.schema, self.table),
            )
            .as_string(None)
        )

    def analyze_sql(self) -> str:
        """The ANALYZE that fills the object: only its columns, a sample of the table."""
        return (
            sql.SQL("ANALYZE {relation} ({columns})")
            .format(relation=sql.Identifier(self.schema, self.table), columns=self._columns())
            .as_string(None)
        )

    def drop_sql(self) -> str:
        return (
            sql.SQL("DROP STATISTICS IF EXISTS {name}")
            .format(name=sql.Identifier(self.schema, self.name))
            .as_string(None)
        )

    def _columns(self) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(column) for column in self.columns)


def statistics_spec_parse(ddl: str) -> StatisticsSpec:
    """The one CREATE STATISTICS in `ddl`: schema-qualified name and table, plain columns
    (no expressions), kinds PostgreSQL knows."""
    try:
        statements = parse_sql(ddl)
    except ParseError as exc:
        raise StatisticsDdlError(f"the statistics DDL does not parse: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.CreateStatsStmt):
        raise StatisticsDdlError("expected exactly one CREATE STATISTICS statement")
    node = statements[0].stmt
    names = [part.sval for part in node.defnames or ()]
    relations = node.relations or ()
    if len(names) != 2 or len(relations) != 1 or not relations[0].schemaname:
        raise StatisticsDdlError("the statistics object and its table must be schema-qualified")
    if any(element.name is None for element in node.exprs):
        raise StatisticsDdlError("only statistics on plain columns are applied, not expressions")
    columns = tuple(element.name for element in node.exprs)
    if len(set(columns)) < 2:
        raise StatisticsDdlError("a statistics object needs two or more distinct columns")
    try:
        kinds = tuple(StatisticsKind(kind.sval) for kind in node.stat_types or ())
    except ValueError as exc:
        raise StatisticsDdlError(f"unknown statistics kind: {exc}") from None
    if not kinds:
        raise StatisticsDdlError("name the statistics kinds (dependencies, ndistinct, mcv)")
    return StatisticsSpec(
        schema=relations[0].schemaname,
        table=relations[0].relname,
        name=names[1],
        columns=columns,
        kinds=kinds,
    )
