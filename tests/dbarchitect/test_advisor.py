"""The advisor on a real PostgreSQL with HypoPG: each index kind for the query that needs it,
nothing for what is already served or too small, every query costed or skipped with why."""

import psycopg
import pytest

from dbarchitect.advisor import AdvisorError, advise

from .advisor_fixtures import (  # noqa: F401 - the fixtures are used by name
    EXISTING_INDEXES,
    advisor_db_fixture,
    collected,
    conn_fixture,
    leftovers,
    stat,
)

MIN_TABLE_ROWS = 10_000
MIN_COST_REDUCTION = 0.5


def advise_queries(conn, *queries, calls=100):
    stats = [stat(number, query, calls) for number, query in enumerate(queries, start=1)]
    return advise(conn, stats, min_table_rows=MIN_TABLE_ROWS, min_cost_reduction=MIN_COST_REDUCTION)


def only(advice, table="adv_orders"):
    found = [rec for rec in advice.recommendations if rec.table == table]
    assert len(found) == 1, [rec.ddl for rec in advice.recommendations]
    return found[0]


def test_recent_rows_of_one_account_get_a_composite_in_the_sort_direction(conn):
    # An index on account_id exists; it does not provide the order, so it does not count.
    advice = advise_queries(
        conn,
        "SELECT id, status, created_at FROM adv_orders WHERE account_id = $1 "
        "ORDER BY created_at DESC LIMIT $2",
    )
    rec = only(advice)
    assert rec.columns == ['"account_id"', '"created_at" DESC']
    assert rec.method == "btree" and rec.where is None
    assert rec.queryids == [1]
    assert rec.ddl == (
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{rec.name}" ON "public"."adv_orders" '
        'USING btree ("account_id", "created_at" DESC)'
    )
    assert rec.cost_reduction >= MIN_COST_REDUCTION
    assert rec.per_query[1][1] < rec.per_query[1][0]
    assert rec.plan_before["Node Type"] and rec.plan_after is not None
    assert advice.skipped == []


def test_mixed_sort_directions_are_kept_in_the_key(conn):
    advice = advise_queries(
        conn,
        "SELECT id FROM adv_orders WHERE tenant_id = $1 ORDER BY kind ASC, created_at DESC "
        "LIMIT $2",
    )
    rec = only(advice)
    assert rec.columns == ['"tenant_id"', '"kind"', '"created_at" DESC']


def test_equality_then_range_makes_a_composite(conn):
    advice = advise_queries(
        conn, "SELECT count(*) FROM adv_orders WHERE region = $1 AND score BETWEEN $2 AND $3"
    )
    rec = only(advice)
    assert rec.columns == ['"region"', '"score"']


def test_function_wrapped_filter_gets_an_expression_index(conn):
    advice = advise_queries(conn, "SELECT id FROM adv_orders WHERE lower(email) = $1")
    rec = only(advice)
    assert rec.columns == ["(lower(email))"]
    assert "((lower(email)))" in rec.ddl


@pytest.mark.parametrize(
    ("column", "opclass"), [("email", "text_pattern_ops"), ("code", "varchar_pattern_ops")]
)
def test_like_prefix_gets_the_pattern_operator_class_under_a_non_c_collation(conn, column, opclass):
    collation = conn.execute(
        "SELECT datcollate FROM pg_database WHERE datname = current_database()"
    ).fetchone()[0]
    advice = advise_queries(conn, f"SELECT id FROM adv_orders WHERE {column} LIKE $1")
    rec = only(advice)
    if collation in ("C", "POSIX"):
        assert rec.columns == [f'"{column}"']
    else:
        assert rec.columns == [f'"{column}" {opclass}']


def test_rare_null_gets_a_partial_index(conn):
    advice = advise_queries(
        conn, "SELECT id FROM adv_orders WHERE shipped_at IS NULL ORDER BY created_at LIMIT $1"
    )
    rec = only(advice)
    assert rec.where == "shipped_at IS NULL"
    assert rec.columns == ['"created_at"']
    assert rec.ddl.endswith("WHERE shipped_at IS NULL")


def test_rare_value_in_a_view_gets_a_partial_index(conn):
    # The view's WHERE status = 'pending' keeps its constant (1% of rows); the query's own
    # filter and sort on the view's columns are carried into the view's SELECT.
    advice = advise_queries(
        conn,
        "SELECT id FROM adv_pending_orders WHERE account_id = $1 ORDER BY created_at DESC",
    )
    rec = only(advice)
    assert rec.where == "status = 'pending'"
    assert rec.columns[0] == '"account_id"'


def test_jsonb_containment_gets_a_gin_index_to_prove_by_a_real_build(conn):
    advice = advise_queries(conn, "SELECT id FROM adv_orders WHERE meta @> $1")
    rec = only(advice)
    assert rec.method == "gin"
    assert rec.columns == ['"meta" jsonb_path_ops']
    assert rec.needs_real_build is True
    assert rec.cost_after < rec.cost_before


