"""The advisor on real PostgreSQL under a storage budget: width that does not pay is left
out, a budget smaller than the best index still gets the best set that fits, the covering
partial form of a rare-row aggregate, and `run_audit --budget` with the frontier."""

import json
from collections.abc import Iterator
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command

from dbarchitect.advisor import advise
from dbarchitect.advisor.sizes import SizeEstimate
from dbarchitect.budget import IndexBudget, budget_parse
from dbarchitect.checks import check_settings
from pgaccess.catalog import catalog_heap_bytes
from pgaccess.explain import explain_analyze, plan_nodes
from pgaccess.targets import target_connection

from .advisor_fixtures import MIN_COST_REDUCTION, MIN_TABLE_ROWS, collected
from .conftest import pgss_reset_own_database, recent_logs
from .schema_db import SchemaDatabase, schema_database

ROWS = 300_000
SCHEMA = [
    "DROP TABLE IF EXISTS bud_events, bud_invoices CASCADE",
    # account_id and kind together pick one or two rows; region then filters none out.
    """CREATE TABLE bud_events (
        id int PRIMARY KEY,
        account_id int NOT NULL,
        kind int NOT NULL,
        region int NOT NULL,
        email text NOT NULL,
        note text NOT NULL
    )""",
    f"""INSERT INTO bud_events
        SELECT g, g % 30011, g % 10, (g % 30011) % 3, 'user' || g || '@example.com',
               repeat('x', 40)
        FROM generate_series(1, {ROWS}) AS g""",
    # One invoice in a hundred is unpaid (paid_at IS NULL): the rare side of the filter.
    """CREATE TABLE bud_invoices (
        id int PRIMARY KEY,
        customer_id int NOT NULL,
        due_date date NOT NULL,
        amount numeric(12, 2) NOT NULL,
        paid_at timestamptz,
        memo text NOT NULL
    )""",
    f"""INSERT INTO bud_invoices
        SELECT g, g % 5000, date '2020-01-01' + ((g::bigint * 7919) % 1500)::int, (g % 1000) / 7.0,
               CASE WHEN g % 100 = 0 THEN NULL ELSE timestamptz '2024-01-01' END,
               repeat('m', 60)
        FROM generate_series(1, {ROWS}) AS g""",
    # VACUUM sets the visibility map: an index-only scan is what the planner then costs.
    "VACUUM ANALYZE bud_events, bud_invoices",
]
TEARDOWN = ["DROP TABLE IF EXISTS bud_events, bud_invoices CASCADE"]
UNPAID = (
    "SELECT sum(amount) FROM bud_invoices WHERE paid_at IS NULL AND due_date < %s",
    ["2023-06-01"],
)


@pytest.fixture(scope="module", name="budget_db")
def budget_db_fixture(django_db_setup, django_db_blocker) -> Iterator[SchemaDatabase]:
    with django_db_blocker.unblock():
        conninfo = target_connection("default").conninfo
    yield from schema_database(conninfo, SCHEMA, TEARDOWN)


@pytest.fixture(name="conn")
def conn_fixture(budget_db) -> Iterator[psycopg.Connection]:
    with budget_db.connect() as connection:
        yield connection


NO_BUDGET = IndexBudget()


def advised(conn, statements, *, budget=NO_BUDGET, times=5):
    stats = collected(conn, [s for s in statements for _ in range(times)], fragment="bud_")
    return advise(
        conn,
        stats,
        min_table_rows=MIN_TABLE_ROWS,
        min_cost_reduction=MIN_COST_REDUCTION,
        budget=budget,
    )


def test_a_third_key_column_that_filters_nothing_is_left_out(conn):
    """(account_id, kind) finds the one or two rows; region adds bytes, not speed."""
    query = (
        "SELECT id, note FROM bud_events WHERE account_id = %s AND kind = %s AND region = %s",
        [77, 7, 2],
    )
    advice = advised(conn, [query])

    (rec,) = [r for r in advice.recommendations if r.table == "bud_events"]
    assert rec.columns in (['"account_id"', '"kind"'], ['"account_id"']), rec.ddl
    assert "region" not in rec.ddl
    assert rec.cost_after <= rec.cost_before * 0.1  # it still serves the query
    assert rec.built_size_bytes and rec.built_size_bytes <= rec.size_bytes


