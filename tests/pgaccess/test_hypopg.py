"""The what-if session on real PostgreSQL with HypoPG: what it creates, owns and leaves."""

from collections.abc import Iterator

import psycopg
import pytest

from pgaccess.hypopg import WhatIfSession, used_oids
from pgaccess.targets import target_connection

ROWS = 20_000
SCHEMA = [
    "DROP TABLE IF EXISTS hy_item",
    "CREATE TABLE hy_item (id bigint PRIMARY KEY, kind text NOT NULL, owner_id bigint NOT NULL)",
    f"""INSERT INTO hy_item SELECT g, CASE WHEN g % 100 = 0 THEN 'rare' ELSE 'common' END,
        g % 500 FROM generate_series(1, {ROWS}) AS g""",
    "ANALYZE hy_item",
]
BY_OWNER = "CREATE INDEX ON public.hy_item USING btree (owner_id)"
RARE_BY_OWNER = "CREATE INDEX ON public.hy_item USING btree (owner_id) WHERE kind = 'rare'"
STAND_IN = "CREATE INDEX ON public.hy_item USING btree (kind, owner_id)"
LOOKUP = "EXPLAIN (FORMAT JSON) SELECT id FROM hy_item WHERE owner_id = 7"


@pytest.fixture(scope="module")
def conn(django_db_setup, django_db_blocker) -> Iterator[psycopg.Connection]:
    with django_db_blocker.unblock():
        conninfo = target_connection("default").conninfo
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        yield conn
        conn.execute("SELECT hypopg_reset()")
        conn.execute("DROP TABLE hy_item")


def hypothetical_oids(conn: psycopg.Connection) -> set[int]:
    return {row[0] for row in conn.execute("SELECT indexrelid FROM hypopg_list_indexes")}


def plan(conn: psycopg.Connection) -> dict:
    return conn.execute(LOOKUP).fetchone()[0][0]["Plan"]


def test_an_index_is_created_with_its_size_and_the_plan_names_its_key(conn):
    with WhatIfSession[str](conn) as session:
        index = session.create("by owner", BY_OWNER)
        assert index is not None and index.size_bytes > 8192
        assert hypothetical_oids(conn) == {index.oid}
        (used,) = used_oids(plan(conn))
        assert session.owner(used) == "by owner"
        assert session.create("by owner", BY_OWNER) == index  # once per key
    assert hypothetical_oids(conn) == set()


def test_a_stand_in_belongs_to_its_index_and_can_be_left_out_for_one_plan(conn):
    with WhatIfSession[str](conn) as session:
        partial = session.create("rare", RARE_BY_OWNER, [STAND_IN])
        assert partial is not None
        (stand_in,) = session.stand_ins()
        assert session.owner(stand_in) == "rare" and session.stand_ins()[stand_in] == "rare"
        assert hypothetical_oids(conn) == {partial.oid, stand_in}
        with session.stand_ins_dropped([stand_in]):
            assert hypothetical_oids(conn) == {partial.oid}
            assert session.stand_ins() == {}
        (again,) = session.stand_ins()
        assert hypothetical_oids(conn) == {partial.oid, again}
        assert session.owner(again) == "rare"
        session.drop("rare")
        assert hypothetical_oids(conn) == set() and session.held() == []


def test_a_refused_index_leaves_nothing_and_is_not_tried_again(conn):
    with WhatIfSession[str](conn) as session:
        good = session.create("good", BY_OWNER)
        # The index is fine, its stand-in names no column: the pair is refused whole.
        assert session.create("bad", RARE_BY_OWNER, ["CREATE INDEX ON hy_item (nosuch)"]) is None
        assert hypothetical_oids(conn) == {good.oid}
        assert session.held() == ["good"]
        assert session.create("bad", RARE_BY_OWNER) is None  # remembered as refused


def test_reset_leaves_no_hypothetical_index_even_from_outside_the_session(conn):
    conn.execute("SELECT hypopg_create_index(%s)", [BY_OWNER])
    with WhatIfSession[str](conn) as session:
        assert hypothetical_oids(conn) == set()  # the session starts clean
        session.create("a", BY_OWNER)
        session.create("b", RARE_BY_OWNER, [STAND_IN])
        assert len(hypothetical_oids(conn)) == 3
        session.reset()
        assert hypothetical_oids(conn) == set() and session.held() == []
        assert used_oids(plan(conn)) == set()
