"""What a query touches, read from the real PostgreSQL parser (pglast), never from regexes.

One query becomes a QueryAnalysis: its SELECT scopes (the main query, every subquery, CTE,
EXISTS / IN sub-select and UNION branch), and in each scope the tables, the filter
predicates per column with their kind, the join keys, ORDER BY / GROUP BY and LIMIT.
Columns are tied to a table where the SQL says which (an alias or a table name); an
unqualified column keeps the tables it could belong to, and the advisor settles it with
the catalog. Nothing here talks to a database.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

if TYPE_CHECKING:
    from pgaccess.catalog import TableInfo


class FilterKind(StrEnum):
    """What a filter does with a column. The advisor turns each into index keys of the
    matching shape."""

    EQ = "eq"  # col = value, col IS TRUE, bare boolean column
    IN = "in"  # col IN (...), col = ANY(...)
    RANGE = "range"  # <, <=, >, >=, BETWEEN
    LIKE = "like"  # col LIKE 'prefix%' (or a $n pattern whose prefix only the value knows)
    ILIKE = "ilike"
    # col LIKE / ILIKE '%...%', or a pattern whose leading part pg_stat_statements hid
    # ($2 || $1 || $3 was '%' || $1 || '%'): no btree prefix; only a pg_trgm GIN serves it.
    SUBSTRING = "substring"
    # A $n that stood for a constant around a LIKE pattern's value: a wildcard, most likely.
    WILDCARD = "wildcard"
    # The search text of `to_tsvector(...) @@ plainto_tsquery($1)`: a word of the column.
    TS_QUERY = "ts_query"
    IS_NULL = "is_null"
    IS_NOT_NULL = "is_not_null"
    CONTAINS = "contains"  # jsonb / array @>, <@, ?, ?|, ?&, &&: GIN territory
    NEQ = "neq"  # <>: not indexable, kept for completeness
    NOT_DISTINCT = "not_distinct"  # IS NOT DISTINCT FROM: no index operator, = is the rewrite
    # An expression of one column whose constants pg_stat_statements made parameters
    # (payload->>$1 = $2, date_trunc($1, ts) = $2): its expression index needs the constants.
    PARAM_EXPRESSION = "param_expression"
    # An expression over several columns of one table (COALESCE(archived_at, created_at) >
    # $1): only an index on the expression serves it; nothing can cost one before it exists.
    COLUMNS_EXPRESSION = "columns_expression"
    # The unit of date_trunc($1, ts) / EXTRACT($1 FROM ts): a parameter, not a filter.
    TIME_UNIT = "time_unit"


_RANGE_OPS = {"<", "<=", ">", ">="}
# Functions whose first argument is a time unit ('day', 'month'...): FilterKind.TIME_UNIT.
TIME_UNIT_FUNCTIONS = {"date_trunc", "date_part", "extract"}
GIN_OPERATORS = _GIN_OPS = {"@>", "<@", "?", "?|", "?&", "&&", "@?", "@@"}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "<>": "<>", "!=": "!="}


@dataclass(frozen=True)
class Relation:
    """A table (or view) as the SQL names it; schema None means "through search_path"."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class ColumnUse:
    """A column of one relation, or an unqualified name with the relations it could be in.

    `candidates` lists the visible relations scope by scope, innermost first: the first
    level where exactly one relation has the column wins (SQL's own resolution rule).
    """

    column: str
    relation: Relation | None = None
    candidates: tuple[tuple[Relation, ...], ...] = ()


@dataclass(frozen=True)
class Predicate:
    column: ColumnUse
    kind: FilterKind
    operator: str = "="
    # The indexed expression when the column is wrapped ("lower(email)"), column names
    # unqualified so it can go straight into CREATE INDEX; None for a plain column.
    expression: str | None = None
    # The literal compared with, when the SQL has one (views keep theirs), else None.
    value: str | None = None
    params: tuple[int, ...] = ()
    in_or: bool = False  # one arm of an OR: served by a BitmapOr at best


@dataclass(frozen=True)
class JoinKey:
    left: ColumnUse
    right: ColumnUse
    operator: str = "="


@dataclass(frozen=True)
class SortKey:
    column: ColumnUse | None
    expression: str | None
    descending: bool
    nulls_first: bool | None  # None: the default for the direction


@dataclass
class Scope:
    """One SELECT (or the relation part of an UPDATE / DELETE)."""

    relations: list[Relation] = field(default_factory=list)
    predicates: list[Predicate] = field(default_factory=list)
    joins: list[JoinKey] = field(default_factory=list)
    order_by: list[SortKey] = field(default_factory=list)
    group_by: list[ColumnUse] = field(default_factory=list)
    limit: int | str | None = None  # a number, "param", or None
    offset: int | str | None = None
    select_star: bool = False
    correlated: bool = False
    kind: str = "select"  # "select", "subquery", "cte", "union_branch", "update", "delete"
    # SELECT-list name -> the plain column it shows (how a view's columns map to tables).
    outputs: dict[str, ColumnUse] = field(default_factory=dict)