def test_a_budget_smaller_than_the_best_index_gets_the_best_set_that_fits(conn):
    """The email lookup's index is the best single one but does not fit; the small partial
    index for the unpaid invoices does, and is what the budget buys."""
    email = ("SELECT id FROM bud_events WHERE email = %s", ["user123@example.com"])
    unconstrained = advised(conn, [email, UNPAID])
    sizes = {r.table: r.built_size_bytes for r in unconstrained.recommendations}
    assert set(sizes) == {"bud_events", "bud_invoices"}, [
        r.ddl for r in unconstrained.recommendations
    ]
    assert sizes["bud_events"] > 4 * sizes["bud_invoices"]

    budget = (sizes["bud_events"] + sizes["bud_invoices"]) // 2
    advice = advised(conn, [email, UNPAID], budget=IndexBudget(limit_bytes=budget))

    assert [r.table for r in advice.recommendations] == ["bud_invoices"]
    assert advice.budget.budget_bytes == budget
    assert 0 < advice.budget.used_bytes <= budget
    # The frontier ends at the unconstrained set, and never rises.
    costs = [p.relative_cost for p in advice.frontier]
    assert costs == sorted(costs, reverse=True) and costs[-1] < 0.5
    assert len(advice.frontier[-1].indexes) == 2


def buffers(conn: psycopg.Connection, query: str) -> tuple[int, str]:
    """Pages the query touches, and the scan it runs, executed for real."""
    root = explain_analyze(conn, query)["Plan"]
    scan = next(n for n in plan_nodes(root) if n.get("Relation Name") == "bud_invoices")
    pages = root.get("Shared Hit Blocks", 0) + root.get("Shared Read Blocks", 0)
    return pages, scan["Node Type"]


def test_the_rare_unpaid_sum_gets_a_covering_partial_index_and_reads_fewer_pages(conn):
    # A table VACUUMed since its last writes is all-visible, as a settled one is; only then
    # does the planner cost an index-only scan (no snapshot of this test holds it back).
    conn.execute("VACUUM bud_invoices")
    visible = conn.execute(
        "SELECT relallvisible >= relpages FROM pg_class WHERE relname = 'bud_invoices'"
    ).fetchone()
    assert visible == (True,)
    advice = advised(conn, [UNPAID])

    (rec,) = advice.recommendations
    assert rec.where == "paid_at IS NULL" and rec.columns == ['"due_date"'], rec.ddl
    assert 'INCLUDE ("amount")' in rec.ddl
    literal = (
        "SELECT sum(amount) FROM bud_invoices WHERE paid_at IS NULL AND due_date < '2023-06-01'"
    )
    plain = "CREATE INDEX bud_plain ON bud_invoices (due_date) WHERE paid_at IS NULL"
    with conn.transaction(force_rollback=True):
        conn.execute(plain)
        plain_pages, plain_scan = buffers(conn, literal)
        conn.execute("DROP INDEX bud_plain")
        conn.execute(rec.ddl.replace(" CONCURRENTLY", ""))
        covering_pages, covering_scan = buffers(conn, literal)
    assert covering_scan == "Index Only Scan"
    assert plain_scan != "Index Only Scan"
    # The heap pages of every unpaid row are no longer read: far less work, measured.
    assert covering_pages * 5 < plain_pages, (covering_pages, plain_pages)


@pytest.mark.django_db(transaction=True)
def test_run_audit_budget_end_to_end_reports_the_budget_and_the_frontier(
    pipeline_workload, workload_conn
):
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 20)
    out = StringIO()
    call_command("run_audit", "--json", "--no-verify", "--budget", "64MB", stdout=out)
    report = json.loads(out.getvalue())

    assert report["status"] == "succeeded"
    assert report["budget"]["budget_bytes"] == 64 * 1024**2
    assert report["budget"]["used_bytes"] <= 64 * 1024**2
    assert report["budget"]["size_estimate"] == "built"
    indexes = [r for r in report["recommendations"] if r["kind"] == "index"]
    assert indexes and all(r["built_size_bytes"] and r["index_size_bytes"] for r in indexes)
    frontier = report["frontier"]
    assert frontier and all(
        set(p) == {"budget_bytes", "indexes", "relative_cost"} for p in frontier
    )
    costs = [p["relative_cost"] for p in frontier]
    assert costs == sorted(costs, reverse=True) and costs[-1] < 1
    recent_logs(workload_conn, 20)  # the next audit collects what ran since this one
    text = StringIO()
    call_command("run_audit", "--no-verify", "--budget", "10%", stdout=text)
    assert "Index budget: 10% of the audited tables" in text.getvalue()
    assert "Frontier:" in text.getvalue()


