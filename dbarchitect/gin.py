"""GIN candidates, which HypoPG cannot build: their cost and size are estimated here.

The estimate replaces the baseline plan's sequential scan of the table by a bitmap scan
over the rows a representative operand matches in a sample of the table. Verification
then proves (or disproves) it with a real build.
"""

from __future__ import annotations

import logging
import math

import psycopg
from psycopg import sql

from pgaccess.catalog import TableInfo
from pgaccess.marker import cursor
from pgaccess.session import Savepoint, savepoint
from pgaccess.values import sampled_operand

from . import analysis as an

logger = logging.getLogger(__name__)

# Rows read to measure a containment filter's selectivity (TABLESAMPLE SYSTEM, REPEATABLE so
# that two audits of the same data agree).
SELECTIVITY_SAMPLE_ROWS = 30_000


def sampled_selectivity(
    conn: psycopg.Connection, info: TableInfo, column: str, operator: str
) -> float | None:
    """The share of a sample of rows that a representative operand matches."""
    if operator not in an.GIN_OPERATORS:
        return None
    col = info.columns[column]
    try:
        operand = sampled_operand(conn, info, col, operator)
        percent = min(100.0, 100.0 * SELECTIVITY_SAMPLE_ROWS / max(info.rows, 1.0))
        query = sql.SQL(
            "SELECT count(*) FILTER (WHERE {col} {op} {operand})::float8 "
            "/ greatest(count(*), 1) FROM {table} TABLESAMPLE SYSTEM ({percent}) REPEATABLE (0)"
        ).format(
            col=sql.Identifier(column),
            op=sql.SQL(operator),
            operand=sql.Literal(operand),
            table=sql.Identifier(info.schema, info.name),
            percent=sql.Literal(percent),
        )
        with savepoint(conn, Savepoint.SAMPLE), cursor(conn) as cur:
            cur.execute(query)
            (share,) = cur.fetchone()
    except psycopg.Error as exc:
        logger.info("sampling %s.%s failed: %s", info.name, column, exc)
        return None
    return float(share)


def estimated_cost(plan: dict, info: TableInfo, rows: float | None = None) -> float | None:
    """The plan's cost with its sequential scans of `info` replaced by bitmap scans.

    The bitmap heap scan is costed the way the planner costs one: pages fetched by the
    Mackert-Lohman formula, each between random_page_cost (4) and seq_page_cost (1)
    depending on the share of the table read, plus per-row CPU and the index's own pages.
    """
    total = float(plan["Total Cost"])
    found = False
    for scan, replaced_cost in _seq_scans(plan, info.name):
        found = True
        rows = float(scan.get("Plan Rows", 0)) if rows is None else rows
        pages_total = max(info.pages, 1)
        fetched = min(2 * pages_total * rows / (2 * pages_total + rows or 1), pages_total)
        per_page = 4.0 - 3.0 * math.sqrt(fetched / pages_total) if fetched >= 2 else 4.0
        estimate = fetched * per_page + rows * 0.0125 + rows * 0.005 + 10.0
        total -= max(0.0, replaced_cost - estimate)
    return max(total, 0.0) if found else None


def _seq_scans(plan: dict, table: str):
    """(scan node with its row count made whole, cost of the subtree a bitmap scan replaces)."""
    if plan.get("Node Type") in ("Gather", "Gather Merge") and len(plan.get("Plans", ())) == 1:
        child = plan["Plans"][0]
        if child.get("Node Type") == "Seq Scan" and child.get("Relation Name") == table:
            count = int(plan.get("Workers Planned", 0))
            divisor = count + max(0.0, 1.0 - 0.3 * count)
            scan = dict(child, **{"Plan Rows": float(child.get("Plan Rows", 0)) * divisor})
            yield scan, float(plan["Total Cost"])
            return
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") == table:
        yield plan, float(plan["Total Cost"])
        return
    for child in plan.get("Plans", ()):
        yield from _seq_scans(child, table)


def estimated_size(info: TableInfo) -> int:
    # A jsonb_path_ops GIN index is typically a fraction of its table: use a third of it.
    return int(max(info.pages, 1) * 8192 / 3)