@dataclass(frozen=True)
class ParamUse:
    """What a $n stands for: the column it is compared with, or its syntactic context."""

    number: int
    column: ColumnUse | None = None
    kind: FilterKind | str | None = None  # a FilterKind, or "limit" / "offset"
    operator: str | None = None  # for ranges: the operator with the column on the left
    type_name: str | None = None  # from a cast: $1::date, date $1, interval $2


@dataclass
class QueryAnalysis:
    query: str
    statement: str = ""  # SelectStmt, UpdateStmt, ...
    scopes: list[Scope] = field(default_factory=list)
    params: dict[int, ParamUse] = field(default_factory=dict)
    max_param: int = 0
    modifies: bool = False  # writes rows somewhere (INSERT / UPDATE / DELETE, also in a CTE)
    written: list[Relation] = field(default_factory=list)  # the tables it writes rows to
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def relations(self) -> list[Relation]:
        seen: dict[Relation, None] = {}
        for scope in self.scopes:
            for relation in scope.relations:
                seen.setdefault(relation)
        return list(seen)

    @property
    def is_select(self) -> bool:
        """A plain read: safe to run under EXPLAIN ANALYZE."""
        return self.statement == "SelectStmt" and not self.modifies


def analyze_query(sql: str) -> QueryAnalysis:
    """Parse one normalized statement; a parse failure becomes `error`, never an exception."""
    result = QueryAnalysis(query=sql)
    try:
        statements = parse_sql(sql)
    except ParseError as exc:
        result.error = f"syntax error: {exc}"
        return result
    except Exception as exc:  # the parser is C code behind a binding: report, don't crash
        result.error = f"parser failure: {exc}"
        return result
    if len(statements) != 1:
        result.error = f"expected one statement, found {len(statements)}"
        return result
    node = statements[0].stmt
    result.statement = type(node).__name__
    walker = _Walker(result)
    try:
        walker.statement(node)
    except RecursionError:
        result.error = "query nests too deeply to analyze"
    # date_trunc($1, ts), EXTRACT($1 FROM ts): the $n is a unit name, not any text.
    for call in _find(node, ast.FuncCall, into_sublinks=True):
        name = call.funcname[-1].sval if isinstance(call.funcname[-1], ast.String) else ""
        if name in TIME_UNIT_FUNCTIONS and call.args and isinstance(call.args[0], ast.ParamRef):
            walker.note_param(ParamUse(call.args[0].number, kind=FilterKind.TIME_UNIT))
    result.max_param = max(all_params(node), default=0)
    return result


def find_nodes(node: Any, kind: type) -> list[Any]:
    """Every node of `kind` under `node`, sub-selects included."""
    return list(_find(node, kind, into_sublinks=True))


def all_params(node: ast.Node) -> set[int]:
    """Every $n anywhere in the statement, sub-selects included."""
    return {p.number for p in _find(node, ast.ParamRef, into_sublinks=True)}


def parse_statement(sql: str) -> ast.Node:
    """The single statement of `sql` as a pglast node (raises pglast's ParseError)."""
    statements = parse_sql(sql)
    if len(statements) != 1:
        raise ValueError(f"expected one statement, found {len(statements)}")
    return statements[0].stmt


def deparse(node: ast.Node) -> str:
    return RawStream()(node)


def normalize_expression(text: str) -> str:
    """An expression as pglast prints it, so `LOWER( email )` and `lower(email)` compare equal."""
    select = parse_statement(f"SELECT {text}")
    return deparse(_unqualified(select.targetList[0].val))


# --- the walker -------------------------------------------------------------------------


class _Level:
    """The names visible in one scope: alias -> relation (None for derived tables / CTEs)."""

    def __init__(self, parent: _Level | None, ctes: set[str]):
        self.parent = parent
        self.names: dict[str, Relation | None] = {}
        # A derived table's or CTE's alias -> its SELECT-list columns that are plain columns.
        self.derived: dict[str, dict[str, ColumnUse]] = {}
        self.ctes = set(ctes) | (parent.ctes if parent else set())

    def chain(self):
        level = self
        while level is not None:
            yield level
            level = level.parent

    def lookup(self, qualifier: str) -> tuple[bool, Relation | None, bool]:
        """(found, relation, from an outer level) for an alias or table name."""
        for depth, level in enumerate(self.chain()):
            if qualifier in level.names:
                return True, level.names[qualifier], depth > 0
        return False, None, False

    def derived_column(self, qualifier: str, column: str) -> ColumnUse | None:
        """The table column behind `qualifier.column` when qualifier is a sub-select/CTE."""
        for level in self.chain():
            if qualifier in level.names:
                return level.derived.get(qualifier, {}).get(column)
        return None

    def candidates(self) -> tuple[tuple[Relation, ...], ...]:
        levels = []
        for level in self.chain():
            rels = tuple(r for r in level.names.values() if r is not None)
            levels.append(rels)
        return tuple(levels)


