"""What the advisor knows of the target before costing: catalog facts, read once.

The tables each query names (views expanded into their definition, see views.py), their
columns, indexes and statistics; then what else the advice depends on: the server's
version, pg_trgm, the text search configuration, the rows the workload wrote, the tables
the role may not read, and the relation names an index name must not take.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import psycopg

from pgaccess.catalog import (
    ColumnStats,
    TableInfo,
    catalog_column_stats,
    catalog_partition_roots,
    catalog_tables,
)
from pgaccess.marker import cursor
from pgaccess.values import text_search_config

from .. import analysis as an
from ..analysis import column_resolve
from ..candidates import single_table_reads
from .advice import WorkloadLike
from .views import MAX_VIEW_DEPTH, through_view, views_expand


@dataclass(frozen=True)
class Catalog:
    """The relations the queries name, as written -> the catalog's view of them."""

    tables: Mapping[an.Relation, TableInfo]
    views: Mapping[int, an.QueryAnalysis]  # an expanded view's oid -> its definition
    stats: Mapping[tuple[str, str, str], ColumnStats]  # (schema, table, column)

    @property
    def by_oid(self) -> dict[int, TableInfo]:
        return {t.oid: t for t in self.tables.values()}

    def resolve(self, use: an.ColumnUse) -> tuple[TableInfo, str] | None:
        """The table and column a query's column reference means (through views)."""
        found = column_resolve(use, self.tables)
        if found is not None and found[0].kind == "v":
            return through_view(self.tables, self.views, found[0], found[1])
        return found

    def column_stats(self, info: TableInfo, column: str) -> ColumnStats | None:
        return self.stats.get((info.schema, info.name, column))


@dataclass(frozen=True)
class TargetFacts:
    """The catalog and the rest of what the advice depends on (what candidates.py reads)."""

    catalog: Catalog
    by_oid: Mapping[int, TableInfo]
    server_version: int
    trigram: bool  # pg_trgm is installed: its GIN operator class exists
    text_search_config: str  # default_text_search_config, for a hidden to_tsvector($n, ...)
    ambiguous: Mapping[str, list[str]]  # unqualified name -> the schemas holding one
    unreadable: Mapping[int, tuple[str, str]]  # table oid -> (role, table) without SELECT
    rows_written: Mapping[int, float]  # table oid -> rows the workload wrote
    relation_names: Mapping[str, frozenset[str]]  # schema -> every relation name in it

    def resolve(self, use: an.ColumnUse) -> tuple[TableInfo, str] | None:
        return self.catalog.resolve(use)

    def column_stats(self, info: TableInfo, column: str) -> ColumnStats | None:
        return self.catalog.column_stats(info, column)


def catalog_read(conn: psycopg.Connection, analyses: Sequence[an.QueryAnalysis]) -> Catalog:
    """Look every relation up; a view's definition joins the query as extra scopes (the
    analyses are extended in place), then the statistics of every column they use."""
    tables: dict[an.Relation, TableInfo] = {}
    pending = {rel for a in analyses for rel in a.relations}
    expanded: dict[int, an.QueryAnalysis] = {}
    for _depth in range(MAX_VIEW_DEPTH + 1):
        new = catalog_tables(conn, [r for r in pending if r not in tables])
        tables.update(new)
        pending = set()
        for info in {t.oid: t for t in new.values()}.values():
            if info.kind == "v" and info.view_definition and info.oid not in expanded:
                view = an.analyze_query(info.view_definition)
                if view.ok:
                    expanded[info.oid] = view
                    pending.update(view.relations)
        if not pending:
            break
    done: set[int] = set()
    for analysis in analyses:
        views_expand(analysis, tables, expanded, 0, done)
    stats = catalog_column_stats(conn, _stat_columns(analyses, tables))
    return Catalog(tables, expanded, stats)


