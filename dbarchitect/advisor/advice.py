"""What the advisor returns, and what it reads of its input."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from .. import analysis as an


class AdvisorError(Exception):
    """The target cannot be advised on at all; the message says what to do."""


class QueryLike(Protocol):
    """What advise reads of a collector.QueryStat."""

    queryid: int
    query: str
    calls: int


class WorkloadLike(QueryLike, Protocol):
    """A statement of the audit window with the rows it returned or wrote (QueryStat)."""

    rows: int


class SkipReason(StrEnum):
    """Why a query was not costed (the message says it in a DBA's words)."""

    UNPARSED = "unparsed"  # the parser could not read it, or it is no query to plan
    AMBIGUOUS_NAME = "ambiguous_name"  # a table name several schemas hold
    NO_SELECT_PRIVILEGE = "no_select_privilege"  # EXPLAIN needs SELECT on its tables
    NOT_PLANNED = "not_planned"  # the planner refused every form of it


@dataclass(frozen=True)
class SkippedQuery:
    queryid: int
    query: str
    reason: str
    kind: SkipReason = SkipReason.NOT_PLANNED


class HintKind(StrEnum):
    OFFSET_PAGINATION = "offset_pagination"
    FUNCTION_ON_COLUMN = "function_on_column"
    TEXT_SEARCH_CONFIG = "text_search_config"
    HIDDEN_CONSTANT = "hidden_constant"
    COLUMNS_EXPRESSION = "columns_expression"
    NOT_DISTINCT = "not_distinct"
    ILIKE = "ilike"
    SUBSTRING = "substring"


@dataclass(frozen=True)
class RewriteHint:
    queryid: int
    query: str
    kind: HintKind
    message: str


@dataclass
class IndexRecommendation:
    schema: str
    table: str
    name: str
    columns: list[str]
    method: str
    where: str | None
    ddl: str
    fingerprint: str
    queryids: list[int]
    cost_before: float
    cost_after: float
    per_query: dict[int, tuple[float, float]]
    size_bytes: int  # HypoPG's estimate (hypopg_relation_size)
    needs_real_build: bool
    plan_before: dict | None
    plan_after: dict | None
    # Its size as a PostgreSQL 13+ build lays it out (deduplication): what a budget spends
    # by default, and what verification can check against the built index.
    built_size_bytes: int | None = None
    # queryid -> the statement with values in place that was costed, where the advisor
    # costed one (a LIKE prefix, a rare value): the verifier measures the same case.
    statements: dict[int, str] = field(default_factory=dict)
    # On a partitioned table: PostgreSQL cannot build the index CONCURRENTLY there.
    partitioned: bool = False
    # The text search configuration written into a to_tsvector key: pg_stat_statements hid
    # the query's own, so the index serves the query only if the application uses this one.
    assumed_text_search_config: str | None = None

    @property
    def cost_reduction(self) -> float:
        if self.cost_before <= 0:
            return 0.0
        return 1.0 - self.cost_after / self.cost_before


@dataclass(frozen=True)
class BudgetUse:
    """The storage budget the set was chosen under, and how much of it the set takes."""

    budget: str  # as the DBA wrote it, in words: "10% of the audited tables", "no limit"
    budget_bytes: int | None  # None: no limit
    used_bytes: int
    size_estimate: str  # which size is counted: "built" or "hypopg" (sizes.SizeEstimate)
    tables_bytes: int | None = None  # the audited tables' heap size, for a share


@dataclass(frozen=True)
class FrontierStep:
    """One point of the cost-vs-size curve: the set chosen under a budget and the
    workload's estimated cost with it, relative to today's (the report's JSON keys)."""

    budget_bytes: int
    indexes: list[str]  # each chosen index's DDL
    relative_cost: float


@dataclass
class Advice:
    recommendations: list[IndexRecommendation] = field(default_factory=list)
    rewrites: list[RewriteHint] = field(default_factory=list)
    skipped: list[SkippedQuery] = field(default_factory=list)
    query_costs: dict[int, float] = field(default_factory=dict)
    analyses: dict[int, an.QueryAnalysis] = field(default_factory=dict)
    budget: BudgetUse | None = None
    frontier: list[FrontierStep] = field(default_factory=list)
