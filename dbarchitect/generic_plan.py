"""Plan a normalized query (`$n` where the constants were) so that every one can be costed.

pg_stat_statements keeps `WHERE d > date $1`, `LIMIT $2`, `$1 + $2` and friends: text a
plain PREPARE rejects or cannot type. The ladder, cheapest and most faithful first:

1. the statement re-printed from its pglast AST (typed literals `date $1` become
   `CAST($1 AS date)`), prepared as is: the planner's own generic plan;
2. the same with each parameter's type given explicitly: the type of the column it is
   compared with, the type of its cast, bigint for LIMIT / OFFSET;
3. the statement with every parameter replaced by a representative literal from
   pg_stats (or a sampled row), planned as a custom plan.

A query whose plan depends on the value itself (`col LIKE $1`: only a known prefix can
use an index) starts at step 3. An equality on a skewed column is also planned with a
rare and a common value; if the rare one costs far more, that plan (the slow case the
average hides) is the one indexes are costed on. Callers run this inside their own
transaction: a failed attempt is rolled back to a savepoint and the next one is tried.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from pglast import ast, enums
from psycopg import sql

from pgaccess.catalog import ColumnInfo, ColumnStats, TableInfo

from . import analysis as an
from .collector import MARKER

STATEMENT_PREFIX = "dbarchitect_costing_"
_counter = itertools.count(1)
SAVEPOINT = "dbarchitect_attempt"
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


class NotCostable(Exception):
    """Every way of planning the query failed; the message says why, attempt by attempt."""


@dataclass(frozen=True)
class CostForm:
    mode: str  # "generic", "generic_typed", "literal" or "literal_rare"
    text: str  # the statement to PREPARE (generic) or to EXPLAIN (literal)
    param_types: tuple[str, ...] = ()
    nparams: int = 0

    @property
    def is_literal(self) -> bool:
        """Planned as written, values in place (a custom plan), not PREPAREd."""
        return self.mode.startswith("literal")


@dataclass(frozen=True)
class PlanCost:
    total: float
    plan: dict


def statement_text(analysis: an.QueryAnalysis) -> str:
    """The statement as pglast prints it: same meaning, typed literals turned into casts,
    SQL-syntax calls with a parameter as plain calls (see _plain_calls)."""
    try:
        return an.deparse(_plain_calls(an.parse_statement(analysis.query)))
    except Exception:
        return analysis.query


def _plain_calls(node: Any) -> Any:
    """`EXTRACT($1 FROM ts)`, `position($1 IN s)`... written as the function calls they
    are (`pg_catalog.extract($1, ts)`): pg_stat_statements puts a $n where the SQL syntax
    takes only a keyword or a literal, which PREPARE (and pglast's printer) refuse."""
    for call in an.find_nodes(node, ast.FuncCall):
        if call.funcformat == enums.CoercionForm.COERCE_SQL_SYNTAX and an.find_nodes(
            call.args, ast.ParamRef
        ):
            call.funcformat = enums.CoercionForm.COERCE_EXPLICIT_CALL
    return node


def costing_form(
    conn: psycopg.Connection,
    analysis: an.QueryAnalysis,
    *,
    resolve: Resolver,
    stats: dict[tuple[str, str, str], ColumnStats],
    server_version: int,
) -> tuple[CostForm, PlanCost]:
    """The first form of the query the server plans, and its plan without new indexes."""
    failures: list[str] = []
    value_dependent = any(
        use.kind in (an.LIKE, an.ILIKE, an.SUBSTRING) and use.column is not None
        for use in analysis.params.values()
    )
    text = statement_text(analysis)
    n = analysis.max_param
    generic = [
        lambda: CostForm("generic", text, (), n),
        lambda: CostForm("generic_typed", text, _param_types(analysis, resolve), n),
    ]
    literal = [
        lambda: CostForm(
            "literal", literal_text(analysis, representative_values(conn, analysis, resolve, stats))
        )
    ]
    if n == 0:
        attempts = [lambda: CostForm("literal", text)]  # no parameters: plan it as it is
    elif value_dependent:
        attempts = literal + generic
    else:
        attempts = generic + literal
    for make in attempts:
        try:
            form = make()
        except (NotCostable, ValueError, psycopg.Error) as exc:
            failures.append(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
            continue
        try:
            with conn.transaction(savepoint_name=SAVEPOINT):
                cost = plan_cost(conn, form, server_version=server_version)
        except psycopg.Error as exc:
            first_line = (exc.diag.message_primary or str(exc)).strip()
            failures.append(f"{form.mode}: {first_line}")
            continue
        if not form.is_literal and _skewed_equality(analysis, resolve, stats):
            return _costlier_with_a_rare_value(
                conn, analysis, resolve, stats, form, cost, server_version
            )
        return form, cost
    raise NotCostable("; ".join(dict.fromkeys(failures)) or "no way to plan it")


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
                "literal_rare" if rare else "literal", literal_text(analysis, values)
            )
            with conn.transaction(savepoint_name=SAVEPOINT):
                plans.append((variant, plan_cost(conn, variant, server_version=server_version)))
    except (psycopg.Error, ValueError):
        return form, cost
    (_typical, typical_cost), (rare_form, rare_cost) = plans
    if rare_cost.total > typical_cost.total * RARE_COST_RATIO:
        return rare_form, rare_cost
    return form, cost


def _skewed_equality(analysis, resolve, stats) -> bool:
    for use in analysis.params.values():
        if use.kind != an.EQ or use.column is None:
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


def plan_cost(conn: psycopg.Connection, form: CostForm, *, server_version: int) -> PlanCost:
    """EXPLAIN the form now, with whatever (hypothetical) indexes exist at this moment.

    The generic plan is re-prepared every time: a prepared statement keeps its cached
    plan, which would hide a hypothetical index created after it was first planned.
    """
    with conn.cursor() as cur:
        if form.is_literal:
            cur.execute(sql.SQL(MARKER + " EXPLAIN (FORMAT JSON) {}").format(sql.SQL(form.text)))
        elif server_version >= 160000 and not form.param_types:
            # prepare=False: psycopg prepares a statement it has run five times, and the
            # server then wants values for the $n that GENERIC_PLAN leaves unbound.
            cur.execute(
                sql.SQL(MARKER + " EXPLAIN (GENERIC_PLAN, FORMAT JSON) {}").format(
                    sql.SQL(form.text)
                ),
                prepare=False,
            )
        else:
            # One round trip: PREPARE; EXPLAIN EXECUTE; DEALLOCATE. A fresh name each time,
            # so a statement left behind by a failed attempt never blocks the next one.
            # EXECUTE with NULLs would prune every partition at executor start-up and hide
            # the indexes the plan uses; a generic plan cannot prune at plan time anyway,
            # so pruning off changes what the plan shows, not what it costs.
            name = sql.Identifier(f"{STATEMENT_PREFIX}{next(_counter)}")
            types = (
                sql.SQL("({})").format(sql.SQL(", ").join(sql.SQL(t) for t in form.param_types))
                if form.param_types
                else sql.SQL("")
            )
            args = (
                sql.SQL("({})").format(sql.SQL(", ").join([sql.SQL("NULL")] * form.nparams))
                if form.nparams
                else sql.SQL("")
            )
            cur.execute(
                sql.SQL(
                    MARKER + " SET LOCAL enable_partition_pruning = off; "
                    "PREPARE {name} {types} AS {text}; "
                    "EXPLAIN (FORMAT JSON) EXECUTE {name} {args}; DEALLOCATE {name}; "
                    "SET LOCAL enable_partition_pruning TO DEFAULT"
                ).format(name=name, types=types, text=sql.SQL(form.text), args=args)
            )
            while cur.description is None and cur.nextset():
                pass
        row = cur.fetchone()
    document = row[0]
    if isinstance(document, str):
        document = json.loads(document)
    plan = document[0]["Plan"]
    return PlanCost(total=float(plan["Total Cost"]), plan=plan)


def _param_types(analysis: an.QueryAnalysis, resolve: Resolver) -> tuple[str, ...]:
    types = []
    for number in range(1, analysis.max_param + 1):
        use = analysis.params.get(number)
        types.append(_type_for(use, resolve))
    return tuple(types)


def _type_for(use: an.ParamUse | None, resolve: Resolver) -> str:
    if use is None:
        return "text"
    if use.type_name:
        return use.type_name
    if use.kind in ("limit", "offset"):
        return "bigint"
    if use.kind in (an.TIME_UNIT, an.WILDCARD):
        return "text"
    if use.column is not None:
        found = resolve(use.column)
        if found is not None:
            info, column = found
            col = info.columns[column]
            if use.kind in (an.LIKE, an.ILIKE, an.SUBSTRING, an.TS_QUERY):
                return "text"
            if use.kind == an.IN and use.operator is None:
                return col.type_name
            if use.kind == an.IN and use.operator == "= ANY":
                return f"{col.type_name}[]"
            if use.kind == an.CONTAINS and use.operator in ("?",):
                return "text"
            if use.kind == an.CONTAINS and use.operator in ("?|", "?&"):
                return "text[]"
            return col.type_name
    return "text"


# --- representative values --------------------------------------------------------------


def representative_values(
    conn: psycopg.Connection,
    analysis: an.QueryAnalysis,
    resolve: Resolver,
    stats: dict[tuple[str, str, str], ColumnStats],
    *,
    rare: bool = False,
) -> dict[int, Any]:
    """A plausible value for every $n: from pg_stats, a sampled row, or the context.

    `rare` picks, for an equality on a skewed column, one of its rare values instead.

    A $n not compared with a column (`lower($1)`, `$1 + $2`) gets a value of the type the
    server infers for it, as a typed literal.
    """
    values: dict[int, Any] = {}
    in_list_position: dict[tuple, int] = {}
    inferred: dict[int, str] | None = None
    for number in range(1, analysis.max_param + 1):
        use = analysis.params.get(number)
        if use is None or (
            use.column is None and use.kind not in ("limit", "offset", an.TIME_UNIT, an.WILDCARD)
        ):
            if inferred is None:
                inferred = inferred_param_types(conn, analysis, resolve)
            type_name = (use.type_name if use else None) or inferred.get(number)
            if type_name == "regconfig":
                value = text_search_config(conn)
            else:
                value = _enum_label(conn, type_name) if type_name else None
            if value is None:
                value = _value_for_type(type_name)
            values[number] = Typed(value, type_name) if type_name else value
            continue
        values[number] = _value_for(conn, use, resolve, stats, in_list_position, rare)
    return values


@dataclass(frozen=True)
class Typed:
    """A representative value that goes into the SQL with an explicit cast."""

    value: Any
    type_name: str


def inferred_param_types(
    conn: psycopg.Connection, analysis: an.QueryAnalysis, resolve: Resolver
) -> dict[int, str]:
    """The types the server itself gives the $n: untyped PREPARE, then with column types."""
    text = statement_text(analysis)
    for types in ((), _param_types(analysis, resolve)):
        raw_name = f"{STATEMENT_PREFIX}{next(_counter)}"
        name = sql.Identifier(raw_name)
        declared = (
            sql.SQL("({})").format(sql.SQL(", ").join(sql.SQL(t) for t in types))
            if types
            else sql.SQL("")
        )
        try:
            with conn.transaction(savepoint_name=SAVEPOINT), conn.cursor() as cur:
                cur.execute(
                    sql.SQL(MARKER + " PREPARE {} {} AS {}").format(name, declared, sql.SQL(text))
                )
                cur.execute(
                    f"{MARKER} SELECT parameter_types::text[] FROM pg_prepared_statements "
                    "WHERE name = %s",
                    (raw_name,),
                )
                row = cur.fetchone()
                cur.execute(sql.SQL("DEALLOCATE {}").format(name))
        except psycopg.Error:
            continue
        if row is not None:
            return {i: t for i, t in enumerate(row[0] or (), start=1) if t != "unknown"}
    return {}


def _value_for(conn, use, resolve, stats, in_list_position, rare=False) -> Any:
    if use.kind == "limit":
        return REPRESENTATIVE_LIMIT
    if use.operator == "= ANY":
        # The whole array: a few of the column's values, as an IN list would have.
        element = replace(use, operator=None, type_name=None)
        values = [
            _value_for(conn, element, resolve, stats, in_list_position, rare)
            for _ in range(ANY_ARRAY_VALUES)
        ]
        return _array_literal(values)
    if use.kind == "offset":
        return REPRESENTATIVE_OFFSET
    if use.kind == an.TIME_UNIT:
        return REPRESENTATIVE_TIME_UNIT
    if use.kind == an.WILDCARD:
        return "%"
    found = resolve(use.column) if use.column is not None else None
    if found is None:
        return _value_for_type(use.type_name)
    info, column = found
    col = info.columns[column]
    column_stats = stats.get((info.schema, info.name, column))
    if use.kind == an.CONTAINS or col.category == "A" or col.base_type in ("jsonb", "json"):
        return sampled_operand(conn, info, col, use.operator)
    value = None
    like = use.kind in (an.LIKE, an.ILIKE, an.SUBSTRING)
    if column_stats is not None and not (like and not column_stats.common_values):
        # (A LIKE prefix taken from the histogram would match a histogram entry, and the
        # planner would estimate it from that one match: a row of the table is fairer.)
        value = _from_stats(column_stats, use, in_list_position, rare)
    if value is None:
        value = _sampled_value(conn, info, col)
    if value is None:
        return _value_for_type(use.type_name or col.base_type)
    if use.kind == an.TS_QUERY:
        # Its longest word: a term people search for, rarely a stop word.
        return max(str(value).split() or ["a"], key=len)
    if use.kind == an.SUBSTRING:
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
    if rare and use.kind == an.EQ:
        value = _rare_value(column_stats)
        if value is not None:
            return value
    histogram = column_stats.histogram
    common = column_stats.common_values
    if use.kind == an.RANGE and histogram:
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
    if use.kind == an.IN:
        key = (id(use.column), use.column)
        index = positions.get(key, 0)
        positions[key] = index + 1
        return pool[index % len(pool)]
    return pool[0]


def _sampled_value(conn, info: TableInfo, col: ColumnInfo) -> Any:
    """A value of the column from a row somewhere in the table (a sampled page first: the
    first rows of a table are often its oldest and least typical). The sample is
    REPEATABLE: two audits of the same data cost the same values and agree."""
    for sampling in (sql.SQL(" TABLESAMPLE SYSTEM (1) REPEATABLE (0)"), sql.SQL("")):
        query = sql.SQL(
            "{marker} SELECT {col}::text FROM {table}{sampling} WHERE {col} IS NOT NULL LIMIT 1"
        ).format(
            marker=sql.SQL(MARKER),
            col=sql.Identifier(col.name),
            table=sql.Identifier(info.schema, info.name),
            sampling=sampling,
        )
        with conn.transaction(savepoint_name="dbarchitect_sample"), conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
        if row is not None:
            return row[0]
    return None


# Rows read to pick a containment operand.
OPERAND_SAMPLE_ROWS = 200


def sampled_operand(conn, info: TableInfo, col: ColumnInfo, operator: str | None) -> Any:
    """A containment operand made from real rows.

    jsonb: {"key": value} for the key whose values vary most in a sample (the kind of key
    a containment filter is written for: an id, a batch, not a flag); arrays: the element
    rarest in the sample. `?`-style operators get a key.
    """
    column = sql.Identifier(col.name)
    table = sql.Identifier(info.schema, info.name)
    if col.base_type == "jsonb":
        wanted = "e.key" if operator in ("?", "?|", "?&") else "jsonb_build_object(e.key, e.value)"
        select = sql.SQL(
            "{marker} WITH pairs AS (SELECT e.key, e.value FROM (SELECT {c} AS doc FROM {t} "
            "WHERE jsonb_typeof({c}) = 'object' LIMIT {n}) AS s, jsonb_each(s.doc) AS e "
            "WHERE jsonb_typeof(e.value) NOT IN ('object', 'array')), "
            "best AS (SELECT key FROM pairs GROUP BY key "
            "ORDER BY count(DISTINCT value) DESC, key LIMIT 1) "
            "SELECT {wanted}::text FROM pairs AS e JOIN best USING (key) LIMIT 1"
        ).format(
            wanted=sql.SQL(wanted),
            marker=sql.SQL(MARKER),
            n=OPERAND_SAMPLE_ROWS,
            c=column,
            t=table,
        )
    elif col.category == "A":
        select = sql.SQL(
            "{marker} SELECT array[e]::text FROM (SELECT {c} AS arr FROM {t} "
            "WHERE cardinality({c}) > 0 LIMIT {n}) AS s, unnest(s.arr) AS e "
            "GROUP BY e ORDER BY count(*), e::text LIMIT 1"
        ).format(marker=sql.SQL(MARKER), n=OPERAND_SAMPLE_ROWS, c=column, t=table)
    else:
        return _sampled_value(conn, info, col)
    with conn.transaction(savepoint_name="dbarchitect_sample"), conn.cursor() as cur:
        cur.execute(select)
        row = cur.fetchone()
    if row is None:
        return "{}"
    if operator in ("?|", "?&"):
        return "{" + json.dumps(row[0]) + "}"
    return row[0]


def _array_literal(values: list[Any]) -> str:
    """A PostgreSQL array literal ('{"a","b"}') of the values, each quoted."""
    texts = dict.fromkeys(str(value) for value in values if value is not None)
    quoted = ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' for text in texts)
    return "{" + ",".join(quoted) + "}"


def text_search_config(conn: psycopg.Connection) -> str:
    """The target's default_text_search_config: what a to_tsvector($1, col) whose
    configuration pg_stat_statements hid most likely used (one-argument calls use it)."""
    with conn.cursor() as cur:
        cur.execute(f"{MARKER} SELECT current_setting('default_text_search_config')")
        return cur.fetchone()[0]


def _enum_label(conn: psycopg.Connection, type_name: str) -> str | None:
    """The first label of an enum type (a number does not cast to one), else None."""
    try:
        with conn.transaction(savepoint_name="dbarchitect_sample"), conn.cursor() as cur:
            cur.execute(
                f"{MARKER} SELECT e.enumlabel FROM pg_enum AS e "
                "WHERE e.enumtypid = to_regtype(%s) ORDER BY e.enumsortorder LIMIT 1",
                (type_name,),
            )
            row = cur.fetchone()
    except psycopg.Error:  # a type name to_regtype cannot even parse: not an enum
        return None
    return row[0] if row else None


def _value_for_type(type_name: str | None) -> Any:
    name = (type_name or "").lower()
    today = dt.date.today()
    if name in ("date",):
        return today.isoformat()
    if name.startswith(("timestamp", "timestamptz")):
        return dt.datetime.combine(today, dt.time()).isoformat(sep=" ")
    if name.startswith("interval"):
        return "1 day"
    if name.startswith(("time",)):
        return "12:00"
    if name in ("bool", "boolean"):
        return True
    if name in ("json", "jsonb"):
        return "{}"
    if name == "uuid":
        return "00000000-0000-0000-0000-000000000000"
    if name in ("inet", "cidr"):
        return "10.0.0.1"
    if name in ("macaddr", "macaddr8"):
        return "08:00:2b:01:02:03"
    if name.endswith("[]") or name.startswith("_"):
        return "{}"
    if name in ("text", "varchar", "character varying", "bpchar", "char", "name", "citext"):
        return "a"
    return 1


def literal_text(analysis: an.QueryAnalysis, values: dict[int, Any]) -> str:
    """The statement with each $n replaced by its value as a SQL literal (pglast quotes it).

    Raises ValueError when the statement cannot be printed with these values."""
    node = _plain_calls(copy.deepcopy(an.parse_statement(analysis.query)))
    try:
        return an.deparse(_replace_params(node, values))
    except Exception as exc:  # pglast's printers assume shapes only the parser makes
        raise ValueError(f"cannot write the statement with values in place: {exc!r}") from None


def _constant(value: Any) -> ast.Node:
    if isinstance(value, Typed):
        type_node = an.parse_statement(f"SELECT NULL::{value.type_name}").targetList[0].val
        return ast.TypeCast(arg=_constant(value.value), typeName=type_node.typeName)
    if isinstance(value, bool):
        return ast.A_Const(isnull=False, val=ast.String(sval="true" if value else "false"))
    if isinstance(value, int):
        return ast.A_Const(isnull=False, val=ast.Integer(ival=value))
    if isinstance(value, float):
        return ast.A_Const(isnull=False, val=ast.Float(fval=repr(value)))
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return ast.A_Const(isnull=False, val=ast.String(sval=str(value)))


def _replace_params(node: Any, values: dict[int, Any]) -> Any:
    if isinstance(node, ast.ParamRef):
        return _constant(values.get(node.number, 1))
    if isinstance(node, tuple):
        return tuple(_replace_params(item, values) for item in node)
    if isinstance(node, list):
        return [_replace_params(item, values) for item in node]
    if isinstance(node, ast.Node):
        for name in node:
            child = getattr(node, name, None)
            if isinstance(child, ast.Node | tuple | list):
                setattr(node, name, _replace_params(child, values))
    return node


def prepared_statements_forget(conn: psycopg.Connection) -> None:
    """DEALLOCATE whatever a failed costing attempt left in this session."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT name FROM pg_prepared_statements WHERE starts_with(name, %s)",
            (STATEMENT_PREFIX,),
        )
        for (name,) in cur.fetchall():
            cur.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))
