"""Where extended statistics would fix a plan: the planner's row estimate of a scan or join
is off by MIN_ESTIMATE_FACTOR or more, its conditions name two or more columns of one
table, and those columns go together (a sample shows a functional dependency or few
distinct combinations). Pure: plans, analyses and measurements in, findings out.
"""

from collections import defaultdict
from dataclasses import dataclass

from pglast import ast
from pglast.parser import ParseError, parse_sql

from pgaccess.column_statistics import (
    Correlation,
    StatisticsKind,
    StatisticsProof,
    plan_nodes,
    rows_factor,
)

from .analysis import ColumnUse, QueryAnalysis, find_nodes

# An estimate this many times off is one a plan can go wrong on (a nested loop over what
# was taken for a handful of rows); smaller errors rarely change the plan.
MIN_ESTIMATE_FACTOR = 10.0
# Columns go together when one determines the other for this share of the rows...
MIN_DEPENDENCY = 0.9
# ...or when they show at most this share of the combinations independent columns would.
MAX_COMBINATION_SHARE = 0.1
# A proof helps when the estimate comes within this factor of the actual rows...
FIXED_ESTIMATE_FACTOR = 2.0
# ...and the query is not slower by more than the noise of a warm re-run: this many times
# its time before and this many ms more (a sub-millisecond query varies by more than 10%).
MAX_SLOWDOWN = 1.1
MAX_SLOWDOWN_MS = 5.0
# Plan keys holding the conditions a node evaluates.
CONDITION_KEYS = ("Index Cond", "Recheck Cond", "Filter", "Hash Cond", "Merge Cond", "Join Filter")
JOIN_NODES = frozenset({"Nested Loop", "Hash Join", "Merge Join"})


@dataclass(frozen=True)
class EstimateMiss:
    """A plan node whose row estimate is far off, on two or more columns of one table."""

    node_type: str
    schema: str | None  # None: the plan and the query leave it to the search_path
    table: str
    columns: tuple[str, ...]  # sorted
    estimated_rows: float
    actual_rows: float

    @property
    def factor(self) -> float:
        return rows_factor(self.estimated_rows, self.actual_rows)


def estimate_misses(
    plan: object, analysis: QueryAnalysis, *, min_factor: float = MIN_ESTIMATE_FACTOR
) -> list[EstimateMiss]:
    """The scans and joins of an EXPLAIN (ANALYZE, FORMAT JSON) plan whose row estimate is
    `min_factor` or more off and whose conditions cover two or more columns of one table
    that the query filters or joins on; the worst per table and columns, worst first."""
    used = used_columns(analysis)
    schemas = _schemas(analysis)
    found: dict[tuple, EstimateMiss] = {}
    for node in plan_nodes(plan):
        if not node.get("Actual Loops") or "Actual Rows" not in node:
            continue  # never executed, or a plan without ANALYZE
        estimated, actual = float(node["Plan Rows"]), float(node["Actual Rows"])
        if rows_factor(estimated, actual) < min_factor:
            continue
        for table, columns in _node_columns(node).items():
            columns = sorted(columns & used.get(table, set()))
            if len(columns) < 2:
                continue
            miss = EstimateMiss(
                node_type=str(node["Node Type"]),
                schema=node.get("Schema") or schemas.get(table),
                table=table,
                columns=tuple(columns),
                estimated_rows=estimated,
                actual_rows=actual,
            )
            key = (miss.schema, miss.table, miss.columns)
            if key not in found or miss.factor > found[key].factor:
                found[key] = miss
    return sorted(found.values(), key=lambda miss: (-miss.factor, miss.table, miss.columns))


def columns_correlated(correlation: Correlation) -> bool:
    """The columns go together enough for a statistics object to change the estimate."""
    return (
        correlation.dependency >= MIN_DEPENDENCY
        or correlation.combination_share <= MAX_COMBINATION_SHARE
    )


def statistics_kinds(correlation: Correlation) -> tuple[StatisticsKind, ...]:
    """The kinds to create: an MCV list only where it can hold every combination. With
    more combinations than it keeps, the planner estimates the clauses from the MCV list
    and its remainder as if independent, and skips the dependencies (measured: 2,000
    zip/city pairs estimated at 1 row with mcv, 199 of 200 without)."""
    kinds = (StatisticsKind.DEPENDENCIES, StatisticsKind.NDISTINCT)
    if correlation.combinations <= correlation.mcv_entries:
        kinds += (StatisticsKind.MCV,)
    return kinds


def proof_helps(proof: StatisticsProof) -> bool:
    """The statistics object brought the estimate close and did not slow the query."""
    before = rows_factor(proof.estimated_before, proof.actual_before)
    after = rows_factor(proof.estimated_after, proof.actual_after)
    return (
        after <= FIXED_ESTIMATE_FACTOR
        and after < before
        and (
            proof.ms_after <= proof.ms_before * MAX_SLOWDOWN
            or proof.ms_after - proof.ms_before <= MAX_SLOWDOWN_MS
        )
    )


def _node_columns(node: dict) -> dict[str, set[str]]:
    """Table -> the columns the node's own conditions name. A scan's unqualified columns
    (and those qualified by its alias) are its table's; a join's are qualified by the
    aliases of the scans under it."""
    aliases = {
        child.get("Alias", child["Relation Name"]): child["Relation Name"]
        for child in plan_nodes(node)
        if child.get("Relation Name")
    }
    own = node.get("Relation Name")
    own_alias = node.get("Alias", own)
    columns: dict[str, set[str]] = defaultdict(set)
    for key in CONDITION_KEYS:
        for fields in _column_refs(node.get(key)):
            if len(fields) == 1 and own:
                columns[own].add(fields[0])
            elif len(fields) >= 2 and fields[-2] == own_alias and own:
                columns[own].add(fields[-1])
            elif len(fields) >= 2 and node.get("Node Type") in JOIN_NODES:
                table = aliases.get(fields[-2])
                if table:
                    columns[table].add(fields[-1])
    return columns


def _column_refs(condition: object) -> list[tuple[str, ...]]:
    """The column references of a plan condition, as name tuples; none when it does not
    parse as an expression (a hashed SubPlan)."""
    if not isinstance(condition, str):
        return []
    try:
        statement = parse_sql("SELECT WHERE " + condition)
    except ParseError:
        return []
    return [
        tuple(field.sval for field in ref.fields if isinstance(field, ast.String))
        for ref in find_nodes(statement, ast.ColumnRef)
    ]


def used_columns(analysis: QueryAnalysis) -> dict[str, set[str]]:
    """Table name -> the columns the query filters or joins it on."""
    used: dict[str, set[str]] = defaultdict(set)
    for scope in analysis.scopes:
        uses = [p.column for p in scope.predicates]
        uses += [side for join in scope.joins for side in (join.left, join.right)]
        for use in uses:
            for table in _tables_of(use):
                used[table].add(use.column)
    return used


def _tables_of(use: ColumnUse) -> set[str]:
    if use.relation is not None:
        return {use.relation.name}
    return {relation.name for level in use.candidates for relation in level}


def _schemas(analysis: QueryAnalysis) -> dict[str, str]:
    """Table name -> the schema the query names it with, where it names one."""
    named: dict[str, set[str]] = defaultdict(set)
    for scope in analysis.scopes:
        for relation in scope.relations:
            if relation.schema:
                named[relation.name].add(relation.schema)
    return {table: schemas.pop() for table, schemas in named.items() if len(schemas) == 1}
