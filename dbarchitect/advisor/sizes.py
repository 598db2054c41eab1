"""What a candidate index is counted at against a storage budget.

By default its size as PostgreSQL 13+ builds it (index_size.py: distinct keys, posting
lists), from the columns' pg_stats widths and distinct counts; HypoPG's figure, one leaf
tuple per row, is up to 4x too big on a low-cardinality key. `SizeEstimate.HYPOPG` counts
HypoPG's figure instead, the accounting of the published index-selection benchmarks.
A key ANALYZE has not seen (an expression, a column without statistics) keeps HypoPG's.
"""

from __future__ import annotations

import math
from enum import StrEnum

from ..candidates import Candidate
from ..index_size import btree_bytes, btree_deduplicates
from .facts import TargetFacts


class SizeEstimate(StrEnum):
    BUILT = "built"  # as a build lays it out (deduplication included)
    HYPOPG = "hypopg"  # hypopg_relation_size


def index_bytes(
    facts: TargetFacts, candidate: Candidate, hypopg_bytes: int, *, estimate: SizeEstimate
) -> int:
    """The candidate's size in the chosen accounting (HypoPG's where the other is unknown)."""
    if estimate == SizeEstimate.HYPOPG:
        return hypopg_bytes
    built = built_bytes(facts, candidate)
    return hypopg_bytes if built is None else built


def built_bytes(facts: TargetFacts, candidate: Candidate) -> int | None:
    """The B-tree's size once built, or None when a key's statistics are unknown (or it
    is no B-tree)."""
    if candidate.method != "btree" or any(k.expression for k in candidate.keys):
        return None
    info = facts.by_oid[candidate.table_oid]
    include = candidate.include
    widths, distinct, types = [], 1.0, []
    rows = max(info.rows, 0.0) * candidate.where_share
    for column in [k.text for k in candidate.keys] + list(include):
        stats = facts.column_stats(info, column)
        if stats is None or stats.avg_width <= 0 or column not in info.columns:
            return None
        widths.append((column, stats.avg_width))
        if column not in include:
            types.append(info.columns[column].type_name)
            per_column = stats.n_distinct if stats.n_distinct > 0 else -stats.n_distinct * info.rows
            distinct *= max(per_column, 1.0)
    key_width = sum(w for c, w in widths if c not in include)
    return btree_bytes(
        rows=rows,
        key_width=key_width,
        distinct=min(distinct, math.ceil(rows) or 1.0),
        include_width=sum(w for c, w in widths if c in include),
        deduplicate=btree_deduplicates(types, has_include=bool(include)),
    )
