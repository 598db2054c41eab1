"""EXPLAIN (FORMAT JSON): running it, reading its document, walking its plan."""

import json
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from .marker import cursor


def explain_document(value: Any) -> dict:
    """The top object of an EXPLAIN (FORMAT JSON) result ({"Plan": ..., "Execution Time"...}),
    whether the driver handed it over parsed or as text."""
    if isinstance(value, str):
        value = json.loads(value)
    return value[0]


def explain_analyze(conn: psycopg.Connection, text: str) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of `text`: it runs. The document's top object."""
    with cursor(conn) as cur:
        cur.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}").format(sql.SQL(text)))
        return explain_document(cur.fetchone()[0])


def plan_nodes(plan: dict) -> Iterator[dict]:
    """Every node of a plan (a document's top object or a plan node), depth first."""
    stack = [plan.get("Plan", plan)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.get("Plans", [])))
