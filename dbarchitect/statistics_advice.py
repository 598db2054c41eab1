"""Extended statistics, proposed and proved: the `statistics` recommendation kind.

Where verification is on, each slow SELECT whose filters name two or more columns of one
table is run once under EXPLAIN ANALYZE with its representative values. A scan or join
whose row estimate is MIN_ESTIMATE_FACTOR off on such columns (extended_stats), on columns
a sample shows correlated and no statistics object covers yet, gets one proved: created,
its columns ANALYZEd, the query re-planned and re-timed, all rolled back. Only what brings
the estimate close without slowing the query is recommended.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from pgaccess.catalog import catalog_tables
from pgaccess.column_statistics import (
    Correlation,
    StatisticsProof,
    StatisticsProofRefused,
    columns_correlation,
    rows_factor,
    statistics_existing,
    statistics_prove,
)
from pgaccess.explain import explain_analyze
from pgaccess.statistics_ddl import StatisticsSpec, statistics_spec_parse

from . import analysis as an
from .advisor import QueryLike, representative_statements
from .extended_stats import (
    EstimateMiss,
    columns_correlated,
    estimate_misses,
    proof_helps,
    statistics_kinds,
    used_columns,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatisticsRecommendation:
    spec: StatisticsSpec
    queryids: tuple[int, ...]  # the queries whose plans showed the miss, the proved first
    statement: str  # the proved query with its values in place
    miss: EstimateMiss
    correlation: Correlation
    proof: StatisticsProof

    @property
    def fingerprint(self) -> str:
        spec = self.spec
        return f"statistics:{spec.schema}.{spec.table}({','.join(spec.columns)})"

    @property
    def factor_before(self) -> float:
        return rows_factor(self.proof.estimated_before, self.proof.actual_before)

    @property
    def factor_after(self) -> float:
        return rows_factor(self.proof.estimated_after, self.proof.actual_after)


@dataclass(frozen=True)
class NotProposed:
    """A miss that got no recommendation, and why (for the report)."""

    table: str
    columns: tuple[str, ...]
    reason: str


@dataclass
class StatisticsAdvice:
    recommendations: list[StatisticsRecommendation] = field(default_factory=list)
    not_proposed: list[NotProposed] = field(default_factory=list)
    queries_run: int = 0  # EXPLAIN ANALYZE runs looking for misses


def statistics_advise(conn: psycopg.Connection, queries: Sequence[QueryLike]) -> StatisticsAdvice:
    """The statistics objects that measurably fix a plan's estimate of `queries`."""
    advice = StatisticsAdvice()
    analyses = {q.queryid: an.analyze_query(q.query) for q in queries}
    # Only a SELECT that filters one table on two or more columns can show such a miss;
    # a timed-out query would only time out again.
    wanted = [
        q
        for q in queries
        if not getattr(q, "timeouts", 0)
        and analyses[q.queryid].ok
        and analyses[q.queryid].is_select
        and any(len(columns) >= 2 for columns in used_columns(analyses[q.queryid]).values())
    ]
    if not wanted:
        return advice
    statements = representative_statements(conn, wanted)
    found: dict[tuple, tuple[EstimateMiss, str, list[int]]] = {}
    for query in wanted:
        statement = statements.get(query.queryid)
        if statement is None or statement.text is None or not statement.is_select:
            continue
        try:
            with conn.transaction(force_rollback=True):
                plan = explain_analyze(conn, statement.text)
        except psycopg.Error as exc:
            logger.info("statistics: query %s not run: %s", query.queryid, exc)
            continue
        advice.queries_run += 1
        for miss in estimate_misses(plan, analyses[query.queryid]):
            key = (miss.schema, miss.table, miss.columns)
            if key in found:
                found[key][2].append(query.queryid)
            else:
                found[key] = (miss, statement.text, [query.queryid])
    for miss, text, queryids in found.values():
        outcome = _statistics_prove(conn, miss, text, queryids)
        if isinstance(outcome, NotProposed):
            advice.not_proposed.append(outcome)
        else:
            advice.recommendations.append(outcome)
    return advice


def _statistics_prove(
    conn: psycopg.Connection, miss: EstimateMiss, text: str, queryids: list[int]
) -> StatisticsRecommendation | NotProposed:
    """Correlated, not covered yet, and proved to help: the recommendation; else why not."""

    def refused(reason: str) -> NotProposed:
        return NotProposed(table=miss.table, columns=miss.columns, reason=reason)

    schema = miss.schema or _schema_of(conn, miss.table)
    if schema is None:
        return refused("the table is not found on the search_path")
    where = {"schema": schema, "table": miss.table, "columns": miss.columns}
    existing = statistics_existing(conn, **where)
    if existing:
        return refused(f"statistics {existing[0].name} already cover these columns")
    correlation = columns_correlation(conn, **where)
    if not columns_correlated(correlation):
        return refused(
            f"the columns are independent in a sample (dependency {correlation.dependency:.2f}, "
            f"{correlation.combination_share:.0%} of the combinations): no statistics help"
        )
    try:
        proof = statistics_prove(conn, **where, kinds=statistics_kinds(correlation), query=text)
    except (StatisticsProofRefused, psycopg.Error) as exc:
        return refused(f"not proved: {str(exc).strip()}")
    if not proof_helps(proof):
        return refused(
            f"proved not to help: estimate {proof.estimated_before:,.0f} -> "
            f"{proof.estimated_after:,.0f} rows of {proof.actual_after:,.0f}, "
            f"{proof.ms_before:.2f} -> {proof.ms_after:.2f} ms"
        )
    return StatisticsRecommendation(
        spec=statistics_spec_parse(proof.ddl),
        queryids=tuple(queryids),
        statement=text,
        miss=miss,
        correlation=correlation,
        proof=proof,
    )


def _schema_of(conn: psycopg.Connection, table: str) -> str | None:
    info = catalog_tables(conn, [an.Relation(None, table)]).get(an.Relation(None, table))
    return info.schema if info is not None else None
