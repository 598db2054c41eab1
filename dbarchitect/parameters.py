"""What the `$n` of a normalized query stand for: their types, representative values, and
the forms of the query the planner is asked about (pgaccess.generic_plan plans them).

The ladder, cheapest and most faithful first:

1. the statement re-printed from its pglast AST (typed literals `date $1` become
   `CAST($1 AS date)`), prepared as is: the planner's own generic plan;
2. the same with each parameter's type given explicitly: the type of the column it is
   compared with, the type of its cast, bigint for LIMIT / OFFSET;
3. the statement with every parameter replaced by a representative literal from
   pg_stats (or a sampled row, pgaccess.values), planned as a custom plan.

A query whose plan depends on the value itself (`col LIKE $1`: only a known prefix can
use an index) starts at step 3. An equality on a skewed column is also planned with a
rare and a common value; if the rare one costs far more, that plan (the slow case the
average hides) is the one indexes are costed on. Callers run this inside their own
transaction: a failed attempt is rolled back to a savepoint and the next one is tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import psycopg

from pgaccess.catalog import ColumnStats, TableInfo
from pgaccess.generic_plan import (
    UNTYPED_CONSTANT,
    CostForm,
    PlanCost,
    Typed,
    context_param_types,
    literal_text,
    plan_cost,
    plan_first,
    prepared_param_types,
    statement_text,
)
from pgaccess.values import (
    array_literal,
    enum_label,
    sampled_operand,
    sampled_value,
    text_search_config,
    value_for_type,
)

from . import analysis as an

# LIMIT / OFFSET values when the query's own are parameters: a page of a typical list.
REPRESENTATIVE_LIMIT = 10
REPRESENTATIVE_OFFSET = 0
# The unit of date_trunc($1, ts) / EXTRACT($1 FROM ts) when it is a parameter.
REPRESENTATIVE_TIME_UNIT = "day"
# Values in the array of a representative `col = ANY($n)`.
ANY_ARRAY_VALUES = 3
# Range parameters pick the value at this quantile of the column's histogram (or its
# mirror for "<"), so "ts > $1" selects about the newest tenth: a selective, common use.
RANGE_QUANTILE = 0.9
# A column is skewed when its most common value is this many times more frequent than a
# rare one; a rare value's plan then replaces the generic one if it costs this much more.
SKEW_RATIO = 10.0
RARE_COST_RATIO = 1.5

Resolver = Callable[[an.ColumnUse], "tuple[TableInfo, str] | None"]


def costing_form(
    conn: psycopg.Connection,
    analysis: an.QueryAnalysis,
    *,
    resolve: Resolver,
    stats: dict[tuple[str, str, str], ColumnStats],
    server_version: int,
) -> tuple[CostForm, PlanCost]:
    """The first form of the query the server plans, and its plan without new indexes."""
    value_dependent = any(
        use.kind in (an.FilterKind.LIKE, an.FilterKind.ILIKE, an.FilterKind.SUBSTRING)
        and use.column is not None
        for use in analysis.params.values()
    )
    text = statement_text(analysis.query)
    n = analysis.max_param
    generic = [
        lambda: CostForm("generic", text, (), n),
        lambda: CostForm("generic_typed", text, _param_types(analysis, resolve), n),
    ]
    # Values nothing types: the number 1, then an untyped quoted constant the server types
    # from its context (`text_col = '1'`) where a number would be compared with text.
    literal = [
        partial(_literal_form, conn, analysis, resolve, stats, untyped=untyped)
        for untyped in (False, True)
    ]
    if n == 0:
        attempts = [lambda: CostForm("literal", text)]  # no parameters: plan it as it is
    elif value_dependent:
        attempts = literal + generic
    else:
        attempts = generic + literal
    form, cost = plan_first(conn, attempts, server_version=server_version)
    if not form.is_literal and _skewed_equality(analysis, resolve, stats):
        return _costlier_with_a_rare_value(
            conn, analysis, resolve, stats, form, cost, server_version
        )
    return form, cost


def _literal_form(conn, analysis, resolve, stats, *, untyped: bool) -> CostForm:
    values = representative_values(conn, analysis, resolve, stats, untyped=untyped)
    return CostForm(
        "literal_untyped" if untyped else "literal", literal_text(analysis.query, values)
    )


def _costlier_with_a_rare_value(conn, analysis, resolve, stats, form, cost, server_version):
    """The generic plan prices every value at the average; on a skewed column the query
    is slow for the rare values (a backward scan that never meets one, say). When a rare
    value's plan costs far more than a common value's, it is the case that explains a
    slow query, and the one to cost indexes on."""
    try:
        plans = []
        for rare in (False, True):
            values = representative_values(conn, analysis, resolve, stats, rare=rare)
            variant = CostForm(
                "literal_rare" if rare else "literal", literal_text(analysis.query, values)
            )
            cost = plan_cost(conn, variant, server_version=server_version, guarded=True)
            plans.append((variant, cost))
    except (psycopg.Error, ValueError):
        return form, cost
    (_typical, typical_cost), (rare_form, rare_cost) = plans
    if rare_cost.total > typical_cost.total * RARE_COST_RATIO:
        return rare_form, rare_cost
    return form, cost


def _skewed_equality(analysis, resolve, stats) -> bool:
    for use in analysis.params.values():
        if use.kind != an.FilterKind.EQ or use.column is None:
            continue
        found = resolve(use.column)
        if found is None:
            continue
        column_stats = stats.get((found[0].schema, found[0].name, found[1]))
        if column_stats is not None and _rare_value(column_stats) is not None:
            return True
    return False


def _rare_value(column_stats: ColumnStats) -> Any:
    """A value far rarer than the column's most common one, or None when there is none."""
    freqs = column_stats.common_freqs
    if not freqs:
        return None
    rest = max(0.0, 1.0 - sum(freqs) - column_stats.null_frac)
    others = column_stats.n_distinct - len(freqs) if column_stats.n_distinct > 0 else 0
    if column_stats.histogram and (others <= 0 or rest / others < min(freqs)):
        value, freq = (
            column_stats.histogram[len(column_stats.histogram) // 2],
            rest / max(others, 1),
        )
    else:
        value, freq = column_stats.common_values[-1], freqs[-1]
    if max(freqs) < SKEW_RATIO * max(freq, 1e-9):
        return None
    return value


def _param_types(analysis: an.QueryAnalysis, resolve: Resolver) -> tuple[str, ...]:
    context = context_param_types(analysis.query)
    types = []
    for number in range(1, analysis.max_param + 1):
        use = analysis.params.get(number)
        types.append(_type_for(use, resolve, context.get(number)))
    return tuple(types)


def _type_for(use: an.ParamUse | None, resolve: Resolver, from_context: str | None) -> str:
    if use is None:
        return from_context or "text"
    if use.type_name:
        return use.type_name
    if use.kind in ("limit", "offset"):
        return "bigint"
    if use.kind in (an.FilterKind.TIME_UNIT, an.FilterKind.WILDCARD):
        return "text"
    if use.column is not None:
        found = resolve(use.column)
        if found is not None:
            info, column = found
            col = info.columns[column]
            if use.kind in (
                an.FilterKind.LIKE,
                an.FilterKind.ILIKE,
                an.FilterKind.SUBSTRING,
                an.FilterKind.TS_QUERY,
            ):
                return "text"
            if use.kind == an.FilterKind.IN and use.operator is None:
                return col.type_name
            if use.kind == an.FilterKind.IN and use.operator == "= ANY":
                return f"{col.type_name}[]"
            if use.kind == an.FilterKind.CONTAINS and use.operator in ("?",):
                return "text"
            if use.kind == an.FilterKind.CONTAINS and use.operator in ("?|", "?&"):
                return "text[]"
            return col.type_name
    return from_context or "text"


# --- representative values --------------------------------------------------------------


def representative_values(
    conn: psycopg.Connection,
    analysis: an.QueryAnalysis,
    resolve: Resolver,
    stats: dict[tuple[str, str, str], ColumnStats],
    *,
    rare: bool = False,
    untyped: bool = False,
) -> dict[int, Any]:
    """A plausible value for every $n: from pg_stats, a sampled row, or the context.

    `rare` picks, for an equality on a skewed column, one of its rare values instead.
    `untyped`: a $n of no known type is a quoted constant, typed by the server from its
    context, instead of the number 1.

    A $n not compared with a column (`lower($1)`, `$1 + $2`) gets a value of the type the
    server infers for it, as a typed literal.
    """
    values: dict[int, Any] = {}
    in_list_position: dict[tuple, int] = {}
    inferred: dict[int, str] | None = None
    for number in range(1, analysis.max_param + 1):
        use = analysis.params.get(number)
        if use is None or (
            use.column is None
            and use.kind not in ("limit", "offset", an.FilterKind.TIME_UNIT, an.FilterKind.WILDCARD)
        ):
            if inferred is None:
                inferred = inferred_param_types(conn, analysis, resolve)
            type_name = (
                (use.type_name if use else None)
                or inferred.get(number)
                or context_param_types(analysis.query).get(number)
            )
            if type_name == "regconfig":
                value = text_search_config(conn)
            else:
                value = enum_label(conn, type_name) if type_name else None
            if value is None:
                value = UNTYPED_CONSTANT if untyped and not type_name else value_for_type(type_name)
            values[number] = Typed(value, type_name) if type_name else value
            continue
        values[number] = _value_for(conn, use, resolve, stats, in_list_position, rare, untyped)
    return values


def inferred_param_types(
    conn: psycopg.Connection, analysis: an.QueryAnalysis, resolve: Resolver
) -> dict[int, str]:
    """The types the server itself gives the $n: untyped PREPARE, then with column types."""
    text = statement_text(analysis.query)
    for types in ((), _param_types(analysis, resolve)):
        found = prepared_param_types(conn, text, types)
        if found is not None:
            return found
    return {}


def _value_for(conn, use, resolve, stats, in_list_position, rare=False, untyped=False) -> Any:
    if use.kind == "limit":
        return REPRESENTATIVE_LIMIT
    if use.operator == "= ANY":
        # The whole array: a few of the column's values, as an IN list would have.
        element = replace(use, operator=None, type_name=None)
        values = [
            _value_for(conn, element, resolve, stats, in_list_position, rare, untyped)
            for _ in range(ANY_ARRAY_VALUES)
        ]
        return array_literal(values)
    if use.kind == "offset":
        return REPRESENTATIVE_OFFSET
    if use.kind == an.FilterKind.TIME_UNIT:
        return REPRESENTATIVE_TIME_UNIT
    if use.kind == an.FilterKind.WILDCARD:
        return "%"
    found = resolve(use.column) if use.column is not None else None
    if found is None:
        # (A column of a sub-select's output, say: its type is the server's to infer.)
        return UNTYPED_CONSTANT if untyped and not use.type_name else value_for_type(use.type_name)
    info, column = found
    col = info.columns[column]
    column_stats = stats.get((info.schema, info.name, column))
    if (
        use.kind == an.FilterKind.CONTAINS
        or col.category == "A"
        or col.base_type in ("jsonb", "json")
    ):
        return sampled_operand(conn, info, col, use.operator)
    value = None
    like = use.kind in (an.FilterKind.LIKE, an.FilterKind.ILIKE, an.FilterKind.SUBSTRING)
    if column_stats is not None and not (like and not column_stats.common_values):
        # (A LIKE prefix taken from the histogram would match a histogram entry, and the
        # planner would estimate it from that one match: a row of the table is fairer.)
        value = _from_stats(column_stats, use, in_list_position, rare)
    if value is None:
        value = sampled_value(conn, info, col)
    if value is None:
        return value_for_type(use.type_name or col.base_type)
    if use.kind == an.FilterKind.TS_QUERY:
        # Its longest word: a term people search for, rarely a stop word.
        return max(str(value).split() or ["a"], key=len)
    if use.kind == an.FilterKind.SUBSTRING:
        # The middle of a real value: what a "contains" search box is typed with.
        text = str(value)
        start = len(text) // 4
        return text[start : start + max(3, len(text) // 2)]
    if like:
        # A real value less its last character: a prefix that finds a handful of rows,
        # as a search box or a "starts with" filter does.
        text = str(value)
        return text[: max(1, len(text) - 1)] + "%"
    return value


def _from_stats(
    column_stats: ColumnStats, use: an.ParamUse, positions: dict, rare: bool = False
) -> Any:
    if rare and use.kind == an.FilterKind.EQ:
        value = _rare_value(column_stats)
        if value is not None:
            return value
    histogram = column_stats.histogram
    common = column_stats.common_values
    if use.kind == an.FilterKind.RANGE and histogram:
        quantile = {
            ">": RANGE_QUANTILE,
            ">=": RANGE_QUANTILE,
            "<": 1 - RANGE_QUANTILE,
            "<=": 1 - RANGE_QUANTILE,
            "between_low": 0.45,
            "between_high": 0.55,
        }.get(use.operator or "", 0.5)
        return histogram[min(len(histogram) - 1, int(quantile * (len(histogram) - 1)))]
    pool = list(common) + list(histogram[len(histogram) // 2 :] if histogram else ())
    if not pool:
        return None
    if use.kind == an.FilterKind.IN:
        key = (id(use.column), use.column)
        index = positions.get(key, 0)
        positions[key] = index + 1
        return pool[index % len(pool)]
    return pool[0]