def _stat_columns(
    analyses: Iterable[an.QueryAnalysis], tables: Mapping[an.Relation, TableInfo]
) -> list[tuple[str, str, str]]:
    wanted = []
    for analysis in analyses:
        uses = [p.column for s in analysis.scopes for p in s.predicates]
        uses += [j.left for s in analysis.scopes for j in s.joins]
        uses += [j.right for s in analysis.scopes for j in s.joins]
        uses += [u.column for u in analysis.params.values() if u.column is not None]
        # Sort and group keys too: a candidate's size is estimated from each key's width.
        uses += [k.column for s in analysis.scopes for k in s.order_by if k.column is not None]
        uses += [g for s in analysis.scopes for g in s.group_by]
        for use in uses:
            found = column_resolve(use, tables)
            if found is not None:
                wanted.append((found[0].schema, found[0].name, found[1]))
        # What a covering index INCLUDEs is sized from pg_stats as well.
        relations = analysis.relations
        if len(relations) == 1 and (info := tables.get(relations[0])) is not None:
            reads = single_table_reads(analysis)
            wanted += [(info.schema, info.name, c) for c in reads if c in info.columns]
    return wanted


def target_facts_read(
    conn: psycopg.Connection,
    catalog: Catalog,
    *,
    server: tuple[int, bool],
    ambiguous: Mapping[str, list[str]],
    workload: Sequence[WorkloadLike],
) -> TargetFacts:
    """The rest of the facts; `server`: (server_version_num, pg_trgm installed)."""
    server_version, trigram = server
    return TargetFacts(
        catalog=catalog,
        by_oid=catalog.by_oid,
        server_version=server_version,
        trigram=trigram,
        text_search_config=text_search_config(conn),
        ambiguous=ambiguous,
        unreadable=_unreadable_tables(conn, catalog.tables),
        rows_written=_rows_written(conn, workload, catalog.tables),
        relation_names=_relation_names(conn, {t.schema for t in catalog.tables.values()}),
    )


def server_read(conn: psycopg.Connection) -> tuple[int, bool]:
    """(server_version_num, whether pg_trgm is installed)."""
    with cursor(conn) as cur:
        cur.execute(
            "SELECT current_setting('server_version_num')::int, "
            "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')"
        )
        version, trigram = cur.fetchone()
    return int(version), bool(trigram)


def _unreadable_tables(
    conn: psycopg.Connection, tables: Mapping[an.Relation, TableInfo]
) -> dict[int, tuple[str, str]]:
    """The tables the session's role has no SELECT on: oid -> (role, schema.table), quoted."""
    with cursor(conn) as cur:
        cur.execute(
            """
            SELECT c.oid, quote_ident(current_user), format('%%I.%%I', n.nspname, c.relname)
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.oid = ANY(%s::oid[]) AND NOT has_table_privilege(c.oid, 'SELECT')""",
            (sorted({info.oid for info in tables.values()}),),
        )
        return {oid: (role, table) for oid, role, table in cur.fetchall()}


def _rows_written(
    conn: psycopg.Connection,
    workload: Sequence[WorkloadLike],
    tables: Mapping[an.Relation, TableInfo],
) -> dict[int, float]:
    """Rows the workload's own writes put into each table (partitions count for their
    root): what a new index there has to keep up with."""
    by_relation: dict[an.Relation, float] = defaultdict(float)
    for statement in workload:
        rows = float(getattr(statement, "rows", 0) or 0)
        if rows <= 0:
            continue
        for relation in dict.fromkeys(an.analyze_query(statement.query).written):
            by_relation[relation] += rows
    if not by_relation:
        return {}
    table_relations = {an.Relation(t.schema, t.name): t.oid for t in tables.values()}
    roots = catalog_partition_roots(conn, [*by_relation, *table_relations])
    written_by_root: dict[int, float] = defaultdict(float)
    for relation, rows in by_relation.items():
        if relation in roots:
            written_by_root[roots[relation]] += rows
    return {
        oid: written_by_root[roots[relation]]
        for relation, oid in table_relations.items()
        if relation in roots and roots[relation] in written_by_root
    }


def _relation_names(conn: psycopg.Connection, schemas: set[str]) -> dict[str, frozenset[str]]:
    """Every relation name in these schemas: an index name must be new there, or CREATE
    INDEX ... IF NOT EXISTS would quietly do nothing."""
    with cursor(conn) as cur:
        cur.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%s)",
            (sorted(schemas),),
        )
        names: dict[str, set[str]] = defaultdict(set)
        for schema, name in cur.fetchall():
            names[schema].add(name)
    return {schema: frozenset(found) for schema, found in names.items()}