def test_array_overlap_gets_a_gin_index(conn):
    advice = advise_queries(conn, "SELECT id FROM adv_orders WHERE tags && $1")
    rec = only(advice)
    assert rec.method == "gin" and rec.columns == ['"tags"']


def test_decision_support_query_gets_the_join_key_on_the_inner_side(conn):
    # Joins, a correlated scalar sub-select and a correlated EXISTS on an unindexed key.
    advice = advise_queries(
        conn,
        "SELECT o.id, o.created_at, c.segment, "
        "(SELECT sum(l.quantity) FROM adv_lineitems l WHERE l.order_id = o.id) AS quantity "
        "FROM adv_orders o JOIN adv_customers c ON c.id = o.customer_id "
        "WHERE c.id = $1 AND EXISTS (SELECT 1 FROM adv_lineitems l2 "
        "WHERE l2.order_id = o.id AND l2.price > $2) ORDER BY o.created_at DESC",
    )
    rec = only(advice, "adv_lineitems")
    assert rec.columns[0] == '"order_id"'
    assert rec.cost_reduction >= MIN_COST_REDUCTION


def test_one_composite_serving_two_queries_beats_one_index_each(conn):
    advice = advise_queries(
        conn,
        "SELECT * FROM adv_orders WHERE tenant_id = $1 AND kind = $2 "
        "ORDER BY created_at DESC LIMIT $3",
        "SELECT count(*) FROM adv_orders WHERE kind = $1 AND tenant_id = $2",
    )
    rec = only(advice)
    assert rec.columns == ['"tenant_id"', '"kind"', '"created_at" DESC']
    assert sorted(rec.queryids) == [1, 2]


def test_query_already_served_by_an_index_gets_nothing(conn):
    advice = advise_queries(
        conn,
        "SELECT * FROM adv_orders WHERE id = $1",
        "SELECT id FROM adv_orders WHERE customer_id = $1",
    )
    assert advice.recommendations == []
    assert set(advice.query_costs) == {1, 2}


def test_tiny_table_gets_nothing(conn):
    advice = advise_queries(conn, "SELECT id FROM adv_tiny WHERE code = $1")
    assert advice.recommendations == []
    assert 1 in advice.query_costs


def test_system_catalogs_get_nothing(conn):
    advice = advise_queries(
        conn, "SELECT relname FROM pg_class WHERE relname = $1 AND relnamespace = $2"
    )
    assert advice.recommendations == []


def test_normalized_texts_that_prepare_rejects_are_still_costed(conn):
    stats = collected(
        conn,
        [
            "SELECT count(*) FROM adv_orders WHERE created_at >= date '2024-03-01' "
            "AND created_at < date '2024-03-01' + interval '2 days' AND region = 3",
            "SELECT id FROM adv_orders WHERE account_id = 5 ORDER BY created_at DESC LIMIT 7",
            "SELECT id, 1 + 2 AS three FROM adv_orders WHERE score = 42",
            "SELECT id FROM adv_orders WHERE tenant_id IN (1, 2, 3) AND kind = 4",
        ],
    )
    texts = {s.query for s in stats}
    typed = next(s for s in stats if "date $" in s.query)
    assert "interval $" in typed.query
    # A plain PREPARE cannot take it.
    with pytest.raises(psycopg.errors.SyntaxError), conn.transaction(force_rollback=True):
        conn.execute(f"PREPARE plain AS {typed.query}")
    assert any("LIMIT $" in text for text in texts)
    advice = advise(
        conn, stats, min_table_rows=MIN_TABLE_ROWS, min_cost_reduction=MIN_COST_REDUCTION
    )
    assert advice.skipped == []
    assert set(advice.query_costs) == {s.queryid for s in stats}
    assert all(cost > 0 for cost in advice.query_costs.values())


def test_ambiguous_parameters_are_typed_from_their_columns_or_given_values(conn):
    advice = advise_queries(
        conn,
        "SELECT $1 + $2 AS total FROM adv_orders WHERE score > $3",
        "SELECT id FROM adv_orders WHERE $1 IS NULL OR score = $2",
        "SELECT id FROM adv_orders WHERE created_at > now() - $1::interval LIMIT $2",
    )
    assert advice.skipped == []
    assert set(advice.query_costs) == {1, 2, 3}


def test_unparseable_and_uncostable_queries_are_skipped_with_the_reason(conn):
    advice = advise_queries(
        conn,
        "SELEC id FROM adv_orders",
        "SELECT id FROM adv_no_such_table WHERE id = $1",
        "SELECT id FROM adv_orders WHERE account_id = $1 ORDER BY created_at DESC LIMIT $2",
    )
    reasons = {s.queryid: s.reason for s in advice.skipped}
    assert set(reasons) == {1, 2}
    assert reasons[1].startswith("syntax error")
    assert "adv_no_such_table" in reasons[2] and "does not exist" in reasons[2]
    assert 3 in advice.query_costs and advice.recommendations


