"""How many bytes a B-tree takes once built, as PostgreSQL 13+ stores it.

HypoPG sizes a hypothetical B-tree as one leaf tuple per row. Since PostgreSQL 13 a build
merges the duplicates of a key into posting-list tuples (deduplication), so an index on a
low-cardinality column is a fraction of that: on TPC-H a set HypoPG puts at 29.7 MiB is
7.6 MiB built. A storage budget decided on HypoPG's figure is off by up to 4x; this is the
figure a budget is spent in, and verification checks it against the built size.

The layout constants are PostgreSQL's for 8 kB pages (nbtree.h, nbtdedup.c, bufpage.h).
"""

import math

PAGE_BYTES = 8192
PAGE_HEADER = 24  # PageHeaderData
BTREE_SPECIAL = 16  # BTPageOpaqueData at the end of every B-tree page
LINE_POINTER = 4  # ItemIdData: one per tuple on the page
TUPLE_HEADER = 8  # IndexTupleData: the heap TID and the size / flags word
HEAP_TID = 6  # ItemPointerData: one per row in a posting list
MAXALIGN = 8
LEAF_FILLFACTOR = 0.90  # BTREE_DEFAULT_FILLFACTOR: how full a build packs the leaves
INTERNAL_FILLFACTOR = 0.70  # BTREE_NONLEAF_FILLFACTOR
# nbtdedup.c caps a posting-list tuple at half of BTMaxItemSize (2,704 bytes on 8 kB pages).
MAX_POSTING_TUPLE = 2704 // 2
# A posting list of n 6-byte TIDs is padded to MAXALIGN: 0, 2, 4 or 6 bytes, 3 on average.
POSTING_PADDING = 3
# Types whose B-tree operator class cannot deduplicate (PostgreSQL's documentation,
# "Deduplication"): equal values that are not bitwise equal (numeric 1.0 and 1.00,
# float -0 and 0), and container types built on them.
NOT_DEDUPLICATED_TYPES = frozenset({"numeric", "jsonb", "real", "double precision", "float4"})


def _aligned(size: float) -> int:
    return math.ceil(size / MAXALIGN) * MAXALIGN


def btree_deduplicates(type_names: list[str], *, has_include: bool) -> bool:
    """Whether a build merges duplicates: never with INCLUDE columns, nor on a key column of a
    type that cannot (numeric, jsonb, floats, arrays, ranges and composites)."""
    if has_include:
        return False
    return not any(
        base in NOT_DEDUPLICATED_TYPES or name.endswith("[]") or "range" in base
        for name in (type_name.lower().strip() for type_name in type_names)
        for base in [name.split("(")[0].strip()]  # numeric(10,2) is numeric
    )


def btree_bytes(
    *,
    rows: float,
    key_width: float,
    distinct: float,
    include_width: float = 0.0,
    deduplicate: bool = True,
) -> int:
    """The size on disk of a freshly built B-tree over `rows` entries.

    `key_width` is the average width in bytes of the key columns together (pg_stats
    avg_width), `include_width` the INCLUDE columns', `distinct` the number of distinct
    keys among the rows (a unique key: `rows`).
    """
    rows = max(float(rows), 0.0)
    distinct = min(max(float(distinct), 1.0), max(rows, 1.0))
    plain_tuple = _aligned(TUPLE_HEADER + key_width + include_width) + LINE_POINTER
    per_key = rows / distinct
    if not deduplicate or per_key < 2:
        leaf_bytes = rows * plain_tuple
    else:
        # One posting-list tuple holds the key once and a TID for each of its rows, up to
        # the cap; a key with more rows gets several.
        key_part = _aligned(TUPLE_HEADER + key_width)
        tids_per_tuple = max((MAX_POSTING_TUPLE - key_part) // HEAP_TID, 1)
        tuples = math.ceil(per_key / tids_per_tuple)
        per_distinct = tuples * (key_part + LINE_POINTER + POSTING_PADDING) + per_key * HEAP_TID
        leaf_bytes = distinct * per_distinct
    usable = PAGE_BYTES - PAGE_HEADER - BTREE_SPECIAL
    leaf_pages = max(math.ceil(leaf_bytes / (usable * LEAF_FILLFACTOR)), 1)
    # Each level above holds one downlink (a key and a TID) per page below it.
    downlinks_per_page = max(int(usable * INTERNAL_FILLFACTOR) // plain_tuple, 2)
    pages, level = leaf_pages, leaf_pages
    while level > 1:
        level = math.ceil(level / downlinks_per_page)
        pages += level
    return (pages + 1) * PAGE_BYTES  # and the metapage
