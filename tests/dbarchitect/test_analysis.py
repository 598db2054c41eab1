"""What the parser-based analysis reads out of normalized queries (no database needed)."""

from dbarchitect import analysis as an

ORDERS = an.Relation(None, "orders")
ITEMS = an.Relation(None, "items")
CUSTOMERS = an.Relation("shop", "customers")


def predicates(analysis, scope=0):
    return {
        (p.column.relation.name if p.column.relation else None, p.column.column, p.kind)
        for p in analysis.scopes[scope].predicates
    }


def test_filters_get_their_kind_and_aliases_resolve_to_tables():
    analysis = an.analyze_query(
        "SELECT o.id FROM orders o WHERE o.status = $1 AND o.total > $2 AND o.kind IN ($3, $4) "
        "AND o.code LIKE $5 AND o.deleted_at IS NULL AND o.shipped_at IS NOT NULL "
        "AND o.tags @> $6 AND o.id = ANY($7) AND o.day BETWEEN $8 AND $9"
    )
    assert analysis.ok and analysis.is_select
    assert analysis.relations == [ORDERS]
    assert predicates(analysis) == {
        ("orders", "status", an.FilterKind.EQ),
        ("orders", "total", an.FilterKind.RANGE),
        ("orders", "kind", an.FilterKind.IN),
        ("orders", "code", an.FilterKind.LIKE),
        ("orders", "deleted_at", an.FilterKind.IS_NULL),
        ("orders", "shipped_at", an.FilterKind.IS_NOT_NULL),
        ("orders", "tags", an.FilterKind.CONTAINS),
        ("orders", "id", an.FilterKind.IN),
        ("orders", "day", an.FilterKind.RANGE),
    }
    assert analysis.max_param == 9


def test_a_leading_wildcard_is_a_substring_search_not_a_like_prefix():
    analysis = an.analyze_query("SELECT 1 FROM orders WHERE code LIKE '%x' AND name LIKE 'ab%'")
    kinds = {p.column.column: (p.kind, p.value) for p in analysis.scopes[0].predicates}
    assert kinds == {"name": (an.FilterKind.LIKE, "ab%"), "code": (an.FilterKind.SUBSTRING, "%x")}


def test_an_expression_over_several_columns_of_one_table_is_kept_with_its_text():
    analysis = an.analyze_query(
        "SELECT 1 FROM posts p JOIN users u ON u.id = p.user_id "
        "WHERE COALESCE(p.archived_at, p.created_at) > $1 AND p.score + u.karma > 10"
    )
    [predicate] = analysis.scopes[0].predicates
    assert predicate.kind == an.FilterKind.COLUMNS_EXPRESSION
    assert predicate.expression == "COALESCE(archived_at, created_at)"
    assert predicate.column.relation == an.Relation(None, "posts")


def test_min_or_max_of_one_column_reads_as_its_sort_under_limit_1():
    def sorts(query):
        return [
            (s.order_by[0].column.column, s.order_by[0].descending, s.limit)
            for s in an.analyze_query(query).scopes
            if s.order_by
        ]

    assert sorts("SELECT max(day) FROM t WHERE k = $1") == [("day", True, 1)]
    assert sorts("SELECT min(day), max(day) FROM t") == [("day", False, 1)]
    # Other aggregates, other columns or groups: the planner scans the whole table anyway.
    for query in (
        "SELECT count(*), max(day) FROM t",
        "SELECT max(day), min(k) FROM t",
        "SELECT k, max(day) FROM t GROUP BY k",
    ):
        assert sorts(query) == [], query


def test_a_pattern_pg_stat_statements_built_around_the_value_is_a_substring_search():
    # '%' || $1 || '%' was normalized to $2 || $1 || $3: the constants are numbered after
    # the statement's own parameter, so the $2 leading the pattern was one.
    analysis = an.analyze_query(
        "SELECT 1 FROM t WHERE a ILIKE $2 || $1 || $3 AND b LIKE $4 || $5 AND c LIKE $6"
    )
    kinds = {p.column.column: p.kind for p in analysis.scopes[0].predicates}
    assert kinds == {"a": an.FilterKind.SUBSTRING, "b": an.FilterKind.LIKE, "c": an.FilterKind.LIKE}
    assert analysis.params[1].kind == an.FilterKind.SUBSTRING
    assert {analysis.params[2].kind, analysis.params[3].kind} == {an.FilterKind.WILDCARD}


