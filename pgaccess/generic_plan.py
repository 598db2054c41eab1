"""Plan a normalized query (`$n` where the constants were) as the planner would run it.

pg_stat_statements keeps `WHERE d > date $1`, `LIMIT $2`, `$1 + $2` and friends: text a
plain PREPARE rejects or cannot type. A CostForm is one way of asking: the statement
re-printed from its pglast AST, PREPAREd as is or with its parameter types declared (the
planner's own generic plan; EXPLAIN (GENERIC_PLAN) on PostgreSQL 16+), or with literal
values in place (a custom plan). `plan_first` walks a ladder of such forms, each attempt
rolled back to a savepoint on failure, and says why when none plans. Which forms to try,
and with which types and values, is the caller's (dbarchitect.parameters).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import ast, enums, parse_sql
from pglast.stream import RawStream
from pglast.visitors import Visitor
from psycopg import sql

from .explain import explain_document
from .marker import cursor, script
from .session import Savepoint, savepoint

STATEMENT_PREFIX = "dbarchitect_costing_"
# The value of a $n nothing types, written as a quoted constant: PostgreSQL types an
# untyped literal from its context ('1' is a text, a number or a boolean as needed).
UNTYPED_CONSTANT = "1"
_counter = itertools.count(1)


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


@dataclass(frozen=True)
class Typed:
    """A representative value that goes into the SQL with an explicit cast."""

    value: Any
    type_name: str


def plan_first(
    conn: psycopg.Connection,
    attempts: Iterable[Callable[[], CostForm]],
    *,
    server_version: int,
) -> tuple[CostForm, PlanCost]:
    """The first form the server plans, and its plan; NotCostable with every reason else.

    Making a form may itself fail (a value the catalog cannot give): that attempt is
    skipped with its reason, like one the server refuses."""
    failures: list[str] = []
    for make in attempts:
        try:
            form = make()
        except (NotCostable, ValueError, psycopg.Error) as exc:
            failures.append(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
            continue
        try:
            return form, plan_cost(conn, form, server_version=server_version, guarded=True)
        except psycopg.Error as exc:
            first_line = (exc.diag.message_primary or str(exc)).strip()
            failures.append(f"{form.mode}: {first_line}")
    raise NotCostable("; ".join(dict.fromkeys(failures)) or "no way to plan it")


def plan_cost(
    conn: psycopg.Connection, form: CostForm, *, server_version: int, guarded: bool = False
) -> PlanCost:
    """EXPLAIN the form now, with whatever (hypothetical) indexes exist at this moment.

    `guarded`: a failure is rolled back to a savepoint (Savepoint.ATTEMPT), the
    transaction goes on. Inside a transaction the release travels with the plan's own
    statements: two round trips, not three. (The savepoint itself cannot: a syntax error
    in a multi-statement string fails it whole, savepoint included.)

    The generic plan is re-prepared every time: a prepared statement keeps its cached
    plan, which would hide a hypothetical index created after it was first planned.
    """
    statements = _plan_statements(form, server_version)
    in_transaction = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    if guarded and not in_transaction:
        with savepoint(conn, Savepoint.ATTEMPT):
            return plan_cost(conn, form, server_version=server_version)
    name = sql.Identifier(str(Savepoint.ATTEMPT))
    with cursor(conn) as cur:
        if guarded:
            cur.execute(sql.SQL("SAVEPOINT {}").format(name))
            statements = [*statements, sql.SQL("RELEASE SAVEPOINT {}").format(name)]
        try:
            # prepare=False: psycopg prepares a statement it has run five times, and the
            # server then wants values for the $n that GENERIC_PLAN leaves unbound.
            cur.execute(script(statements), prepare=False)
        except psycopg.Error:
            if guarded:
                cur.execute(
                    script(
                        [
                            sql.SQL("ROLLBACK TO SAVEPOINT {}").format(name),
                            sql.SQL("RELEASE SAVEPOINT {}").format(name),
                        ]
                    )
                )
            raise
        while cur.description is None and cur.nextset():
            pass
        row = cur.fetchone()
    plan = explain_document(row[0])["Plan"]
    return PlanCost(total=float(plan["Total Cost"]), plan=plan)


def _plan_statements(form: CostForm, server_version: int) -> list[sql.Composable]:
    """What asks the server for the form's plan: the EXPLAIN is the one that returns rows."""
    if form.is_literal:
        return [sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(form.text))]
    if server_version >= 160000 and not form.param_types:
        return [sql.SQL("EXPLAIN (GENERIC_PLAN, FORMAT JSON) {}").format(sql.SQL(form.text))]
    # PREPARE; EXPLAIN EXECUTE; DEALLOCATE. A fresh name each time, so a statement left
    # behind by a failed attempt never blocks the next one. EXECUTE with NULLs would prune
    # every partition at executor start-up and hide the indexes the plan uses; a generic
    # plan cannot prune at plan time anyway, so pruning off changes what the plan shows,
    # not what it costs.
    name = sql.Identifier(f"{STATEMENT_PREFIX}{next(_counter)}")
    args = (
        sql.SQL("({})").format(sql.SQL(", ").join([sql.SQL("NULL")] * form.nparams))
        if form.nparams
        else sql.SQL("")
    )
    return [
        sql.SQL("SET LOCAL enable_partition_pruning = off"),
        sql.SQL("PREPARE {} {} AS {}").format(
            name, declared_types(form.param_types), sql.SQL(form.text)
        ),
        sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {} {}").format(name, args),
        sql.SQL("DEALLOCATE {}").format(name),
        sql.SQL("SET LOCAL enable_partition_pruning TO DEFAULT"),
    ]


