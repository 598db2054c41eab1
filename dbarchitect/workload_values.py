"""The values the workload really runs a query with, from pg_qualstats, for the advisor.

pg_stat_statements shows `status = $1`; pg_qualstats saw which constants stood there and
how many rows each kept. Where it did, a query is costed (and then verified) with its
most used values in place of the pg_stats guesses; a predicate always run with one rare
value carries that value, so the candidates include the partial index
`WHERE column = value`; and a predicate whose values keep most of the table
(values_selective) gets no index keys at all. Without pg_qualstats nothing changes.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError

from pgaccess.catalog import ColumnStats
from pgaccess.generic_plan import Typed, literal_text
from pgaccess.qualstats import QualStat

from . import analysis as an
from . import parameters
from .predicate_values import costing_values, partial_index_value, values_selective

# The pg_qualstats operator name a parameter's filter kind is evaluated with.
KIND_OPERATORS = {an.FilterKind.EQ: "=", an.FilterKind.LIKE: "~~", an.FilterKind.ILIKE: "~~*"}


@dataclass(frozen=True)
class WorkloadForm:
    """A query as the workload runs it: the statement to cost, the analysis to generate
    candidates from, and which of its values came from pg_qualstats."""

    text: str  # every $n replaced: pg_qualstats' most used value, else a representative one
    analysis: an.QueryAnalysis
    values: Mapping[int, str]  # $n -> the constant pg_qualstats saw most, as it prints it
    partial: Mapping[str, str]  # column -> the one rare value the query always uses
    unselective: frozenset[str]  # columns whose values used keep most of the table


def quals_by_query(quals: Iterable[QualStat]) -> dict[int, tuple[QualStat, ...]]:
    grouped: dict[int, list[QualStat]] = defaultdict(list)
    for qual in quals:
        grouped[qual.queryid].append(qual)
    return {queryid: tuple(found) for queryid, found in grouped.items()}


def workload_form(
    conn: psycopg.Connection,
    analysis: an.QueryAnalysis,
    quals: Sequence[QualStat],
    *,
    resolve: parameters.Resolver,
    stats: dict[tuple[str, str, str], ColumnStats],
) -> WorkloadForm | None:
    """The query with the workload's values, or None when pg_qualstats saw none of its
    parameters' values (it is then costed as without pg_qualstats)."""
    if not quals or not analysis.ok or analysis.max_param == 0:
        return None
    by_column = {(q.schema, q.table, q.column, q.operator): q for q in quals}
    seen: dict[int, QualStat] = {}
    for number, use in analysis.params.items():
        operator = use.operator if use.kind == an.FilterKind.RANGE else KIND_OPERATORS.get(use.kind)
        found = resolve(use.column) if use.column is not None and operator else None
        if found is not None:
            info, column = found
            qual = by_column.get((info.schema, info.name, column, operator))
            if qual is not None and costing_values(qual, limit=1):
                seen[number] = qual
    values: dict[int, Any] = {}
    printed: dict[int, str] = {}
    for number, qual in seen.items():
        [(text, _share)] = costing_values(qual, limit=1)
        value = constant_value(text)
        if value is not None:
            values[number], printed[number] = value, text
    if not values:
        return None
    guessed = parameters.representative_values(conn, analysis, resolve, stats)
    text = literal_text(analysis.query, {**guessed, **values})
    partial = {}
    unselective = set()
    for qual in seen.values():
        always = partial_index_value(qual)
        if always is not None and constant_value(always.value) is not None:
            partial[qual.column] = constant_value(always.value).value
        if values_selective(qual) is False:
            unselective.add(qual.column)
    return WorkloadForm(
        text=text,
        analysis=_with_workload_values(analysis, resolve, partial, unselective),
        values=printed,
        partial=partial,
        unselective=frozenset(unselective),
    )


def constant_value(text: str | None) -> Typed | None:
    """pg_qualstats' printed constant ('open'::text, 42::integer, TRUE::bool) as a value
    literal_text writes back with its cast; None for anything else (an array, an
    expression)."""
    if not text:
        return None
    try:
        [statement] = parse_sql(f"SELECT {text}")
    except (ParseError, ValueError):
        return None
    node = statement.stmt.targetList[0].val
    if not isinstance(node, ast.TypeCast) or not isinstance(node.arg, ast.A_Const):
        return None
    if node.typeName.arrayBounds:
        return None
    constant = node.arg.val
    value = getattr(constant, "sval", None)
    if value is None:
        value = getattr(constant, "ival", None)
    if value is None:
        value = getattr(constant, "fval", None)
    if value is None:
        value = getattr(constant, "boolval", None)
    if value is None:
        return None
    type_name = ".".join(part.sval for part in node.typeName.names if part.sval != "pg_catalog")
    return Typed(value, type_name)


def _with_workload_values(
    analysis: an.QueryAnalysis,
    resolve: parameters.Resolver,
    partial: Mapping[str, Any],
    unselective: frozenset[str] | set[str],
) -> an.QueryAnalysis:
    """A copy whose equality predicates carry the value always used (a partial index's
    predicate) and without the predicates no index serves for the values used."""
    if not partial and not unselective:
        return analysis
    result = copy.copy(analysis)
    result.scopes = []
    for scope in analysis.scopes:
        predicates = []
        for predicate in scope.predicates:
            found = resolve(predicate.column)
            column = found[1] if found is not None else None
            if column in unselective:
                continue
            if column in partial and predicate.kind == an.FilterKind.EQ and predicate.params:
                predicate = replace(predicate, value=str(partial[column]))
            predicates.append(predicate)
        result.scopes.append(replace(scope, predicates=predicates))
    return result
