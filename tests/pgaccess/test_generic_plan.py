"""The generic-plan ladder: the pure parts (re-printing, literals, declarations) and the walk."""

import psycopg
import pytest

from pgaccess.generic_plan import (
    CostForm,
    NotCostable,
    Typed,
    context_param_types,
    declared_types,
    literal_text,
    plan_first,
    prepared_statements_forget,
    statement_text,
)
from pgaccess.targets import database_conninfo
from pgaccess.values import array_literal, value_for_type


def test_typed_literals_become_casts_and_sql_syntax_calls_with_a_parameter_plain_calls():
    text = statement_text("SELECT EXTRACT($1 FROM ts) FROM t WHERE d > date $2 AND x = 'a'")
    assert text == "SELECT pg_catalog.extract($1, ts) FROM t WHERE d > CAST($2 AS date) AND x = 'a'"
    # Without a parameter the SQL syntax stays, in sub-selects too.
    text = statement_text("SELECT 1 FROM t WHERE x IN (SELECT EXTRACT(year FROM y) FROM u)")
    assert "EXTRACT(YEAR FROM y)" in text
    assert "pg_catalog.position(s, $1)" in statement_text("SELECT position($1 IN s) FROM t")


def test_text_that_does_not_parse_is_kept_as_written():
    assert statement_text("SELEC nothing") == "SELEC nothing"
    assert statement_text("SELECT 1; SELECT 2") == "SELECT 1; SELECT 2"


def test_values_in_place_are_quoted_by_the_printer_and_typed_ones_cast():
    text = literal_text(
        "SELECT id FROM t WHERE a = $1 AND b = $2 AND c = $3 AND d = $4 LIMIT $5",
        {1: "it's", 2: True, 3: 2.5, 4: Typed("{}", "jsonb"), 5: 10},
    )
    assert text == (
        "SELECT id FROM t WHERE a = 'it''s' AND b = 'true' AND c = 2.5 "
        "AND d = CAST('{}' AS jsonb) LIMIT 10"
    )
    assert literal_text("SELECT $1, $2", {1: [1, 2]}) == "SELECT '[1, 2]', 1"  # missing: 1
    with pytest.raises(ValueError, match="expected one statement"):
        literal_text("SELECT $1; SELECT $1", {1: 1})


def test_declared_types_and_the_forms_that_are_planned_as_written():
    assert declared_types(["bigint", "text[]"]).as_string(None) == "(bigint, text[])"
    assert declared_types([]).as_string(None) == ""
    assert CostForm("literal_rare", "SELECT 1").is_literal
    assert not CostForm("generic_typed", "SELECT $1", ("int",), 1).is_literal


def test_harmless_values_per_type_and_array_literals():
    assert value_for_type("uuid") == "00000000-0000-0000-0000-000000000000"
    assert value_for_type("integer[]") == value_for_type("_int4") == "{}"
    assert value_for_type("character varying") == "a"
    assert value_for_type(None) == 1
    assert array_literal(["a", 'b"c', None, "a"]) == '{"a","b\\"c"}'


@pytest.fixture
def conn(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), psycopg.connect(database_conninfo()) as conn:
        yield conn
        conn.rollback()


def test_the_ladder_takes_the_first_form_the_server_plans_and_keeps_every_reason(conn):
    def refused() -> CostForm:
        raise ValueError("no value for $1")

    attempts = [
        refused,
        lambda: CostForm("generic", "SELECT $1 + $2", (), 2),  # operator is ambiguous
        lambda: CostForm("generic_typed", "SELECT $1 + $2", ("int", "int"), 2),
    ]
    form, cost = plan_first(conn, attempts, server_version=conn.info.server_version)
    assert form.mode == "generic_typed" and cost.plan["Node Type"] == "Result"
    with pytest.raises(NotCostable) as caught:
        plan_first(conn, attempts[:2], server_version=150000)
    assert str(caught.value).startswith("no value for $1; generic: ")
    # The failed PREPAREs were rolled back to their savepoints: the transaction goes on.
    assert conn.execute("SELECT 1").fetchone() == (1,)
    prepared_statements_forget(conn)
    assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_a_parameter_takes_its_type_from_its_case_siblings_or_the_function_they_feed():
    types = context_param_types(
        "SELECT sum(CASE WHEN a = $1 THEN $2 ELSE $3 END), coalesce($4, 1), "
        "greatest($5, $6::date), nullif($7, 2.5), avg($8), lower($9) FROM t WHERE b = $10"
    )
    # $1 and $10 are compared with columns (the catalog types them), $9 feeds a text
    # function: left to the server; $6 is cast already.
    assert types == {
        2: "numeric",
        3: "numeric",
        4: "integer",
        5: "date",
        7: "numeric",
        8: "numeric",
    }
    # A typed branch beside a parameter wins over the aggregate around them.
    assert context_param_types("SELECT sum(CASE WHEN x THEN $1 ELSE 0 END) FROM t") == {
        1: "integer"
    }
    assert context_param_types("SELECT $1 + $2, -$3, a + $4 FROM t") == {
        1: "numeric",
        2: "numeric",
        3: "numeric",
    }
    # TPC-DS Q2: round's scale is an integer.
    assert context_param_types("SELECT round(a / b, $1), round($2) FROM t") == {
        1: "integer",
        2: "numeric",
    }
    assert context_param_types("SELEC nothing") == {}


