"""For verification: each query with values in place, ready to run and time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from pgaccess.generic_plan import literal_text

from .. import analysis as an
from .. import parameters
from .advice import QueryLike
from .facts import catalog_read


@dataclass(frozen=True)
class RepresentativeStatement:
    queryid: int
    text: str | None  # the query with representative literal values, ready to EXPLAIN
    is_select: bool
    error: str | None = None  # why there is no text


def representative_statements(
    conn: psycopg.Connection, queries: Sequence[QueryLike]
) -> dict[int, RepresentativeStatement]:
    """Each query with its $n replaced by values from pg_stats (or a sampled row)."""
    result: dict[int, RepresentativeStatement] = {}
    analyses = {q.queryid: an.analyze_query(q.query) for q in queries}
    for qid, analysis in analyses.items():
        if not analysis.ok:
            result[qid] = RepresentativeStatement(qid, None, False, analysis.error)
    live = [a for q, a in analyses.items() if q not in result]
    if not live:
        return result
    catalog = catalog_read(conn, live)
    for qid, analysis in analyses.items():
        if qid in result:
            continue
        try:
            values = parameters.representative_values(
                conn, analysis, catalog.resolve, catalog.stats
            )
            text = literal_text(analysis.query, values)
        except (psycopg.Error, ValueError) as exc:
            result[qid] = RepresentativeStatement(
                qid, None, False, f"no representative values: {exc}"
            )
            continue
        result[qid] = RepresentativeStatement(qid, text, analysis.is_select)
    return result