def test_run_audit_refuses_a_budget_it_cannot_read_and_says_what_it_takes():
    with pytest.raises(CommandError, match=r"--budget: .*500MB.*10%.*none"):
        call_command("run_audit", "--budget", "plenty")


def test_a_budget_setting_that_is_no_size_is_a_check_error(settings):
    settings.DBARCHITECT_INDEX_BUDGET = "half the disk"
    [error] = [e for e in check_settings(None) if e.id == "dbarchitect.E023"]
    assert "DBARCHITECT_INDEX_BUDGET: index budget 'half the disk' is not a size" in error.msg
    settings.DBARCHITECT_INDEX_BUDGET = "10%"
    assert not [e for e in check_settings(None) if e.id == "dbarchitect.E023"]


def test_a_size_estimate_setting_that_is_neither_built_nor_hypopg_is_a_check_error(settings):
    settings.DBARCHITECT_INDEX_SIZE_ESTIMATE = "guess"
    [error] = [e for e in check_settings(None) if e.id == "dbarchitect.E024"]
    assert error.msg == "DBARCHITECT_INDEX_SIZE_ESTIMATE='guess' is not built or hypopg"


def test_sizes_are_spent_as_built_by_default_and_as_hypopg_estimates_them_on_request(conn):
    email = ("SELECT id FROM bud_events WHERE email = %s", ["user123@example.com"])
    built = advised(conn, [email, UNPAID])
    assert built.budget.size_estimate == "built"
    assert built.budget.used_bytes == sum(r.built_size_bytes for r in built.recommendations)
    stats = collected(conn, [email, UNPAID] * 5, fragment="bud_")
    hypopg = advise(
        conn,
        stats,
        min_table_rows=MIN_TABLE_ROWS,
        min_cost_reduction=MIN_COST_REDUCTION,
        size_estimate=SizeEstimate.HYPOPG,
    )
    assert hypopg.budget.size_estimate == "hypopg"
    assert hypopg.budget.used_bytes == sum(r.size_bytes for r in hypopg.recommendations)
    # Unique emails deduplicate nothing: HypoPG's one tuple per row is about right there.
    (events,) = [r for r in hypopg.recommendations if r.table == "bud_events"]
    assert 0.8 < events.built_size_bytes / events.size_bytes < 1.2


def test_a_share_budget_is_of_the_heap_of_the_tables_read_partitions_included(conn):
    conn.execute("DROP TABLE IF EXISTS bud_parted")
    conn.execute("CREATE TABLE bud_parted (id int, day int) PARTITION BY RANGE (day)")
    try:
        for low in (0, 100):
            conn.execute(
                f"CREATE TABLE bud_parted_{low} PARTITION OF bud_parted "
                f"FOR VALUES FROM ({low}) TO ({low + 100})"
            )
        conn.execute("INSERT INTO bud_parted SELECT g, g % 200 FROM generate_series(1, 50000) g")
        oids = conn.execute(
            "SELECT 'bud_parted'::regclass::oid, 'bud_events'::regclass::oid"
        ).fetchone()
        expected = conn.execute(
            "SELECT pg_table_size('bud_parted_0') + pg_table_size('bud_parted_100') "
            "+ pg_table_size('bud_events')"
        ).fetchone()[0]
        assert catalog_heap_bytes(conn, oids) == expected > 0
    finally:
        conn.execute("DROP TABLE bud_parted")
    advice = advised(conn, [UNPAID], budget=budget_parse("10%"))
    heap = conn.execute("SELECT pg_table_size('bud_invoices')").fetchone()[0]
    assert advice.budget.tables_bytes == heap
    assert advice.budget.budget_bytes == heap // 10
    assert advice.budget.budget == "10% of the audited tables"
