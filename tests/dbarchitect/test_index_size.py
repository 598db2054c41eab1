"""The B-tree size estimate against the size PostgreSQL really builds."""

import pytest
from django.db import connection

from dbarchitect.index_size import btree_bytes, btree_deduplicates

ROWS = 300_000


@pytest.fixture
def sized_table(db):
    """A table whose columns span unique to seven values, in types that deduplicate or not."""
    with connection.cursor() as cur:
        cur.execute(
            f"""CREATE TABLE sized AS
                SELECT g AS id, g % 100 AS low, 'v' || (g % 10000) AS mid,
                       date '2020-01-01' + (g % 2500) AS day,
                       (g % 500)::numeric(10, 2) AS price, md5(g::text) AS hash, g % 7 AS tiny
                FROM generate_series(1, {ROWS}) AS g"""
        )
        cur.execute("ANALYZE sized")
        yield cur


def _estimate(cur, columns: tuple[str, ...], include: tuple[str, ...] = ()) -> int:
    cur.execute(
        """SELECT s.attname, s.avg_width, s.n_distinct, format_type(a.atttypid, a.atttypmod)
           FROM pg_stats AS s
           JOIN pg_attribute AS a ON a.attrelid = 'sized'::regclass AND a.attname = s.attname
           WHERE s.tablename = 'sized'"""
    )
    stats = {name: (width, kind) for name, width, _, kind in cur.fetchall()}
    # The formula under test, not ANALYZE's sampled n_distinct: the exact number of keys.
    cur.execute(f"SELECT count(DISTINCT ({', '.join(columns)}, true)) FROM sized")
    distinct = cur.fetchone()[0]
    return btree_bytes(
        rows=ROWS,
        key_width=sum(stats[column][0] for column in columns),
        include_width=sum(stats[column][0] for column in include),
        distinct=distinct,
        deduplicate=btree_deduplicates(
            [stats[column][1] for column in columns], has_include=bool(include)
        ),
    )


def _built(cur, columns: tuple[str, ...], include: tuple[str, ...] = ()) -> int:
    clause = f" INCLUDE ({', '.join(include)})" if include else ""
    cur.execute(f"CREATE INDEX sized_idx ON sized ({', '.join(columns)}){clause}")
    cur.execute("SELECT pg_relation_size('sized_idx')")
    size = cur.fetchone()[0]
    cur.execute("DROP INDEX sized_idx")
    return size


@pytest.mark.parametrize(
    ("columns", "include"),
    [
        (("id",), ()),  # unique: nothing to merge
        (("low",), ()),  # 100 values: posting lists
        (("mid",), ()),  # 10,000 text values
        (("day",), ()),
        (("price",), ()),  # numeric does not deduplicate
        (("hash",), ()),  # wide and unique
        (("tiny", "mid"), ()),  # two columns, 70,000 combinations
        (("low",), ("hash",)),  # INCLUDE never deduplicates
    ],
)
def test_btree_estimate_is_within_ten_percent_of_the_built_size(sized_table, columns, include):
    estimate = _estimate(sized_table, columns, include)
    built = _built(sized_table, columns, include)
    assert 0.9 <= estimate / built <= 1.1, (columns, include, estimate, built)


def test_a_low_cardinality_key_is_a_fraction_of_one_tuple_per_row():
    unique = btree_bytes(rows=1_000_000, key_width=4, distinct=1_000_000)
    merged = btree_bytes(rows=1_000_000, key_width=4, distinct=100)
    assert merged < unique / 2.5


@pytest.mark.parametrize(
    ("types", "has_include", "expected"),
    [
        (["integer", "date"], False, True),
        (["text"], False, True),
        (["numeric(10,2)"], False, False),
        (["jsonb"], False, False),
        (["double precision"], False, False),
        (["integer[]"], False, False),
        (["tstzrange"], False, False),
        (["integer"], True, False),
    ],
)
def test_which_keys_deduplicate(types, has_include, expected):
    assert btree_deduplicates(types, has_include=has_include) is expected