class _Walker:
    def __init__(self, result: QueryAnalysis):
        self.result = result
        self.cte_outputs: dict[str, dict[str, ColumnUse]] = {}

    # statements

    def statement(self, node: Any) -> None:
        if isinstance(node, ast.SelectStmt):
            self.select(node, None, "select")
        elif isinstance(node, ast.InsertStmt):
            self.insert(node, None, "select", None)
        elif isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
            self.modify(node)
        elif isinstance(node, ast.ExplainStmt):
            self.statement(node.query)
        elif isinstance(node, ast.CreateTableAsStmt) and isinstance(node.query, ast.SelectStmt):
            self.select(node.query, None, "select")
        else:
            self.result.error = f"{type(node).__name__} is not a query the planner can cost"

    def insert(self, node: Any, parent: _Level | None, kind: str, ctes: set[str] | None) -> None:
        self.result.modifies = True
        own = set(ctes or ()) | self.with_clause(node.withClause, parent)
        self.result.written.append(Relation(node.relation.schemaname, node.relation.relname))
        if node.selectStmt is not None:
            self.select(node.selectStmt, parent, kind, own)

    def modify(self, node: Any) -> None:
        self.result.modifies = True
        self.result.written.append(Relation(node.relation.schemaname, node.relation.relname))
        kind = "update" if isinstance(node, ast.UpdateStmt) else "delete"
        ctes = self.with_clause(node.withClause, None)
        level = _Level(None, ctes)
        scope = Scope(kind=kind)
        self.result.scopes.append(scope)
        self.from_item(node.relation, level, scope)
        extra = node.fromClause if kind == "update" else node.usingClause
        for item in extra or ():
            self.from_item(item, level, scope)
        if node.whereClause is not None:
            self.condition(node.whereClause, level, scope, in_or=False)
        if kind == "update":
            for target in node.targetList or ():
                self.expression_sublinks(target.val, level)

    def with_clause(self, with_clause: Any, parent: _Level | None) -> set[str]:
        names: set[str] = set()
        if with_clause is None:
            return names
        for cte in with_clause.ctes or ():
            names.add(cte.ctename)
            query = cte.ctequery
            if isinstance(query, ast.SelectStmt):
                scope = self.select(query, parent, "cte", ctes=names)
                if scope is not None:
                    self.cte_outputs[cte.ctename] = scope.outputs
            elif isinstance(query, ast.UpdateStmt | ast.DeleteStmt):
                self.modify(query)
            elif isinstance(query, ast.InsertStmt):
                self.insert(query, parent, "cte", names)
        return names

    def select(
        self, node: Any, parent: _Level | None, kind: str, ctes: set[str] | None = None
    ) -> Scope | None:
        """Analyze one SELECT; returns its scope (None for UNION and VALUES)."""
        own_ctes = set(ctes or ()) | self.with_clause(node.withClause, parent)
        if node.op != enums.SetOperation.SETOP_NONE:
            for branch in (node.larg, node.rarg):
                if branch is not None:
                    self.select(branch, parent, "union_branch", own_ctes)
            return None
        if node.valuesLists:
            level = _Level(parent, own_ctes)
            for row in node.valuesLists:
                for item in row:
                    self.expression_sublinks(item, level)
            return None
        level = _Level(parent, own_ctes)
        scope = Scope(kind=kind)
        self.result.scopes.append(scope)
        for item in node.fromClause or ():
            self.from_item(item, level, scope)
        targets = {}
        for target in node.targetList or ():
            val = target.val
            if isinstance(val, ast.ColumnRef) and isinstance(val.fields[-1], ast.A_Star):
                scope.select_star = True
            if target.name:
                targets[target.name] = val
            if isinstance(val, ast.ColumnRef):
                column = self.column(val, level)
                if column is not None:
                    scope.outputs[target.name or column.column] = column
            self.expression_sublinks(val, level)
        if node.whereClause is not None:
            self.condition(node.whereClause, level, scope, in_or=False)
        if node.havingClause is not None:
            self.expression_sublinks(node.havingClause, level)
        for item in node.groupClause or ():
            column = self.column_of(item, level, node.targetList, targets)
            if column is not None:
                scope.group_by.append(column)
        for sort in node.sortClause or ():
            self.sort_key(sort, level, scope, node.targetList, targets)
        scope.limit = self.limit_value(node.limitCount, "limit")
        scope.offset = self.limit_value(node.limitOffset, "offset")
        if not (node.groupClause or node.sortClause or node.limitCount):
            self.extreme(node.targetList, level, scope)
        scope.correlated = kind == "subquery" and self._mentions_outer(scope)
        return scope

    def extreme(self, target_list: Any, level: _Level, scope: Scope) -> None:
        """min(col) / max(col) without GROUP BY: the planner reads it as ORDER BY col LIMIT
        1 (an index scan that stops at the first row) when every call is one of them on
        the same column, so the scope gets that sort."""
        calls = [c for target in target_list or () for c in _find(target.val, ast.FuncCall)]
        names = {call.funcname[-1].sval for call in calls}
        if not calls or not names <= {"min", "max"}:
            return
        if any(len(c.args or ()) != 1 or c.over or c.agg_filter or c.agg_order for c in calls):
            return
        if len({deparse(call.args[0]) for call in calls}) != 1:
            return
        column, expression = self.indexable(calls[0].args[0], level)
        if column is not None:
            scope.order_by.append(SortKey(column, expression, names == {"max"}, None))
            scope.limit = 1

    @staticmethod
    def _mentions_outer(scope: Scope) -> bool:
        own = set(scope.relations)
        for join in scope.joins:
            for side in (join.left, join.right):
                if side.relation is not None and side.relation not in own:
                    return True
        return False

    def limit_value(self, node: Any, kind: str) -> int | str | None:
        if node is None:
            return None
        if isinstance(node, ast.A_Const):
            return node.val.ival if isinstance(node.val, ast.Integer) else None
        for number in _params_in(node):
            self.note_param(ParamUse(number=number, kind=kind))
        return "param"

    def from_item(self, item: Any, level: _Level, scope: Scope) -> None:
        if isinstance(item, ast.RangeVar):
            alias = item.alias.aliasname if item.alias else item.relname
            if item.schemaname is None and item.relname in level.ctes:
                level.names[alias] = None
                level.derived[alias] = self.cte_outputs.get(item.relname, {})
                return
            relation = Relation(item.schemaname, item.relname)
            level.names[alias] = relation  # with an alias, only the alias is visible
            scope.relations.append(relation)
        elif isinstance(item, ast.JoinExpr):
            self.from_item(item.larg, level, scope)
            self.from_item(item.rarg, level, scope)
            if item.quals is not None:
                self.condition(item.quals, level, scope, in_or=False)
            if item.usingClause:
                self.using_join(item, level, scope)
            if item.alias is not None:
                level.names.setdefault(item.alias.aliasname, None)
        elif isinstance(item, ast.RangeSubselect):
            parent = level if item.lateral else level.parent
            inner = self.select(item.subquery, parent, "subquery", level.ctes)
            if item.alias is not None:
                level.names[item.alias.aliasname] = None
                level.derived[item.alias.aliasname] = inner.outputs if inner else {}
        elif isinstance(item, ast.RangeFunction | ast.RangeTableFunc | ast.RangeTableSample):
            if isinstance(item, ast.RangeTableSample):
                self.from_item(item.relation, level, scope)
            elif getattr(item, "alias", None) is not None:
                level.names[item.alias.aliasname] = None

    def using_join(self, item: Any, level: _Level, scope: Scope) -> None:
        left = _relations_under(item.larg, level)
        right = _relations_under(item.rarg, level)
        for name_node in item.usingClause:
            name = name_node.sval
            for lrel in left:
                for rrel in right:
                    scope.joins.append(
                        JoinKey(
                            ColumnUse(name, candidates=((lrel,),)),
                            ColumnUse(name, candidates=((rrel,),)),
                        )
                    )

    # expressions

    def condition(self, node: Any, level: _Level, scope: Scope, *, in_or: bool) -> None:
        if isinstance(node, ast.BoolExpr):
            if node.boolop == enums.BoolExprType.AND_EXPR:
                for arg in node.args:
                    self.condition(arg, level, scope, in_or=in_or)
            elif node.boolop == enums.BoolExprType.OR_EXPR:
                for arg in node.args:
                    self.condition(arg, level, scope, in_or=True)
            else:  # NOT: the inner test is not indexable as such, its sub-selects are
                self.expression_sublinks(node, level)
            return
        if isinstance(node, ast.A_Expr):
            self.a_expr(node, level, scope, in_or)
            self.expression_sublinks(node, level)
            return
        if isinstance(node, ast.NullTest):
            column, expression = self.indexable(node.arg, level)
            if column is not None:
                is_null = node.nulltesttype == enums.NullTestType.IS_NULL
                scope.predicates.append(
                    Predicate(
                        column,
                        FilterKind.IS_NULL if is_null else FilterKind.IS_NOT_NULL,
                        "IS NULL" if is_null else "IS NOT NULL",
                        expression,
                        in_or=in_or,
                    )
                )
            return
        if isinstance(node, ast.BooleanTest):
            column, expression = self.indexable(node.arg, level)
            truth = {
                enums.BoolTestType.IS_TRUE: "true",
                enums.BoolTestType.IS_FALSE: "false",
            }.get(node.booltesttype)
            if column is not None and truth is not None:
                scope.predicates.append(
                    Predicate(column, FilterKind.EQ, "=", expression, value=truth, in_or=in_or)
                )
            return
        if isinstance(node, ast.ColumnRef):
            column = self.column(node, level)
            if column is not None:
                scope.predicates.append(
                    Predicate(column, FilterKind.EQ, "=", value="true", in_or=in_or)
                )
            return
        if isinstance(node, ast.SubLink):
            self.sublink(node, level, scope)
            return
        self.expression_sublinks(node, level)

    def a_expr(self, node: Any, level: _Level, scope: Scope, in_or: bool) -> None:
        kind = node.kind
        op = node.name[-1].sval if node.name else ""
        K = enums.A_Expr_Kind
        if kind == K.AEXPR_OP:
            self.comparison(node.lexpr, op, node.rexpr, level, scope, in_or)
        elif kind == K.AEXPR_IN and op == "=":
            column, expression = self.indexable(node.lexpr, level)
            values = node.rexpr if isinstance(node.rexpr, tuple | list) else (node.rexpr,)
            if column is not None and all(self.is_value(v, level) for v in values):
                params = tuple(n for v in values for n in _params_in(v))
                literal = _literal(values[0]) if len(values) == 1 else None
                scope.predicates.append(
                    Predicate(column, FilterKind.IN, "IN", expression, literal, params, in_or)
                )
                for value in values:
                    self.tie_params(value, column, FilterKind.IN, None)
        elif kind == K.AEXPR_OP_ANY and op == "=":
            column, expression = self.indexable(node.lexpr, level)
            if column is not None and self.is_value(node.rexpr, level):
                params = _params_in(node.rexpr)
                scope.predicates.append(
                    Predicate(column, FilterKind.IN, "= ANY", expression, None, params, in_or)
                )
                # ANY($1): the parameter is the whole array; ANY(ARRAY[$1, $2]): elements.
                array = _cast_type(node.rexpr) or ""
                whole = isinstance(node.rexpr, ast.ParamRef) or array.endswith("[]")
                for number in params:
                    if whole:
                        self.note_param(
                            ParamUse(number, column, FilterKind.IN, "= ANY", array or None)
                        )
                    else:
                        self.note_param(ParamUse(number, column, FilterKind.IN))
        elif kind in (K.AEXPR_LIKE, K.AEXPR_ILIKE) and op in ("~~", "~~*"):
            column, expression = self.indexable(node.lexpr, level)
            if column is not None and self.is_value(node.rexpr, level):
                params = _params_in(node.rexpr)
                pattern = _literal(node.rexpr)
                hidden = _hidden_constants(node.rexpr)
                if (pattern is not None and pattern[:1] in ("%", "_")) or hidden:
                    # No btree prefix to use: a substring search.
                    scope.predicates.append(
                        Predicate(
                            column, FilterKind.SUBSTRING, op, expression, pattern, params, in_or
                        )
                    )
                    for number in params:
                        use = (
                            ParamUse(number, kind=FilterKind.WILDCARD) if number in hidden else None
                        )
                        self.note_param(use or ParamUse(number, column, FilterKind.SUBSTRING, op))
                    return
                like_kind = FilterKind.LIKE if kind == K.AEXPR_LIKE else FilterKind.ILIKE
                scope.predicates.append(
                    Predicate(column, like_kind, op, expression, pattern, params, in_or)
                )
                for number in params:
                    self.note_param(ParamUse(number, column, like_kind, op))
        elif kind == K.AEXPR_NOT_DISTINCT:
            self.comparison(node.lexpr, "IS NOT DISTINCT FROM", node.rexpr, level, scope, in_or)
        elif kind == K.AEXPR_BETWEEN:
            column, expression = self.indexable(node.lexpr, level)
            bounds = node.rexpr or ()
            if column is not None and all(self.is_value(b, level) for b in bounds):
                params = tuple(n for b in bounds for n in _params_in(b))
                scope.predicates.append(
                    Predicate(column, FilterKind.RANGE, "BETWEEN", expression, None, params, in_or)
                )
                for position, bound in enumerate(bounds):
                    operator = "between_low" if position == 0 else "between_high"
                    self.tie_params(bound, column, FilterKind.RANGE, operator)

    def comparison(
        self, left: Any, op: str, right: Any, level: _Level, scope: Scope, in_or: bool
    ) -> None:
        lcol, lexpr = self.indexable(left, level)
        rcol, rexpr = self.indexable(right, level)
        if op == "=" and lcol and rcol and lexpr is None and rexpr is None and lcol != rcol:
            scope.joins.append(JoinKey(lcol, rcol, op))
            return
        for column, expression, other, operator in (
            (lcol, lexpr, right, op),
            (rcol, rexpr, left, _FLIPPED.get(op, op)),
        ):
            if column is None or not self.is_value(other, level):
                continue
            kind = _kind_of(operator)
            if kind is None:
                continue
            params = _params_in(other)
            scope.predicates.append(
                Predicate(column, kind, operator, expression, _literal(other), params, in_or)
            )
            self.tie_params(other, column, kind, operator)
            return
        # Neither side is a plain value: a join on expressions, or column vs outer column
        # already handled above. Record typed-literal params for costing anyway.
        for side in (left, right):
            for number, type_name in _cast_params(side):
                self.note_param(ParamUse(number, type_name=type_name))
        expressions = (
            (self.param_expression, FilterKind.PARAM_EXPRESSION),
            (self.columns_expression, FilterKind.COLUMNS_EXPRESSION),
        )
        for find, kind in expressions:
            for side, other in ((left, right), (right, left)):
                column = find(side, level)
                if column is None or not self.is_value(other, level):
                    continue
                expression = deparse(_unqualified(side))
                scope.predicates.append(Predicate(column, kind, op, expression, in_or=in_or))
                if kind == FilterKind.PARAM_EXPRESSION and op == "@@":
                    for number in _search_text_params(other):
                        self.note_param(ParamUse(number, column, FilterKind.TS_QUERY))
                return

    def param_expression(self, node: Any, level: _Level) -> ColumnUse | None:
        """The column of an expression over one column and parameters, else None."""
        if not isinstance(node, ast.FuncCall | ast.A_Expr | ast.CoalesceExpr):
            return None
        refs = list(_find(node, ast.ColumnRef))
        if len(refs) != 1 or not _params_in(node) or list(_find(node, ast.SubLink)):
            return None
        return self.column(refs[0], level)

    def columns_expression(self, node: Any, level: _Level) -> ColumnUse | None:
        """The first column of an expression over several columns of one table, else None."""
        if not isinstance(node, ast.FuncCall | ast.A_Expr | ast.CoalesceExpr):
            return None
        refs = list(_find(node, ast.ColumnRef))
        if len(refs) < 2 or _params_in(node) or list(_find(node, ast.SubLink)):
            return None
        columns = [self.column(ref, level) for ref in refs]
        if None in columns or len({(c.relation, c.candidates) for c in columns}) != 1:
            return None
        return columns[0]

    def sublink(self, node: Any, level: _Level, scope: Scope) -> None:
        sub = node.subselect
        if node.subLinkType == enums.SubLinkType.ANY_SUBLINK and node.testexpr is not None:
            # col IN (SELECT x FROM t ...): a semi-join on col = t.x
            column, expression = self.indexable(node.testexpr, level)
            inner_level = _Level(level, level.ctes)
            if (
                column is not None
                and expression is None
                and isinstance(sub, ast.SelectStmt)
                and sub.op == enums.SetOperation.SETOP_NONE
                and sub.targetList
                and len(sub.targetList) == 1
                and isinstance(sub.targetList[0].val, ast.ColumnRef)
            ):
                for item in sub.fromClause or ():
                    _register_names(item, inner_level)
                inner = self.column(sub.targetList[0].val, inner_level)
                if inner is not None:
                    scope.joins.append(JoinKey(column, inner, "="))
        if isinstance(sub, ast.SelectStmt):
            self.select(sub, level, "subquery", level.ctes)

    def expression_sublinks(self, node: Any, level: _Level) -> None:
        """Analyze sub-selects hidden anywhere in an expression (SELECT list, HAVING, CASE)."""
        for sublink in _find(node, ast.SubLink):
            if isinstance(sublink.subselect, ast.SelectStmt):
                self.select(sublink.subselect, level, "subquery", level.ctes)
        for number, type_name in _cast_params(node):
            self.note_param(ParamUse(number, type_name=type_name))

    def sort_key(self, sort: Any, level: _Level, scope: Scope, target_list, targets) -> None:
        node = _target_for(sort.node, target_list, targets)
        column, expression = self.indexable(node, level)
        direction = sort.sortby_dir == enums.SortByDir.SORTBY_DESC
        nulls = {
            enums.SortByNulls.SORTBY_NULLS_FIRST: True,
            enums.SortByNulls.SORTBY_NULLS_LAST: False,
        }.get(sort.sortby_nulls)
        scope.order_by.append(SortKey(column, expression, direction, nulls))

    def column_of(self, node: Any, level: _Level, target_list, targets) -> ColumnUse | None:
        node = _target_for(node, target_list, targets)
        column, expression = self.indexable(node, level)
        return column if expression is None else None

    # columns

    def indexable(self, node: Any, level: _Level) -> tuple[ColumnUse | None, str | None]:
        """A plain column, or an expression over exactly one column with no parameters."""
        if isinstance(node, ast.ColumnRef):
            return self.column(node, level), None
        if isinstance(node, ast.TypeCast) and isinstance(node.arg, ast.ColumnRef):
            column = self.column(node.arg, level)
            if column is None:
                return None, None
            return column, deparse(_unqualified(node))
        if isinstance(node, ast.FuncCall | ast.A_Expr | ast.CoalesceExpr | ast.A_Indirection):
            refs = list(_find(node, ast.ColumnRef))
            if len(refs) != 1 or _params_in(node) or list(_find(node, ast.SubLink)):
                return None, None
            if isinstance(node, ast.FuncCall) and (node.agg_star or node.over is not None):
                return None, None
            column = self.column(refs[0], level)
            if column is None:
                return None, None
            return column, deparse(_unqualified(node))
        return None, None

    def column(self, node: Any, level: _Level) -> ColumnUse | None:
        names = [f.sval for f in node.fields if isinstance(f, ast.String)]
        if len(names) != len(node.fields) or not names:
            return None  # a star
        if len(names) == 1:
            return ColumnUse(names[0], candidates=level.candidates())
        column = names[-1]
        if len(names) >= 3:
            relation = Relation(names[-3], names[-2])
            return ColumnUse(column, relation)
        found, relation, _outer = level.lookup(names[0])
        if found:
            if relation is not None:
                return ColumnUse(column, relation)
            return level.derived_column(names[0], column)
        # a table name used although it has no alias clash, e.g. "orders.id" for "FROM orders"
        return None

    def is_value(self, node: Any, level: _Level) -> bool:
        """True when `node` is constant for one scan of this scope's tables.

        Constants, parameters, and columns of outer scopes (a correlated value) qualify.
        """
        if node is None:
            return False
        if isinstance(node, ast.SubLink):
            return False
        for ref in _find(node, ast.ColumnRef):
            names = [f.sval for f in ref.fields if isinstance(f, ast.String)]
            if len(names) < 2:
                return False
            found, _relation, outer = level.lookup(names[0])
            if not (found and outer):
                return False
        # Aggregates and window functions are not values of one row.
        return not any(f.over is not None or f.agg_star for f in _find(node, ast.FuncCall))

    def tie_params(self, value: Any, column: ColumnUse, kind: str, operator: str | None) -> None:
        """A $n that is the compared value itself takes the column's type and values; one
        buried in an expression (now() - $1) only its own cast, if any."""
        if isinstance(value, ast.ParamRef) or (
            isinstance(value, ast.TypeCast) and isinstance(value.arg, ast.ParamRef)
        ):
            number = value.number if isinstance(value, ast.ParamRef) else value.arg.number
            self.note_param(ParamUse(number, column, kind, operator, _cast_type(value)))
            return
        for number, type_name in _cast_params(value):
            self.note_param(ParamUse(number, type_name=type_name))
        for number in _params_in(value):
            if number not in self.result.params:
                self.note_param(ParamUse(number))

    def note_param(self, use: ParamUse) -> None:
        self.result.max_param = max(self.result.max_param, use.number)
        known = self.result.params.get(use.number)
        better = known is not None and known.column is None and use.column is not None
        typed = known is not None and known.column is None and not known.type_name
        if known is None or better or (typed and use.type_name):
            if known is not None and use.type_name is None and known.type_name is not None:
                use = ParamUse(use.number, use.column, use.kind, use.operator, known.type_name)
            self.result.params[use.number] = use