def test_rewrites_point_out_offset_pagination_and_functions_on_indexed_columns(conn):
    advice = advise_queries(
        conn,
        "SELECT id FROM adv_orders ORDER BY id LIMIT $1 OFFSET $2",
        # date() of a timestamptz is not immutable: no expression index can take it, so
        # the hint is the only help; the advisor must not trip over the refused index.
        "SELECT id FROM adv_orders WHERE date(created_at) = $1",
        "SELECT id FROM adv_orders WHERE email ILIKE $1",
    )
    kinds = {(hint.queryid, hint.kind) for hint in advice.rewrites}
    assert kinds == {(1, "offset_pagination"), (2, "function_on_column"), (3, "ilike")}
    hint = next(h for h in advice.rewrites if h.kind == "function_on_column")
    assert "date(created_at)" in hint.message and "adv_orders.created_at" in hint.message
    assert advice.skipped == []


def test_advise_leaves_no_hypothetical_or_real_index_and_no_open_transaction(conn):
    advise_queries(
        conn,
        "SELECT id FROM adv_orders WHERE account_id = $1 ORDER BY created_at DESC LIMIT $2",
        "SELECT id FROM adv_orders WHERE meta @> $1",
        "SELEC broken",
    )
    hypothetical, real = leftovers(conn)
    assert hypothetical == []
    assert real == EXISTING_INDEXES
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
    assert prepared == 0


def test_a_target_without_hypopg_gets_a_clear_error(conn):
    with conn.transaction(force_rollback=True):
        conn.execute("DROP EXTENSION hypopg")
        with pytest.raises(AdvisorError, match="CREATE EXTENSION hypopg"):
            advise_queries(conn, "SELECT id FROM adv_orders WHERE score = $1")


def test_every_query_is_costed_or_skipped_even_hostile_ones(conn):
    many = ", ".join(f"${n}" for n in range(1, 401))
    queries = [
        "SET work_mem = $1",
        "BEGIN",
        "SELECT $1",
        "SELECT $1 IS NULL",
        "SELECT pg_sleep($1)",
        "COPY adv_orders TO STDOUT",
        "CREATE TEMP TABLE adv_scratch (a int)",
        f"SELECT id FROM adv_orders WHERE id IN ({many})",
        "WITH RECURSIVE r(n) AS (SELECT $1::int UNION ALL SELECT n + $2 FROM r WHERE n < $3) "
        "SELECT count(*) FROM r JOIN adv_orders o ON o.account_id = r.n",
        "SELECT o.id, x.q FROM adv_orders o, LATERAL (SELECT sum(quantity) AS q "
        "FROM adv_lineitems l WHERE l.order_id = o.id) x WHERE o.score = $1",
        "SELECT * FROM adv_orders WHERE (account_id, kind) IN (SELECT $1, $2) FOR UPDATE",
        "SELECT count(*) FILTER (WHERE status = $1) OVER (PARTITION BY region) FROM adv_orders",
        "SELECT 'it''s %s' || $1 FROM adv_tiny WHERE code LIKE $2 || '%'",
        'SELECT "id" FROM "public"."adv_orders" WHERE "adv_orders"."email" = $1',
        "DELETE FROM adv_tiny WHERE code = $1 RETURNING id",
        "SELECT * FROM adv_orders WHERE created_at > now() - $1 * interval '1 day'",
    ]
    advice = advise_queries(conn, *queries)
    costed = set(advice.query_costs)
    skipped = {s.queryid for s in advice.skipped}
    assert costed | skipped == set(range(1, len(queries) + 1))
    assert not costed & skipped
    assert all(s.reason for s in advice.skipped)
    # Utility statements are not plans; everything that is a query got costed.
    assert skipped == {1, 2, 6, 7}, [(s.queryid, s.reason) for s in advice.skipped]
    hypothetical, real = leftovers(conn)
    assert hypothetical == [] and real == EXISTING_INDEXES
    assert conn.execute("SELECT count(*) FROM adv_tiny").fetchone()[0] == 100


def test_index_names_never_reuse_an_existing_relation_name(conn):
    # CREATE INDEX ... IF NOT EXISTS would silently build nothing under a taken name.
    conn.execute("CREATE TABLE adv_orders_region_score_idx (a int)")
    try:
        advice = advise_queries(
            conn, "SELECT count(*) FROM adv_orders WHERE region = $1 AND score BETWEEN $2 AND $3"
        )
    finally:
        conn.execute("DROP TABLE adv_orders_region_score_idx")
    rec = only(advice)
    assert rec.name.startswith("adv_orders_region_score_")
    assert rec.name != "adv_orders_region_score_idx" and len(rec.name) <= 63
    assert f'"{rec.name}"' in rec.ddl


def test_a_skewed_column_is_costed_at_a_rare_value_not_the_average(conn):
    # status is 97% 'done': the generic plan prices "status = $1" at a third of the rows and
    # walks the created_at index backwards; for 'pending' (1%) that walk is the slow case.
    advice = advise_queries(
        conn,
        "SELECT id, created_at FROM adv_orders WHERE status = $1 ORDER BY created_at DESC LIMIT $2",
    )
    rec = only(advice)
    assert rec.columns == ['"status"', '"created_at" DESC']
    assert "status = 'pending'" in rec.statements[1]