# TPC-H Q12 and Q8 as pg_stat_statements keeps them: `THEN 1 ELSE 0` and `ELSE 0` became
# parameters, so PREPARE typed them text (sum(text) does not exist) and the literal rung
# compared a text column with the integer 1.
CASE_BRANCHES = [
    "SELECT l_shipmode, sum(CASE WHEN o_orderpriority = $1 OR o_orderpriority = $2 THEN $3 "
    "ELSE $4 END) AS high_line_count FROM gp_orders, gp_lineitem WHERE o_orderkey = l_orderkey "
    "AND l_shipmode IN ($5, $6) AND l_receiptdate >= CAST($7 AS date) GROUP BY l_shipmode",
    "SELECT o_year, sum(CASE WHEN nation = $1 THEN volume ELSE $2 END) / sum(volume) AS share "
    "FROM (SELECT extract(year FROM l_receiptdate) AS o_year, l_price * ($3 - l_discount) "
    "AS volume, o_orderpriority AS nation FROM gp_lineitem, gp_orders "
    "WHERE o_orderkey = l_orderkey) AS all_nations GROUP BY o_year",
]


@pytest.mark.parametrize(
    ("text", "modes"),
    [
        (CASE_BRANCHES[0], ("generic_typed",)),
        (CASE_BRANCHES[1], ("generic", "generic_typed")),
        # A LIKE is planned with its value first; the column is a sub-select's output the
        # catalog cannot type: the number 1 fails (text ~~ integer), '1' is typed text.
        (
            "SELECT count(*) FROM (SELECT o_orderpriority AS p FROM gp_orders) AS s "
            "WHERE p LIKE $1",
            ("literal_untyped",),
        ),
        # TPC-DS Q84: a $n in concat() (variadic "any": only a declared type will do), a
        # COALESCE with a text column, and $5 + $6.
        (
            "SELECT concat(concat(coalesce(o_orderpriority, $1), $2), $3) FROM gp_orders "
            "WHERE o_orderkey >= $4 AND o_orderkey <= $5 + $6",
            ("generic_typed",),
        ),
    ],
)
def test_parameters_nothing_declares_are_typed_from_their_context(conn, text, modes):
    from dbarchitect import analysis as an
    from dbarchitect import parameters
    from pgaccess.catalog import catalog_tables

    analysis = an.analyze_query(text)
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # as costing.what_if
        conn.execute(
            "CREATE TABLE gp_orders (o_orderkey int PRIMARY KEY, o_orderpriority text);"
            "CREATE TABLE gp_lineitem (l_orderkey int, l_shipmode text, l_receiptdate date, "
            "l_price numeric(15, 2), l_discount numeric(15, 2))"
        )
        tables = catalog_tables(conn, analysis.relations)

        def resolve(use):
            return an.column_resolve(use, tables)

        form, cost = parameters.costing_form(
            conn, analysis, resolve=resolve, stats={}, server_version=150000
        )
        assert form.mode in modes and cost.total > 0
        # The representative values plan too: the rung a value-dependent query starts at.
        values = parameters.representative_values(conn, analysis, resolve, {}, untyped=True)
        literal = CostForm("literal_untyped", literal_text(text, values))
        assert plan_first(conn, [lambda: literal], server_version=150000)[1].total > 0