def test_function_wrapped_columns_keep_the_expression_without_qualifiers():
    analysis = an.analyze_query(
        "SELECT 1 FROM shop.customers c WHERE lower(c.email) = $1 AND c.created::date = $2"
    )
    found = {(p.column.relation, p.expression) for p in analysis.scopes[0].predicates}
    assert found == {(CUSTOMERS, "lower(email)"), (CUSTOMERS, "CAST(created AS date)")}


def test_unqualified_columns_keep_the_tables_they_could_belong_to():
    analysis = an.analyze_query("SELECT 1 FROM orders JOIN items USING (order_id) WHERE sku = $1")
    [predicate] = analysis.scopes[0].predicates
    assert predicate.column.relation is None
    assert predicate.column.candidates == ((ORDERS, ITEMS),)
    [join] = analysis.scopes[0].joins
    assert {join.left.column, join.right.column} == {"order_id"}


def test_join_keys_order_by_with_direction_group_by_limit_and_offset():
    analysis = an.analyze_query(
        "SELECT o.customer_id, count(*) FROM orders o JOIN items i ON i.order_id = o.id "
        "WHERE o.region = $1 GROUP BY o.customer_id "
        "ORDER BY o.customer_id DESC NULLS LAST, 2 LIMIT $2 OFFSET $3"
    )
    scope = analysis.scopes[0]
    [join] = scope.joins
    assert (join.left.relation, join.left.column) == (ITEMS, "order_id")
    assert (join.right.relation, join.right.column) == (ORDERS, "id")
    first, second = scope.order_by
    assert (first.column.column, first.descending, first.nulls_first) == (
        "customer_id",
        True,
        False,
    )
    assert second.column is None  # ORDER BY 2 is count(*): no column can provide it
    assert [c.column for c in scope.group_by] == ["customer_id"]
    assert (scope.limit, scope.offset) == ("param", "param")
    assert analysis.params[2].kind == "limit" and analysis.params[3].kind == "offset"


def test_subqueries_ctes_exists_in_and_union_branches_are_scopes_of_their_own():
    analysis = an.analyze_query(
        "WITH recent AS (SELECT * FROM orders WHERE created_at > $1) "
        "SELECT * FROM recent r WHERE EXISTS (SELECT 1 FROM items i WHERE i.order_id = r.id "
        "AND i.qty > $2) AND r.customer_id IN (SELECT c.id FROM shop.customers c "
        "WHERE c.segment = $3) "
        "UNION ALL SELECT * FROM orders WHERE status = $4"
    )
    kinds = [scope.kind for scope in analysis.scopes]
    assert kinds.count("cte") == 1 and kinds.count("union_branch") == 2
    assert kinds.count("subquery") == 2
    assert set(analysis.relations) == {ORDERS, ITEMS, CUSTOMERS}
    exists = next(s for s in analysis.scopes if s.relations == [ITEMS])
    assert exists.correlated is False  # r is a CTE: no table to index on the outer side
    customers = next(s for s in analysis.scopes if s.relations == [CUSTOMERS])
    assert ("customers", "segment", an.FilterKind.EQ) in {
        (p.column.relation.name, p.column.column, p.kind) for p in customers.predicates
    }


def test_correlated_subquery_records_the_join_to_the_outer_table():
    analysis = an.analyze_query(
        "SELECT o.id, (SELECT sum(i.qty) FROM items i WHERE i.order_id = o.id) FROM orders o "
        "WHERE NOT EXISTS (SELECT 1 FROM items x WHERE x.order_id = o.id AND x.qty > $1)"
    )
    inner = [s for s in analysis.scopes if s.kind == "subquery"]
    assert len(inner) == 2
    for scope in inner:
        assert scope.correlated
        [join] = scope.joins
        assert {
            (join.left.relation, join.left.column),
            (join.right.relation, join.right.column),
        } == {
            (ITEMS, "order_id"),
            (ORDERS, "id"),
        }


def test_typed_literal_parameters_keep_their_type_and_column():
    analysis = an.analyze_query(
        "SELECT 1 FROM orders WHERE created_at >= date $1 "
        "AND created_at < now() - interval $2 LIMIT $3"
    )
    assert analysis.params[1].type_name == "date"
    assert analysis.params[1].column.column == "created_at"
    # $2 is part of an expression: only its own type is known, not the column's.
    assert analysis.params[2].type_name == "interval"
    assert analysis.params[2].column is None
    assert analysis.params[3].kind == "limit"


def test_updates_and_deletes_are_analyzed_and_marked_as_writes():
    update = an.analyze_query("UPDATE orders SET status = $1 WHERE customer_id = $2")
    delete = an.analyze_query("DELETE FROM items WHERE order_id IN (SELECT id FROM orders)")
    assert update.modifies and not update.is_select
    assert predicates(update) == {(None, "customer_id", an.FilterKind.EQ)}
    assert delete.modifies and delete.relations == [ITEMS, ORDERS]