# --- helpers ----------------------------------------------------------------------------


def _kind_of(operator: str) -> str | None:
    if operator == "=":
        return FilterKind.EQ
    if operator in _RANGE_OPS:
        return FilterKind.RANGE
    if operator in _GIN_OPS:
        return FilterKind.CONTAINS
    if operator in ("<>", "!="):
        return FilterKind.NEQ
    if operator == "IS NOT DISTINCT FROM":
        return FilterKind.NOT_DISTINCT
    if operator in ("~~",):
        return FilterKind.LIKE
    return None


def _find(node: Any, kind: type, *, into_sublinks: bool = False) -> Any:
    """Every node of `kind` under `node`; sub-selects' own scopes only when asked."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        if isinstance(current, tuple | list):
            stack.extend(current)
            continue
        if not isinstance(current, ast.Node):
            continue
        if isinstance(current, kind):
            yield current
            if kind is ast.SubLink:
                continue
        if isinstance(current, ast.SubLink) and kind is not ast.SubLink and not into_sublinks:
            stack.append(current.testexpr)
            continue
        for name in current:
            value = getattr(current, name, None)
            if isinstance(value, ast.Node | tuple | list):
                stack.append(value)


def _params_in(node: Any) -> tuple[int, ...]:
    return tuple(sorted({p.number for p in _find(node, ast.ParamRef)}))


def text_search_expression(expression: str, config: str) -> str | None:
    """`to_tsvector($n, col)` with the configuration written in, as an index needs it.

    pg_stat_statements hides the configuration of to_tsvector('english', body); an
    expression index must name one, and the query uses the index only when it is the same.
    None for any other expression."""
    call = parse_statement(f"SELECT {expression}").targetList[0].val
    if not (
        isinstance(call, ast.FuncCall)
        and call.funcname[-1].sval == "to_tsvector"
        and len(call.args or ()) == 2
        and isinstance(call.args[0], ast.ParamRef)
        and isinstance(call.args[1], ast.ColumnRef)
    ):
        return None
    regconfig = ast.TypeName(names=(ast.String(sval="regconfig"),), typemod=-1)
    constant = ast.A_Const(isnull=False, val=ast.String(sval=config))
    call.args = (ast.TypeCast(arg=constant, typeName=regconfig), call.args[1])
    return deparse(call)


def _search_text_params(node: Any) -> list[int]:
    """The $n of the search text in to_tsquery / plainto_tsquery / websearch_to_tsquery..."""
    if not isinstance(node, ast.FuncCall) or not node.funcname[-1].sval.endswith("tsquery"):
        return []
    last = (node.args or (None,))[-1]
    return [last.number] if isinstance(last, ast.ParamRef) else []


def _hidden_constants(pattern: Any) -> set[int]:
    """The $n of a concatenated LIKE pattern that stood for constants, when one leads it.

    pg_stat_statements numbers the constants it replaces after the statement's own
    parameters, in text order: in `$2 || $1 || $3` the $2 before $1 was a constant (the
    '%' of '%' || $1 || '%'). Every parameter but the lowest-numbered is such a constant.
    """
    operands = _concatenated(pattern)
    numbers = [p.number if isinstance(p, ast.ParamRef) else None for p in operands]
    if len(operands) < 2 or None in numbers or numbers[0] == min(numbers):
        return set()
    return set(numbers) - {min(numbers)}


def _concatenated(node: Any) -> list[Any]:
    """The operands of `a || b || c` in order (the node itself when it is no `||`)."""
    if isinstance(node, ast.A_Expr) and node.name and node.name[-1].sval == "||":
        return _concatenated(node.lexpr) + _concatenated(node.rexpr)
    return [node]


def _cast_type(node: Any) -> str | None:
    if isinstance(node, ast.TypeCast) and isinstance(node.arg, ast.ParamRef):
        return _type_name(node.typeName)
    return None


def _cast_params(node: Any) -> list[tuple[int, str]]:
    return [
        (cast.arg.number, _type_name(cast.typeName))
        for cast in _find(node, ast.TypeCast)
        if isinstance(cast.arg, ast.ParamRef)
    ]


def _type_name(type_name: Any) -> str:
    names = [n.sval for n in type_name.names if isinstance(n, ast.String)]
    if len(names) == 2 and names[0] == "pg_catalog":
        names = names[1:]
    text = ".".join(names)
    if type_name.arrayBounds:
        text += "[]"
    return text


def _literal(node: Any) -> str | None:
    """The text of a constant (also under a cast), else None."""
    if isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.A_Const) or node.isnull:
        return None
    val = node.val
    if isinstance(val, ast.String):
        return val.sval
    if isinstance(val, ast.Integer):
        return str(val.ival)
    if isinstance(val, ast.Float):
        return val.fval
    if isinstance(val, ast.Boolean):
        return "true" if val.boolval else "false"
    return None


def _unqualified(node: Any) -> Any:
    """A copy of an expression with every column reference stripped to its column name."""
    clone = copy.deepcopy(node)
    for ref in _find(clone, ast.ColumnRef):
        if len(ref.fields) > 1:
            ref.fields = (ref.fields[-1],)
    return clone


def _target_for(node: Any, target_list, targets) -> Any:
    """ORDER BY 2 / GROUP BY alias point at a SELECT-list entry: follow them."""
    if (
        isinstance(node, ast.A_Const)
        and isinstance(node.val, ast.Integer)
        and target_list
        and 1 <= node.val.ival <= len(target_list)
    ):
        return target_list[node.val.ival - 1].val
    if isinstance(node, ast.ColumnRef) and len(node.fields) == 1:
        name = node.fields[0]
        if isinstance(name, ast.String) and name.sval in targets:
            target = targets[name.sval]
            if not isinstance(target, ast.ColumnRef) or _last_name(target) != name.sval:
                return target
    return node


def _last_name(ref: Any) -> str | None:
    last = ref.fields[-1]
    return last.sval if isinstance(last, ast.String) else None


def _register_names(item: Any, level: _Level) -> None:
    if isinstance(item, ast.RangeVar):
        alias = item.alias.aliasname if item.alias else item.relname
        if item.schemaname is None and item.relname in level.ctes:
            level.names[alias] = None
        else:
            level.names[alias] = Relation(item.schemaname, item.relname)
    elif isinstance(item, ast.JoinExpr):
        _register_names(item.larg, level)
        _register_names(item.rarg, level)
    elif getattr(item, "alias", None) is not None:
        level.names[item.alias.aliasname] = None


def _relations_under(item: Any, level: _Level) -> list[Relation]:
    if isinstance(item, ast.RangeVar):
        alias = item.alias.aliasname if item.alias else item.relname
        relation = level.names.get(alias)
        return [relation] if relation is not None else []
    if isinstance(item, ast.JoinExpr):
        return _relations_under(item.larg, level) + _relations_under(item.rarg, level)
    return []


def column_resolve(
    use: ColumnUse, tables: Mapping[Relation, TableInfo]
) -> tuple[TableInfo, str] | None:
    """The table a column of a query belongs to, by SQL's rules, or None when unknown.

    A qualified column names its relation; an unqualified one belongs to the innermost
    scope level where exactly one visible relation has a column of that name.
    """
    if use.relation is not None:
        info = tables.get(use.relation)
        if info is not None and use.column in info.columns:
            return info, use.column
        return None
    for level in use.candidates:
        owners = [
            tables[rel] for rel in level if rel in tables and use.column in tables[rel].columns
        ]
        if len({o.oid for o in owners}) == 1:
            return owners[0], use.column
        if owners:
            return None  # ambiguous: the server would have refused the query
    return None
