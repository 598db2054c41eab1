"""Index candidates: which index shapes could serve a query, and how each is written.

From a query's analysis (per SELECT scope, per table): single columns; equality columns
first, then one range, a LIKE prefix or the ORDER BY (directions kept, mixed ones too);
join keys on the inner side; expression keys for function-wrapped filters; the pattern
operator class where the collation needs one; partial indexes for a rare value or
IS [NOT] NULL; GIN for jsonb and array containment, pg_trgm's GIN for substring
searches, an expression GIN for full-text search. A shape an existing valid index
already leads with is not a candidate. Costing and choosing happen in the advisor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from pglast import ast, enums
from pglast.visitors import Visitor

from pgaccess import ddl
from pgaccess.catalog import ColumnInfo, ColumnStats, IndexInfo, TableInfo, is_c_collation

from . import analysis as an

if TYPE_CHECKING:
    from psycopg import sql

# At most this many equality columns lead a composite key: more rarely pays for its width.
MAX_EQUALITY_KEYS = 3
# Widest key generated (equality + range / sort columns).
MAX_KEY_COLUMNS = 5
# A filter value is "rare" (worth a partial index) when it matches at most this share.
PARTIAL_MAX_FRACTION = 0.2
# ...and the column has at most this many distinct values (a status, a flag, a type).
PARTIAL_MAX_DISTINCT = 1000
# Operators jsonb_path_ops serves; any other jsonb operator needs the default jsonb_ops.
GIN_PATH_OPERATORS = {"@>", "@?", "@@"}
# pg_trgm's GIN operator class: the one index a LIKE '%...%' or an ILIKE can use.
TRIGRAM_OPCLASS = "gin_trgm_ops"
# A partial index INCLUDEs the other columns a single-table query reads (the aggregated
# amount of `sum(amount) WHERE paid_at IS NULL`) when they are at most this many: an
# index-only scan over the rare rows then never touches the heap.
MAX_INCLUDE_COLUMNS = 3


class CandidateContext(Protocol):
    """What candidate generation needs to know about the workload's tables."""

    by_oid: Mapping[int, TableInfo]
    trigram: bool  # pg_trgm is installed on the target: its GIN operator class exists
    text_search_config: str  # the configuration a hidden to_tsvector($n, col) is taken as

    def resolve(self, use: an.ColumnUse) -> tuple[TableInfo, str] | None: ...

    def column_stats(self, info: TableInfo, column: str) -> ColumnStats | None: ...


@dataclass(frozen=True)
class IndexKey:
    text: str  # a column name, or an expression as pglast prints it
    expression: bool = False
    descending: bool = False
    nulls_first: bool | None = None
    opclass: str | None = None
    sort: bool = field(default=False, compare=False)  # serves an ORDER BY: direction matters


@dataclass(frozen=True)
class Candidate:
    table_oid: int
    keys: tuple[IndexKey, ...]
    method: str = "btree"
    where: str | None = None
    # For a partial index: the predicate's column and the share of rows it keeps.
    where_column: str | None = field(default=None, compare=False)
    where_share: float = field(default=1.0, compare=False)
    include: tuple[str, ...] = ()  # INCLUDE columns: an index-only scan reads them too


@dataclass
class _TableNeeds:
    equality: list[IndexKey] = field(default_factory=list)
    ranges: list[IndexKey] = field(default_factory=list)
    likes: list[IndexKey] = field(default_factory=list)
    joins: list[IndexKey] = field(default_factory=list)
    ored: list[IndexKey] = field(default_factory=list)
    # (predicate, its column, the share of rows it keeps)
    partial: list[tuple[str, str, float]] = field(default_factory=list)
    contains: dict[str, set[str]] = field(default_factory=dict)  # column -> operators
    trigram: set[str] = field(default_factory=set)  # text columns searched by substring
    text_search: set[IndexKey] = field(default_factory=set)  # to_tsvector(...) @@ keys
    sort: list[IndexKey] = field(default_factory=list)
    group: list[IndexKey] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)  # every column a single-table query reads


def _usable_table(info: TableInfo, min_rows: int) -> bool:
    return info.kind in ("r", "p", "m") and not info.is_system and info.rows >= min_rows