def declared_types(types: Iterable[str]) -> sql.Composable:
    """PREPARE's parameter list: `(bigint, text)`, or nothing when no type is declared."""
    types = list(types)
    if not types:
        return sql.SQL("")
    return sql.SQL("({})").format(sql.SQL(", ").join(sql.SQL(t) for t in types))


def prepared_param_types(
    conn: psycopg.Connection, text: str, types: Iterable[str] = ()
) -> dict[int, str] | None:
    """The types the server gives the $n of `text` PREPAREd with `types` declared ($n ->
    type, unknown ones left out), or None when it cannot prepare it so."""
    raw_name = f"{STATEMENT_PREFIX}{next(_counter)}"
    name = sql.Identifier(raw_name)
    try:
        with savepoint(conn, Savepoint.ATTEMPT), cursor(conn) as cur:
            cur.execute(
                sql.SQL("PREPARE {} {} AS {}").format(name, declared_types(types), sql.SQL(text))
            )
            cur.execute(
                "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s",
                (raw_name,),
            )
            row = cur.fetchone()
            cur.execute(sql.SQL("DEALLOCATE {}").format(name))
    except psycopg.Error:
        return None
    if row is None:
        return None
    return {i: t for i, t in enumerate(row[0] or (), start=1) if t != "unknown"}


def prepared_statements_forget(conn: psycopg.Connection) -> None:
    """DEALLOCATE whatever a failed costing attempt left in this session."""
    with cursor(conn) as cur:
        cur.execute(
            "SELECT name FROM pg_prepared_statements WHERE starts_with(name, %s)",
            (STATEMENT_PREFIX,),
        )
        for (name,) in cur.fetchall():
            cur.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))


# --- the statement's text, re-printed ---------------------------------------------------


def _parse(query: str) -> ast.Node:
    statements = parse_sql(query)
    if len(statements) != 1:
        raise ValueError(f"expected one statement, found {len(statements)}")
    return statements[0].stmt


def statement_text(query: str) -> str:
    """The statement as pglast prints it: same meaning, typed literals turned into casts,
    SQL-syntax calls with a parameter as plain calls (see _plain_calls)."""
    try:
        return RawStream()(_plain_calls(_parse(query)))
    except Exception:
        return query


