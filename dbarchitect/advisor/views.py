"""Views, seen through: a view's definition joins the query that reads it.

pg_stat_statements records the query as written, against the view; the indexes that
serve it are on the view's tables. Each view's SELECT is appended to the query's scopes,
with the query's filters and sort on the view's columns carried into it (so they combine
into composite keys), and a view's output column that is a plain column of one of its
tables resolves to that column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pgaccess.catalog import TableInfo

from .. import analysis as an
from ..analysis import column_resolve

# How views are expanded: their definition is analyzed like a sub-select, this deep.
MAX_VIEW_DEPTH = 3

Tables = Mapping[an.Relation, TableInfo]


def views_expand(
    analysis: an.QueryAnalysis,
    tables: Tables,
    expanded: Mapping[int, an.QueryAnalysis],
    depth: int,
    done: set[int],
) -> None:
    """Append each view's scopes to the query (in place), nested views first.

    `expanded`: each view's analysis by oid; `done`: the views whose own nested views are
    expanded already."""
    if depth > MAX_VIEW_DEPTH:
        return
    for scope in list(analysis.scopes):
        for relation in scope.relations:
            info = tables.get(relation)
            if info is None or info.oid not in expanded:
                continue
            view = expanded[info.oid]
            if info.oid not in done:
                done.add(info.oid)
                views_expand(view, tables, expanded, depth + 1, done)
            main = next((v for v in view.scopes if v.kind == "select"), None)
            for view_scope in view.scopes:
                merged = _scope_copy(view_scope, kind="view")
                if view_scope is main:
                    _carry_into_view(scope, merged, info, tables)
                analysis.scopes.append(merged)


def _carry_into_view(outer: an.Scope, inner: an.Scope, view: TableInfo, tables: Tables) -> None:
    def mapped(use: an.ColumnUse) -> an.ColumnUse | None:
        found = column_resolve(use, tables)
        if found is None or found[0].oid != view.oid:
            return None
        return inner.outputs.get(found[1])

    for predicate in outer.predicates:
        column = mapped(predicate.column)
        if column is not None:
            inner.predicates.append(replace(predicate, column=column))
    sort = [mapped(key.column) if key.column is not None else None for key in outer.order_by]
    if outer.order_by and all(sort):
        inner.order_by = [
            replace(key, column=column) for key, column in zip(outer.order_by, sort, strict=True)
        ]
        inner.limit = outer.limit


def _scope_copy(scope: an.Scope, kind: str) -> an.Scope:
    return an.Scope(
        relations=list(scope.relations),
        predicates=list(scope.predicates),
        joins=list(scope.joins),
        order_by=list(scope.order_by),
        group_by=list(scope.group_by),
        limit=scope.limit,
        offset=scope.offset,
        select_star=scope.select_star,
        correlated=scope.correlated,
        kind=kind,
        outputs=dict(scope.outputs),
    )


def through_view(
    tables: Tables, views: Mapping[int, an.QueryAnalysis], view: TableInfo, column: str
) -> tuple[TableInfo, str] | None:
    """A view's output column that is a plain column of one of its tables: that column."""
    analysis = views.get(view.oid)
    use = None
    for scope in analysis.scopes if analysis is not None else ():
        if scope.kind == "select" and column in scope.outputs:
            use = scope.outputs[column]
            break
    if use is None:
        return None
    found = column_resolve(use, tables)
    if found is None or found[0].kind == "v":
        return None
    return found