def _scope_needs(ctx: CandidateContext, scope: an.Scope, min_rows: int) -> dict[int, _TableNeeds]:
    needs: dict[int, _TableNeeds] = defaultdict(_TableNeeds)
    for predicate in scope.predicates:
        found = ctx.resolve(predicate.column)
        if found is None or not _usable_table(found[0], min_rows):
            continue
        info, column = found
        col = info.columns[column]
        need = needs[info.oid]
        key = _key_for(column, predicate.expression)
        if predicate.in_or:
            if predicate.kind in (an.FilterKind.EQ, an.FilterKind.IN, an.FilterKind.RANGE):
                need.ored.append(key)
            continue
        if predicate.kind in (an.FilterKind.EQ, an.FilterKind.IN):
            need.equality.append(key)
            if predicate.value is not None and predicate.expression is None:
                share = _value_share(ctx, info, column, predicate.value)
                if share is not None and share <= PARTIAL_MAX_FRACTION:
                    need.partial.append((_equality_text(column, predicate.value), column, share))
        elif predicate.kind == an.FilterKind.RANGE:
            need.ranges.append(key)
        elif predicate.kind == an.FilterKind.LIKE:
            pattern_key = _pattern_key(key, col)
            if pattern_key is not None:
                need.likes.append(pattern_key)
        elif (
            predicate.kind in (an.FilterKind.SUBSTRING, an.FilterKind.ILIKE)
            and predicate.expression is None
            and col.category == "S"
            and ctx.trigram
        ):
            need.trigram.add(column)
        elif predicate.kind == an.FilterKind.PARAM_EXPRESSION and predicate.operator == "@@":
            expression = an.text_search_expression(predicate.expression, ctx.text_search_config)
            if expression is not None:
                need.text_search.add(IndexKey(expression, expression=True))
        elif (
            predicate.kind in (an.FilterKind.IS_NULL, an.FilterKind.IS_NOT_NULL)
            and predicate.expression is None
        ):
            stats = ctx.column_stats(info, column)
            if stats is not None:
                share = (
                    stats.null_frac
                    if predicate.kind == an.FilterKind.IS_NULL
                    else 1 - stats.null_frac
                )
                if share <= PARTIAL_MAX_FRACTION:
                    need.partial.append((_null_test_text(column, predicate.kind), column, share))
        elif (
            predicate.kind == an.FilterKind.CONTAINS
            and predicate.expression is None
            and (col.base_type == "jsonb" or col.category == "A")
        ):
            need.contains.setdefault(column, set()).add(predicate.operator)
    for join in scope.joins:
        for side, other in ((join.left, join.right), (join.right, join.left)):
            found = ctx.resolve(side)
            if found is None or not _usable_table(found[0], min_rows):
                continue
            other_found = ctx.resolve(other)
            if other_found is not None and other_found[0].oid == found[0].oid:
                continue
            needs[found[0].oid].joins.append(IndexKey(found[1]))
    sort = _sort_keys(ctx, scope.order_by)
    if sort is not None:
        oid, keys = sort
        if _usable_table(ctx.by_oid[oid], min_rows):
            needs[oid].sort = keys
    groups = [ctx.resolve(use) for use in scope.group_by]
    if groups and all(g is not None for g in groups) and len({g[0].oid for g in groups}) == 1:
        oid = groups[0][0].oid
        if _usable_table(ctx.by_oid[oid], min_rows):
            needs[oid].group = list(dict.fromkeys(IndexKey(g[1]) for g in groups))
    return needs


def _key_for(column: str, expression: str | None) -> IndexKey:
    if expression is None:
        return IndexKey(column)
    try:
        return IndexKey(an.normalize_expression(expression), expression=True)
    except Exception:
        return IndexKey(expression, expression=True)


def _pattern_key(key: IndexKey, col: ColumnInfo) -> IndexKey | None:
    """The key that serves LIKE 'prefix%' under the column's collation."""
    if col.category != "S":
        return None
    if is_c_collation(col.collation):
        return key
    if key.expression:
        opclass = "text_pattern_ops"
    else:
        opclass = {
            "varchar": "varchar_pattern_ops",
            "bpchar": "bpchar_pattern_ops",
        }.get(col.base_type, "text_pattern_ops")
    return IndexKey(key.text, key.expression, opclass=opclass)