class _ParamRefs(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_ParamRef(self, ancestors, node) -> None:
        self.found = True


class _SqlSyntaxCalls(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[ast.FuncCall] = []

    def visit_FuncCall(self, ancestors, node) -> None:
        self.calls.append(node)


def _plain_calls(node: Any) -> Any:
    """`EXTRACT($1 FROM ts)`, `position($1 IN s)`... written as the function calls they
    are (`pg_catalog.extract($1, ts)`): pg_stat_statements puts a $n where the SQL syntax
    takes only a keyword or a literal, which PREPARE (and pglast's printer) refuse."""
    calls = _SqlSyntaxCalls()
    calls(node)
    for call in calls.calls:
        if call.funcformat != enums.CoercionForm.COERCE_SQL_SYNTAX or not call.args:
            continue
        params = _ParamRefs()
        params(call.args)
        if params.found:
            call.funcformat = enums.CoercionForm.COERCE_EXPLICIT_CALL
    return node


def literal_text(query: str, values: dict[int, Any]) -> str:
    """The statement with each $n replaced by its value as a SQL literal (pglast quotes it).

    Raises ValueError when the statement cannot be printed with these values."""
    node = _plain_calls(copy.deepcopy(_parse(query)))
    try:
        return RawStream()(_replace_params(node, values))
    except Exception as exc:  # pglast's printers assume shapes only the parser makes
        raise ValueError(f"cannot write the statement with values in place: {exc!r}") from None


def _constant(value: Any) -> ast.Node:
    if isinstance(value, Typed):
        type_node = _parse(f"SELECT NULL::{value.type_name}").targetList[0].val
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


# --- what a $n's context says its type is -----------------------------------------------

# The types of the arguments of functions that take numbers whatever they are written with:
# an untyped $n there, or a CASE / COALESCE of nothing but $n, takes that type (PREPARE
# would make it text, and sum(text) does not exist).
NUMERIC_ARGUMENTS: dict[str, tuple[str, ...]] = {
    **{
        name: ("numeric",)
        for name in (
            "sum", "avg", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop",
            "var_samp", "abs", "ceil", "ceiling", "floor", "sqrt", "exp", "ln",
        )
    },
    "round": ("numeric", "integer"),
    "trunc": ("numeric", "integer"),
    "log": ("numeric", "numeric"),
    "power": ("numeric", "numeric"),
}  # fmt: skip
ARITHMETIC_OPERATORS = frozenset({"+", "-", "*", "/", "%", "^"})


def context_param_types(query: str) -> dict[int, str]:
    """The type a $n takes from its context where PREPARE would guess wrong: from its
    CASE / COALESCE / NULLIF / GREATEST / LEAST siblings (a constant or a cast beside it),
    else from the function those feed (`sum(CASE WHEN .. THEN $3 ELSE $4 END)`: numeric);
    arithmetic of parameters only (`$1 + $2`) is numeric.

    pg_stat_statements turns `THEN 1 ELSE 0` into `THEN $3 ELSE $4`: with no typed branch
    left, the server resolves them as text. $n compared with a column are the caller's
    (the catalog knows the column's type); a statement that does not parse gives {}."""
    try:
        node = _parse(query)
    except Exception:
        return {}
    found: dict[int, str] = {}
    _context_walk(node, None, found)
    return found


def _context_walk(node: Any, feeds: str | None, found: dict[int, str]) -> None:
    if isinstance(node, tuple | list):
        for item in node:
            _context_walk(item, feeds, found)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, ast.ParamRef):
        if feeds is not None:
            found.setdefault(node.number, feeds)
        return
    if isinstance(node, ast.FuncCall):
        types = NUMERIC_ARGUMENTS.get(node.funcname[-1].sval.lower(), ())
        for position, argument in enumerate(node.args or ()):
            _context_walk(argument, types[position] if position < len(types) else None, found)
        for child in (node.agg_order, node.agg_filter, node.over):
            _context_walk(child, None, found)
        return
    if _arithmetic_of_params(node):
        _context_walk([node.lexpr, node.rexpr], "numeric", found)
        return
    group = _sibling_group(node)
    if group is not None:
        siblings, rest = group
        typed = next((t for t in map(_constant_type, siblings) if t is not None), None)
        for sibling in siblings:
            _context_walk(sibling, typed or feeds, found)
        _context_walk(rest, None, found)
        return
    for name in node:
        child = getattr(node, name, None)
        if isinstance(child, ast.Node | tuple | list):
            _context_walk(child, None, found)


def _arithmetic_of_params(node: ast.Node) -> bool:
    """`$1 + $2`, `- $1`: an operator no operand types (unknown + unknown is ambiguous)."""
    return (
        isinstance(node, ast.A_Expr)
        and node.kind == enums.A_Expr_Kind.AEXPR_OP
        and node.name[-1].sval in ARITHMETIC_OPERATORS
        and all(isinstance(side, ast.ParamRef) for side in (node.lexpr, node.rexpr) if side)
    )


def _sibling_group(node: ast.Node) -> tuple[list, list] | None:
    """The expressions whose values share one type (a CASE's results, COALESCE's...) and
    the node's other parts, or None for any other node."""
    if isinstance(node, ast.CaseExpr):
        whens = list(node.args or ())
        results = [w.result for w in whens] + ([node.defresult] if node.defresult else [])
        return results, [node.arg, *(w.expr for w in whens)]
    if isinstance(node, ast.CoalesceExpr | ast.MinMaxExpr):
        return list(node.args or ()), []
    if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_NULLIF:
        return [node.lexpr, node.rexpr], []
    return None


def _constant_type(node: Any) -> str | None:
    """The type a sibling gives the group: a number's, a cast's; None for the rest."""
    if isinstance(node, ast.TypeCast):
        return RawStream()(node.typeName)
    if isinstance(node, ast.A_Const) and not node.isnull:
        if isinstance(node.val, ast.Integer):
            return "integer"
        if isinstance(node.val, ast.Float):
            return "numeric"
    return None