def test_the_tables_a_statement_writes_are_listed():
    insert = an.analyze_query('INSERT INTO "Shop".orders SELECT * FROM staging')
    cte = an.analyze_query(
        "WITH gone AS (DELETE FROM items WHERE order_id = $1 RETURNING *) "
        "INSERT INTO archive SELECT * FROM gone"
    )
    update = an.analyze_query("UPDATE orders SET status = $1 WHERE id = $2")
    assert insert.written == [an.Relation("Shop", "orders")]
    assert cte.written == [ITEMS, an.Relation(None, "archive")]
    assert update.written == [ORDERS]
    assert an.analyze_query("SELECT * FROM orders").written == []


def test_views_columns_are_listed_as_outputs():
    analysis = an.analyze_query("SELECT o.id, o.created_at AS day FROM orders o")
    outputs = analysis.scopes[0].outputs
    assert outputs["id"].column == "id" and outputs["day"].column == "created_at"


def test_unparseable_sql_is_an_error_not_an_exception():
    for text in ("SELEC 1", "", "SELECT 1; SELECT 2", "SELECT (", "VACUUM orders"):
        analysis = an.analyze_query(text)
        assert not analysis.ok and analysis.error, text


def test_hostile_sql_does_not_crash_the_analysis():
    texts = [
        "SELECT * FROM generate_series(1, $1) g JOIN LATERAL (SELECT g) x ON true",
        "SELECT (SELECT (SELECT (SELECT 1))) FROM orders WHERE (a, b) = ($1, $2)",
        "SELECT * FROM orders WHERE CASE WHEN a THEN b END = $1 OR x::text ~ $2",
        "SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM orders ORDER BY 1",
        "SELECT * FROM orders FOR UPDATE SKIP LOCKED",
        "VALUES ($1, $2), ($3, $4)",
        'SELECT 1 FROM "Mixed Case" AS "weird ""name""" WHERE "weird ""name""".x = $1',
        "INSERT INTO orders SELECT * FROM orders WHERE id > $1 ON CONFLICT DO NOTHING",
        "SELECT * FROM orders TABLESAMPLE SYSTEM (1) WHERE a = $1",
        "SELECT jsonb_path_query(doc, $1) FROM docs WHERE doc @? $2",
        "SELECT * FROM a NATURAL JOIN b WHERE c = ANY(ARRAY[$1, $2])",
        "SELECT * FROM t WHERE x IN (SELECT y FROM u UNION SELECT z FROM v)",
        "SELECT " + " + ".join(["$1"] * 300),
    ]
    for text in texts:
        analysis = an.analyze_query(text)
        assert analysis.ok, (text, analysis.error)
    quoted = an.analyze_query(texts[6])
    assert quoted.relations == [an.Relation(None, "Mixed Case")]
    assert quoted.scopes[0].predicates[0].column.relation == an.Relation(None, "Mixed Case")


def test_representative_values_become_quoted_literals_not_sql():
    from pgaccess.generic_plan import Typed, literal_text

    analysis = an.analyze_query(
        "SELECT id FROM orders WHERE name = $1 AND created_at > date $2 LIMIT $3"
    )
    hostile = "O'Brien'); DROP TABLE orders; --"
    text = literal_text(analysis.query, {1: hostile, 2: Typed("2024-01-01", "date"), 3: 10})
    statement = an.parse_statement(text)  # still exactly one statement
    assert statement.whereClause.args[0].rexpr.val.sval == hostile
    assert "CAST('2024-01-01' AS date)" in text or "'2024-01-01'::date" in text
    assert text.endswith("LIMIT 10")


def test_filters_on_a_derived_table_or_cte_reach_the_table_behind_them():
    analysis = an.analyze_query(
        "WITH recent AS (SELECT o.customer_id AS buyer, o.created_at FROM orders o) "
        "SELECT * FROM recent r JOIN (SELECT i.order_id, i.qty FROM items i) x "
        "ON x.order_id = r.buyer WHERE r.created_at > $1 AND x.qty = $2"
    )
    main = next(scope for scope in analysis.scopes if scope.kind == "select")
    found = {(p.column.relation, p.column.column, p.kind) for p in main.predicates}
    assert found == {(ORDERS, "created_at", an.FilterKind.RANGE), (ITEMS, "qty", an.FilterKind.EQ)}
    [join] = main.joins
    assert {(join.left.relation, join.left.column), (join.right.relation, join.right.column)} == {
        (ITEMS, "order_id"),
        (ORDERS, "customer_id"),
    }