def _sort_keys(
    ctx: CandidateContext, order_by: list[an.SortKey]
) -> tuple[int, list[IndexKey]] | None:
    """ORDER BY keys when they all belong to one table (else no index can provide the order)."""
    if not order_by:
        return None
    oid = None
    keys = []
    for item in order_by:
        if item.column is None:
            return None
        found = ctx.resolve(item.column)
        if found is None or (oid is not None and found[0].oid != oid):
            return None
        oid = found[0].oid
        key = _key_for(found[1], item.expression)
        nulls = item.nulls_first
        if nulls is not None and nulls == item.descending:
            nulls = None  # the default for the direction: say nothing
        keys.append(IndexKey(key.text, key.expression, item.descending, nulls, sort=True))
    return oid, keys


def _value_share(ctx: CandidateContext, info: TableInfo, column: str, value: str) -> float | None:
    """The share of rows holding `value`, for a low-cardinality column ANALYZE has seen."""
    stats = ctx.column_stats(info, column)
    if stats is None or not stats.common_values:
        return None
    distinct = stats.n_distinct if stats.n_distinct > 0 else -stats.n_distinct * info.rows
    if distinct > PARTIAL_MAX_DISTINCT:
        return None
    for common, freq in zip(stats.common_values, stats.common_freqs, strict=False):
        if str(common).lower() == value.lower() or _same_number(common, value):
            return float(freq)
    rest = max(0.0, 1.0 - sum(stats.common_freqs) - stats.null_frac)
    return rest / max(distinct - len(stats.common_values), 1)


def _same_number(common, value: str) -> bool:
    try:
        return float(common) == float(value)
    except (TypeError, ValueError):
        return False


def _column_ref(column: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=(ast.String(sval=column),))


def _equality_text(column: str, value: str) -> str:
    node = ast.A_Expr(
        kind=enums.A_Expr_Kind.AEXPR_OP,
        name=(ast.String(sval="="),),
        lexpr=_column_ref(column),
        rexpr=ast.A_Const(isnull=False, val=ast.String(sval=value)),
    )
    return an.deparse(node)


def _null_test_text(column: str, kind: str) -> str:
    node = ast.NullTest(
        arg=_column_ref(column),
        nulltesttype=enums.NullTestType.IS_NULL
        if kind == an.FilterKind.IS_NULL
        else enums.NullTestType.IS_NOT_NULL,
    )
    return an.deparse(node)


def candidates_for(
    ctx: CandidateContext, analysis: an.QueryAnalysis, *, min_table_rows: int
) -> set[Candidate]:
    """Every index shape that could serve one scope of the query, per table of at least
    `min_table_rows` rows."""
    found: set[Candidate] = set()
    reads = single_table_reads(analysis)
    for scope in analysis.scopes:
        for oid, need in _scope_needs(ctx, scope, min_table_rows).items():
            need.reads = {c for c in reads if c in ctx.by_oid[oid].columns}
            found |= _table_candidates(ctx, ctx.by_oid[oid], need)
    return found


