"""Candidate generation from a query's analysis and a catalog written out as data.

No database: the tables, columns, indexes and statistics are the catalog's dataclasses,
filled by hand the way pgaccess.catalog fills them from pg_class and pg_stats.
"""

from dataclasses import dataclass

import pytest

from dbarchitect import analysis as an
from dbarchitect import candidates as cd
from dbarchitect.advisor.facts import Catalog
from dbarchitect.candidates import Candidate, IndexKey
from pgaccess.catalog import ColumnInfo, ColumnStats, IndexInfo, TableInfo

ROWS = 100_000


def column(name: str, type_name: str, base: str, category: str, collation=None) -> ColumnInfo:
    return ColumnInfo(name, type_name, base, category, collation)


def table(oid: int, name: str, columns: list[ColumnInfo], rows: float = ROWS, indexes=()):
    return TableInfo(
        oid=oid,
        schema="public",
        name=name,
        kind="r",
        rows=rows,
        pages=int(rows / 50),
        writes=0,
        view_definition=None,
        columns={c.name: c for c in columns},
        indexes=list(indexes),
    )


def stats(n_distinct: float, common=(), freqs=(), null_frac: float = 0.0) -> ColumnStats:
    return ColumnStats(null_frac, n_distinct, tuple(common), tuple(freqs), ())


ORDERS = table(
    1,
    "orders",
    [
        column("id", "bigint", "int8", "N"),
        column("account_id", "bigint", "int8", "N"),
        column("status", "text", "text", "S", "en_US.utf8"),
        column("created_at", "timestamp with time zone", "timestamptz", "D"),
        column("shipped_at", "timestamp with time zone", "timestamptz", "D"),
        column("email", "character varying(200)", "varchar", "S", "en_US.utf8"),
        column("body", "text", "text", "S", "en_US.utf8"),
        column("payload", "jsonb", "jsonb", "U"),
        column("tags", "text[]", "_text", "A"),
    ],
    indexes=[
        IndexInfo("orders_pkey", "btree", ("id",), (False,), ("int8_ops",), None, True, True, 1)
    ],
)
ACCOUNTS = table(
    2,
    "accounts",
    [column("id", "bigint", "int8", "N"), column("region", "text", "text", "S", "C")],
)
TINY = table(3, "tiny", [column("code", "text", "text", "S", "C")], rows=50)
STATS = {
    ("public", "orders", "account_id"): stats(1000),
    ("public", "orders", "created_at"): stats(-1),
    ("public", "orders", "status"): stats(
        4, ["paid", "shipped", "pending", "refunded"], [0.6, 0.3, 0.09, 0.01]
    ),
    ("public", "orders", "shipped_at"): stats(-0.9, null_frac=0.02),
    ("public", "accounts", "region"): stats(20),
}


@dataclass(frozen=True)
class Context:
    """What candidates.py reads (CandidateContext), over a hand-written catalog."""

    catalog: Catalog
    trigram: bool = True
    text_search_config: str = "english"

    @property
    def by_oid(self):
        return self.catalog.by_oid

    def resolve(self, use):
        return self.catalog.resolve(use)

    def column_stats(self, info, column):
        return self.catalog.column_stats(info, column)


def context(*tables: TableInfo, trigram: bool = True) -> Context:
    catalog = Catalog({an.Relation(None, t.name): t for t in tables}, {}, STATS)
    return Context(catalog, trigram=trigram)


def candidates(query: str, ctx: Context | None = None, min_rows: int = 10_000) -> set[Candidate]:
    analysis = an.analyze_query(query)
    assert analysis.ok, analysis.error
    return cd.candidates_for(
        ctx or context(ORDERS, ACCOUNTS, TINY), analysis, min_table_rows=min_rows
    )


def btree(*keys: IndexKey | str, where: str | None = None, oid: int = 1) -> Candidate:
    return Candidate(
        oid, tuple(IndexKey(k) if isinstance(k, str) else k for k in keys), "btree", where
    )


def plain_partials(found: set[Candidate]) -> list[Candidate]:
    """The partial candidates without INCLUDE columns (their covering forms are others)."""
    return [c for c in found if c.where is not None and not c.include]


def keys_of(found: set[Candidate]) -> set[tuple[str, ...]]:
    return {tuple(k.text for k in c.keys) for c in found if c.where is None}


def test_equality_columns_lead_and_one_range_follows():
    found = candidates("SELECT id FROM orders WHERE created_at > $1 AND account_id = $2")
    assert ("account_id", "created_at") in keys_of(found)
    assert ("created_at", "account_id") not in keys_of(found)
    assert {("account_id",), ("created_at",)} <= keys_of(found)  # each on its own too


