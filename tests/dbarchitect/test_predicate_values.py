"""The advisor's questions to pg_qualstats, answered from what a real server sampled."""

import pytest

from dbarchitect.predicate_values import costing_values, partial_index_value, values_selective
from pgaccess.qualstats import QualStat, qualstats_read, qualstats_status
from tests.pgaccess.servers import qualstats_server

ROWS = 20_000
TABLE = [
    """CREATE TABLE ticket (
        id int PRIMARY KEY, status text NOT NULL, kind text NOT NULL, urgent bool NOT NULL)""",
    # 1 % open, kinds half and half, 2 % urgent.
    f"""INSERT INTO ticket
        SELECT g, CASE WHEN g % 100 = 0 THEN 'open' ELSE 'closed' END,
               CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, g % 50 = 0
        FROM generate_series(1, {ROWS}) AS g""",
    "ANALYZE ticket",
]
# (query, the values it runs with): each query its own queryid.
WORKLOAD = {
    "SELECT count(*) FROM ticket WHERE status = %s": ["open"] * 19 + ["closed"],
    "SELECT id FROM ticket WHERE status = %s": ["closed"] * 5,
    "SELECT count(*) FROM ticket WHERE kind = %s": ["a", "b"] * 3,
    "SELECT count(*) FROM ticket WHERE kind = %s AND id > 0": ["a"] * 3 + ["x" * 100],
}
# pg_qualstats sees a boolean only as IS TRUE / IS FALSE (flag = true becomes plain flag).
FLAGS = ["SELECT count(*) FROM ticket WHERE urgent IS TRUE"] * 5 + [
    "SELECT id FROM ticket WHERE urgent IS FALSE"
] * 5


@pytest.fixture(scope="module")
def quals() -> dict[tuple[str, str], QualStat]:
    """(query text as pg_stat_statements shows it, column) -> its QualStat."""
    with qualstats_server(TABLE) as (_, conn):
        for query, values in WORKLOAD.items():
            for value in values:
                conn.execute(query, [value])
        for query in FLAGS:
            conn.execute(query)
        texts = dict(conn.execute("SELECT queryid, query FROM pg_stat_statements").fetchall())
        found = qualstats_read(conn, status=qualstats_status(conn))
    return {(texts[qual.queryid], qual.column): qual for qual in found if qual.queryid in texts}


def test_a_predicate_always_run_with_a_rare_value_gets_that_value_for_a_partial_index(quals):
    rare = quals["SELECT count(*) FROM ticket WHERE status = $1", "status"]
    assert partial_index_value(rare).value == "'open'::text"
    assert values_selective(rare) is True
    # The same column queried for its common value: neither a partial index nor any index.
    common = quals["SELECT id FROM ticket WHERE status = $1", "status"]
    assert partial_index_value(common) is None and values_selective(common) is False


def test_a_flag_queried_for_its_rare_value_is_selective_and_for_its_common_one_not(quals):
    rare = quals["SELECT count(*) FROM ticket WHERE urgent IS TRUE", "urgent"]
    assert partial_index_value(rare).value == "TRUE::bool" and values_selective(rare) is True
    common = quals["SELECT id FROM ticket WHERE urgent IS FALSE", "urgent"]
    assert partial_index_value(common) is None and values_selective(common) is False


def test_costing_uses_the_values_used_with_their_share(quals):
    halves = quals["SELECT count(*) FROM ticket WHERE kind = $1", "kind"]
    assert costing_values(halves) == [("'a'::text", 0.5), ("'b'::text", 0.5)]
    assert values_selective(halves) is False and partial_index_value(halves) is None
    # A value pg_qualstats cut is not a value to run; the shares stay those of all uses.
    cut = quals["SELECT count(*) FROM ticket WHERE kind = $1 AND id > $2", "kind"]
    assert costing_values(cut) == [("'a'::text", 0.75)]
    assert costing_values(
        quals["SELECT count(*) FROM ticket WHERE status = $1", "status"], limit=1
    ) == [("'open'::text", 0.95)]