class _ColumnNames(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_ColumnRef(self, _ancestors, node: ast.ColumnRef) -> None:
        last = node.fields[-1]
        if isinstance(last, ast.String):
            self.names.add(last.sval)


def single_table_reads(analysis: an.QueryAnalysis) -> set[str]:
    """The columns a query of one table reads anywhere (its SELECT list, aggregates,
    filters); nothing for a join, a SELECT * or what does not parse."""
    if len(analysis.relations) != 1 or any(s.select_star for s in analysis.scopes):
        return set()
    try:
        root = an.parse_statement(analysis.query)
    except Exception:
        return set()
    visitor = _ColumnNames()
    visitor(root)
    return visitor.names


def _table_candidates(ctx: CandidateContext, info: TableInfo, need: _TableNeeds) -> set[Candidate]:
    oid = info.oid
    equality = _by_selectivity(ctx, info, list(dict.fromkeys(need.equality)))[:MAX_EQUALITY_KEYS]
    ranges = _by_selectivity(ctx, info, list(dict.fromkeys(need.ranges)))
    out: set[Candidate] = set()

    def add(keys: Iterable[IndexKey], where: str | None = None) -> None:
        keys = dedupe_keys(keys)[:MAX_KEY_COLUMNS]
        if keys:
            out.add(Candidate(oid, tuple(keys), "btree", where))

    # Single columns: each filter, join key and OR arm on its own.
    for key in [*equality, *ranges, *need.likes, *need.joins, *need.ored]:
        add([key])
    # Equality columns first, then one range, a LIKE prefix, or the sort order.
    if equality:
        add(equality)
        for tail in ranges[:1] + need.likes[:1]:
            add([*equality, tail])
        if need.sort:
            add([*equality, *need.sort])
        if need.group:
            add([*equality, *need.group])
    if need.sort:
        add(need.sort)
        if ranges and ranges[0].text == need.sort[0].text:
            add(need.sort)
    if need.group:
        add(need.group)
    # Join keys on the inner side, alone and after the equality filters; then the sort
    # order, which a correlated top-N (LATERAL ... ORDER BY ... LIMIT) reads per outer row.
    for key in need.joins:
        if equality:
            add([*equality, key])
            add([key, *equality])
        if need.sort:
            add([*equality, key, *need.sort])
    # Partial indexes: a rare value or IS [NOT] NULL as the predicate, the rest as keys.
    for predicate, column, share in need.partial:
        rest_eq = [k for k in equality if k.text != column]
        keys = dedupe_keys(rest_eq + (need.sort or ranges[:1]) or need.joins[:1])
        keys = keys[:MAX_KEY_COLUMNS] or [IndexKey(column)]
        out.add(Candidate(oid, tuple(keys), "btree", predicate, column, share))
        # The covering form an expert writes: the rest of what the query reads INCLUDEd.
        include = sorted(need.reads - {k.text for k in keys} - {column})
        if include and len(include) <= MAX_INCLUDE_COLUMNS:
            out.add(Candidate(oid, tuple(keys), "btree", predicate, column, share, tuple(include)))
    # GIN for containment: jsonb_path_ops when only @> (and friends) are asked.
    for column, operators in need.contains.items():
        col = info.columns[column]
        if col.base_type == "jsonb":
            opclass = "jsonb_path_ops" if operators <= GIN_PATH_OPERATORS else None
        else:
            opclass = None
        out.add(Candidate(oid, (IndexKey(column, opclass=opclass),), "gin"))
    for column in need.trigram:
        out.add(Candidate(oid, (IndexKey(column, opclass=TRIGRAM_OPCLASS),), "gin"))
    for key in need.text_search:
        out.add(Candidate(oid, (key,), "gin"))
    return out


def narrower_variants(candidate: Candidate) -> set[Candidate]:
    """The narrower forms of a wide B-tree candidate, each costed as an option of its own:
    its key prefixes and the same keys without the INCLUDE columns (the selection keeps the
    wider only where its extra bytes pay)."""
    if candidate.method != "btree":
        return set()
    variants = {
        replace(candidate, keys=candidate.keys[:length], include=())
        for length in range(1, len(candidate.keys))
    }
    if candidate.include:
        variants.add(replace(candidate, include=()))
    return variants


def dedupe_keys(keys: Iterable[IndexKey]) -> list[IndexKey]:
    seen: set[str] = set()
    result = []
    for key in keys:
        if key.text in seen:
            continue
        seen.add(key.text)
        result.append(key)
    return result


def _by_selectivity(ctx: CandidateContext, info: TableInfo, keys: list[IndexKey]) -> list[IndexKey]:
    """Most distinct values first: the composite then also serves lookups on its prefix."""

    def distinct(key: IndexKey) -> float:
        if key.expression:
            return 0.0
        stats = ctx.column_stats(info, key.text)
        if stats is None:
            return 0.0
        return stats.n_distinct if stats.n_distinct > 0 else -stats.n_distinct * info.rows

    return sorted(keys, key=distinct, reverse=True)


def interesting_keys(
    ctx: CandidateContext, analysis: an.QueryAnalysis, *, min_table_rows: int
) -> dict[int, set[str]]:
    """Per table (of at least `min_table_rows` rows), the columns and expressions this query
    filters, joins, sorts or groups on."""
    result: dict[int, set[str]] = defaultdict(set)
    for scope in analysis.scopes:
        for oid, need in _scope_needs(ctx, scope, min_table_rows).items():
            keys = [
                *need.equality,
                *need.ranges,
                *need.likes,
                *need.joins,
                *need.ored,
                *need.sort,
                *need.group,
            ]
            result[oid].update(k.text for k in keys)
            result[oid].update(column for _pred, column, _share in need.partial)
            result[oid].update(need.contains)
            result[oid].update(need.trigram)
            result[oid].update(k.text for k in need.text_search)
    return result


def is_covered(candidate: Candidate, table: TableInfo) -> bool:
    """An existing valid index already leads with the candidate's keys, in a usable way."""
    for index in table.indexes:
        if not index.valid or index.method != candidate.method:
            continue
        if (index.predicate or None) != candidate.where and index.predicate is not None:
            continue
        if candidate.where is not None and index.predicate is None:
            continue
        if len(index.keys) < len(candidate.keys):
            continue
        if _keys_match(candidate.keys, index):
            return True
    return False


def _keys_match(keys: tuple[IndexKey, ...], index: IndexInfo) -> bool:
    flips = set()
    for position, key in enumerate(keys):
        if existing_key(index.keys[position]) != key.text:
            return False
        if not _opclass_compatible(key.opclass, index.opclasses[position]):
            return False
        if key.sort:
            flips.add(key.descending != index.descending[position])
    return len(flips) <= 1  # every sort key the same way, or every one reversed


def existing_key(text: str) -> str:
    """pg_get_indexdef's key (quoted name or expression) in the candidates' notation."""
    try:
        node = an.parse_statement(f"SELECT {text}").targetList[0].val
    except Exception:
        return text
    if isinstance(node, ast.ColumnRef) and len(node.fields) == 1:
        return node.fields[0].sval
    return an.deparse(node)


def _opclass_compatible(wanted: str | None, existing: str) -> bool:
    if wanted is None:
        return "pattern_ops" not in existing
    if wanted == "jsonb_path_ops":
        return existing in ("jsonb_path_ops", "jsonb_ops")
    return wanted == existing


def index_statement(
    info: TableInfo, candidate: Candidate, *, name: str | None = None
) -> sql.Composed:
    """CREATE INDEX [name] ON schema.table USING method (keys) [WHERE predicate]."""
    return ddl.create_index_sql(
        schema=info.schema,
        table=info.name,
        keys=candidate.keys,
        method=candidate.method,
        where=candidate.where,
        name=name,
        include=candidate.include,
    )


def costing_stand_in(candidate: Candidate) -> Candidate:
    """A non-partial twin that HypoPG costs a partial candidate with where it cannot.

    HypoPG checks a hypothetical partial index's predicate against the wrong range-table
    entry once the table is not the query's first (a view, a join), so the planner never
    picks it there. The twin leads with the predicate's column (an equality the planner
    matches wherever the table sits), so it reads the same rows. Both exist while the
    candidate is costed; the planner takes whichever it can use. The size reported is the
    partial index's own.
    """
    if candidate.where is None or candidate.where_column is None:
        return candidate
    lead = IndexKey(candidate.where_column)
    keys = (lead, *(k for k in candidate.keys if k.text != candidate.where_column))
    return Candidate(candidate.table_oid, keys[:MAX_KEY_COLUMNS], candidate.method)


def fingerprint(info: TableInfo, candidate: Candidate) -> str:
    keys = ",".join(
        key.text
        + (f" {key.opclass}" if key.opclass else "")
        + (" DESC" if key.descending else "")
        + ({True: " NULLS FIRST", False: " NULLS LAST"}.get(key.nulls_first, ""))
        for key in candidate.keys
    )
    where = f" WHERE {candidate.where}" if candidate.where else ""
    include = f" INCLUDE ({','.join(candidate.include)})" if candidate.include else ""
    return f"index:{candidate.method}:{info.schema}.{info.name}({keys}){include}{where}"


def index_name(info: TableInfo, candidate: Candidate, identity: str, taken: set[str]) -> str:
    """<table>_<keys>[_<method>][_partial]_idx (pgaccess.ddl.index_name makes it unique and
    short enough, hashing `identity`)."""
    parts = []
    for key in candidate.keys:
        text = (
            key.text
            if not key.expression  # an expression's keywords in lower case, as its columns
            else "".join(ch if ch.isalnum() else "_" for ch in key.text.lower())
        )
        parts.append("_".join(filter(None, text.split("_"))))
    if candidate.method != "btree":
        parts.append(candidate.method)
    if candidate.include:
        parts += ["incl", *candidate.include]
    if candidate.where:
        parts.append("partial")
    return ddl.index_name(info.name, parts, identity=identity, taken=taken)