def test_the_sort_follows_the_equality_columns_in_its_direction():
    found = candidates(
        "SELECT id FROM orders WHERE account_id = $1 ORDER BY created_at DESC LIMIT $2"
    )
    sort = IndexKey("created_at", descending=True, sort=True)
    assert btree("account_id", sort) in found
    (composite,) = [c for c in found if len(c.keys) == 2]
    assert composite.keys[1].descending and composite.keys[1].sort


def test_mixed_sort_directions_are_kept_key_by_key():
    found = candidates("SELECT id FROM orders ORDER BY account_id, created_at DESC LIMIT 10")
    assert (
        btree(IndexKey("account_id", sort=True), IndexKey("created_at", descending=True, sort=True))
        in found
    )


def test_a_rare_value_gets_a_partial_index_and_a_common_one_does_not():
    rare = candidates("SELECT id FROM orders WHERE status = 'refunded' ORDER BY created_at LIMIT 5")
    partial = plain_partials(rare)
    assert [(c.where, c.where_column, c.where_share) for c in partial] == [
        ("status = 'refunded'", "status", 0.01)
    ]
    assert [k.text for k in partial[0].keys] == ["created_at"]
    common = candidates("SELECT id FROM orders WHERE status = 'paid' ORDER BY created_at LIMIT 5")
    assert all(c.where is None for c in common)


def test_a_rare_null_gets_a_partial_index_on_the_range_column():
    found = candidates("SELECT id FROM orders WHERE shipped_at IS NULL AND created_at < $1")
    (partial,) = plain_partials(found)
    assert partial.where == "shipped_at IS NULL"
    assert [k.text for k in partial.keys] == ["created_at"]


def test_a_partial_candidates_stand_in_leads_with_its_predicate_column():
    found = candidates(
        "SELECT id FROM orders WHERE status = 'refunded' ORDER BY created_at LIMIT 5"
    )
    (partial,) = plain_partials(found)
    twin = cd.costing_stand_in(partial)
    assert twin.where is None and [k.text for k in twin.keys] == ["status", "created_at"]
    plain = btree("account_id")
    assert cd.costing_stand_in(plain) is plain


def test_a_function_wrapped_filter_gets_an_expression_key():
    found = candidates("SELECT id FROM orders WHERE lower(email) = $1")
    assert btree(IndexKey("lower(email)", expression=True)) in found


def test_a_like_prefix_under_a_non_c_collation_gets_the_pattern_operator_class():
    found = candidates("SELECT id FROM orders WHERE email LIKE 'abc%'")
    assert btree(IndexKey("email", opclass="varchar_pattern_ops")) in found
    c_collation = candidates("SELECT id FROM accounts WHERE region LIKE 'eu%'")
    assert btree("region", oid=2) in c_collation


@pytest.mark.parametrize(
    ("predicate", "opclass"),
    [("payload @> $1", "jsonb_path_ops"), ("payload ? $1", None), ("tags && $1", None)],
)
def test_containment_gets_a_gin_with_the_narrowest_operator_class_it_may(predicate, opclass):
    found = candidates(f"SELECT id FROM orders WHERE {predicate}")
    column = predicate.split()[0]
    assert Candidate(1, (IndexKey(column, opclass=opclass),), "gin") in found


def test_a_substring_search_gets_a_trigram_gin_only_where_pg_trgm_is_installed():
    query = "SELECT id FROM orders WHERE body LIKE '%late%'"
    trigram = Candidate(1, (IndexKey("body", opclass=cd.TRIGRAM_OPCLASS),), "gin")
    assert trigram in candidates(query)
    assert candidates(query, context(ORDERS, trigram=False)) == set()


def test_full_text_search_gets_an_expression_gin_with_the_configuration_written_in():
    found = candidates("SELECT id FROM orders WHERE to_tsvector($1, body) @@ plainto_tsquery($2)")
    (gin,) = [c for c in found if c.method == "gin"]
    assert gin.keys[0].expression and "english" in gin.keys[0].text
    assert gin.keys[0].text.startswith("to_tsvector(")


def test_the_join_key_is_a_candidate_on_the_inner_side():
    found = candidates(
        "SELECT o.id FROM accounts a JOIN orders o ON o.account_id = a.id WHERE a.region = $1"
    )
    assert btree("account_id") in found
    assert btree("region", oid=2) in found


def test_a_table_below_the_row_threshold_and_a_system_catalog_get_nothing():
    assert candidates("SELECT code FROM tiny WHERE code = $1") == set()
    catalog = table(4, "pg_class", [column("relname", "name", "name", "S", "C")])
    catalog.schema = "pg_catalog"
    assert candidates("SELECT relname FROM pg_class WHERE relname = $1", context(catalog)) == set()
    # The threshold is the audit's: lower it and the small table is a candidate too.
    assert candidates("SELECT code FROM tiny WHERE code = $1", min_rows=10) == {
        btree("code", oid=3)
    }


def test_an_existing_index_that_leads_with_the_keys_covers_the_candidate():
    existing = IndexInfo(
        "orders_account_created",
        "btree",
        ("account_id", "created_at"),
        (False, True),
        ("int8_ops", "timestamptz_ops"),
        None,
        False,
        True,
        1,
    )
    info = table(1, "orders", list(ORDERS.columns.values()), indexes=[existing])
    assert cd.is_covered(btree("account_id"), info)
    assert cd.is_covered(
        btree("account_id", IndexKey("created_at", descending=True, sort=True)), info
    )
    # Every sort key reversed reads the index backwards; one of two reversed does not.
    assert cd.is_covered(
        btree(
            IndexKey("account_id", descending=True, sort=True), IndexKey("created_at", sort=True)
        ),
        info,
    )
    assert not cd.is_covered(btree("created_at"), info)
    assert not cd.is_covered(btree("account_id", where="status = 'refunded'"), info)
    invalid = table(1, "orders", [], indexes=[IndexInfo(**{**existing.__dict__, "valid": False})])
    assert not cd.is_covered(btree("account_id"), invalid)


def test_interesting_keys_are_every_column_the_query_filters_joins_or_sorts_on():
    analysis = an.analyze_query(
        "SELECT o.id FROM accounts a JOIN orders o ON o.account_id = a.id "
        "WHERE a.region = $1 AND o.status = 'refunded' ORDER BY o.created_at LIMIT 10"
    )
    keys = cd.interesting_keys(context(ORDERS, ACCOUNTS), analysis, min_table_rows=10_000)
    assert keys == {1: {"account_id", "status", "created_at"}, 2: {"region", "id"}}


def test_an_index_is_written_named_and_fingerprinted_as_verification_builds_it():
    candidate = btree(
        "account_id", IndexKey("created_at", descending=True), where="status = 'refunded'"
    )
    statement = cd.index_statement(ORDERS, candidate, name="orders_idx").as_string(None)
    assert statement == (
        'CREATE INDEX "orders_idx" ON "public"."orders" USING btree ("account_id", '
        "\"created_at\" DESC) WHERE status = 'refunded'"
    )
    identity = cd.fingerprint(ORDERS, candidate)
    assert (
        identity
        == "index:btree:public.orders(account_id,created_at DESC) WHERE status = 'refunded'"
    )
    assert (
        cd.index_name(ORDERS, candidate, identity, set())
        == "orders_account_id_created_at_partial_idx"
    )
    # A name already taken, or longer than PostgreSQL's 63 bytes, gets a stable hash.
    taken = cd.index_name(ORDERS, candidate, identity, {"orders_account_id_created_at_partial_idx"})
    assert taken != "orders_account_id_created_at_partial_idx" and len(taken) <= 63
    assert taken == cd.index_name(
        ORDERS, candidate, identity, {"orders_account_id_created_at_partial_idx"}
    )
    wide = btree(*(f"column_with_a_long_name_{i}" for i in range(4)))
    long_name = cd.index_name(ORDERS, wide, cd.fingerprint(ORDERS, wide), set())
    assert len(long_name.encode()) <= 63


def test_a_rare_null_aggregate_gets_the_covering_partial_form_with_what_it_reads():
    found = candidates(
        "SELECT sum(account_id) FROM orders WHERE shipped_at IS NULL AND created_at < $1"
    )
    (covering,) = [c for c in found if c.include]
    assert covering.where == "shipped_at IS NULL"
    assert [k.text for k in covering.keys] == ["created_at"]
    assert covering.include == ("account_id",)
    ddl = cd.index_statement(ORDERS, covering).as_string(None)
    assert ddl.endswith('("created_at") INCLUDE ("account_id") WHERE shipped_at IS NULL')
    assert cd.fingerprint(ORDERS, covering).endswith(
        "(created_at) INCLUDE (account_id) WHERE shipped_at IS NULL"
    )
    # Not for a join, nor for SELECT * (which an index-only scan cannot serve).
    assert not any(c.include for c in candidates("SELECT * FROM orders WHERE shipped_at IS NULL"))
    joined = candidates(
        "SELECT sum(o.account_id) FROM orders o JOIN accounts a ON a.id = o.account_id "
        "WHERE o.shipped_at IS NULL AND o.created_at < $1"
    )
    assert not any(c.include for c in joined)


def test_a_wide_candidates_narrower_variants_are_its_prefixes_and_its_form_without_include():
    wide = Candidate(1, (IndexKey("a"), IndexKey("b"), IndexKey("c")), include=("x",))
    variants = cd.narrower_variants(wide)
    assert variants == {
        btree("a"),
        btree("a", "b"),
        Candidate(1, (IndexKey("a"), IndexKey("b"), IndexKey("c"))),
    }
    assert cd.narrower_variants(btree("a")) == set()
    assert cd.narrower_variants(Candidate(1, (IndexKey("tags"),), "gin")) == set()
