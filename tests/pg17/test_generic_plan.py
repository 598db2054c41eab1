"""Costing on PostgreSQL 17: EXPLAIN (GENERIC_PLAN) of the normalized text itself."""

import pytest

from dbarchitect import analysis as an
from dbarchitect import parameters
from dbarchitect.analysis import column_resolve
from pgaccess import generic_plan as gp
from pgaccess.catalog import catalog_tables
from pgaccess.hypopg import used_oids
from tests.dbarchitect.conftest import RECENT_LOGS_QUERY
from tests.dbarchitect.pgss import pgss_reset_own_database

from .conftest import architect_statements, pg17

pytestmark = pg17

# RECENT_LOGS_QUERY as pg_stat_statements normalizes it: what the advisor costs.
NORMALIZED = RECENT_LOGS_QUERY.replace("%s", "$1").replace("LIMIT 100", "LIMIT $2")
COMPOSITE = "CREATE INDEX ON pl_behavior_log (user_id, timestamp DESC)"


def test_plan_cost_explains_the_generic_plan_as_often_as_the_advisor_asks(pg17_conn):
    """The advisor re-costs one query for every hypothetical index set it tries; psycopg
    prepares a statement run five times, and a prepared EXPLAIN (GENERIC_PLAN) demanded
    values for its $n: from the sixth costing on, every other one failed."""
    form = gp.CostForm("generic", NORMALIZED, (), 2)
    version = pg17_conn.info.server_version
    pgss_reset_own_database(pg17_conn)
    with pg17_conn.transaction(force_rollback=True):
        without = [gp.plan_cost(pg17_conn, form, server_version=version) for _ in range(7)]
        pg17_conn.execute("SELECT hypopg_create_index(%s)", [COMPOSITE])
        with_index = [gp.plan_cost(pg17_conn, form, server_version=version) for _ in range(3)]
        pg17_conn.execute("SELECT hypopg_reset()")

    assert len({cost.total for cost in without}) == 1
    assert used_oids(with_index[-1].plan), with_index[-1].plan  # the hypothetical one
    assert with_index[-1].total < without[0].total
    # What the server ran: the normalized statement under EXPLAIN (GENERIC_PLAN), ten times;
    # no PREPARE and EXPLAIN EXECUTE with NULLs (the PostgreSQL 15 way).
    ran = architect_statements(pg17_conn, "")
    assert ran == [(f"/* dbarchitect */ EXPLAIN (GENERIC_PLAN, FORMAT JSON) {NORMALIZED}", 10)]


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        # Typed literals and LIMIT $n: a plain PREPARE rejects or cannot type them;
        # GENERIC_PLAN plans the re-printed text as it is.
        (
            "SELECT count(*) FROM pl_behavior_log WHERE timestamp >= date $1 "
            "AND timestamp < date $1 + interval $2",
            "generic",
        ),
        (NORMALIZED, "generic"),
        # An unknown-typed $n is fine where any type will do...
        ("SELECT id FROM pl_behavior_log WHERE $1 IS NULL OR user_id = $2", "generic"),
        # ...not where the operator depends on it: arithmetic of parameters is declared
        # numeric (pgaccess.generic_plan.context_param_types).
        ("SELECT $1 + $2 AS total FROM pl_behavior_log WHERE user_id = $3", "generic_typed"),
    ],
)
def test_costing_form_starts_with_the_generic_plan_on_17(pg17_conn, text, mode):
    analysis = an.analyze_query(text)
    tables = catalog_tables(pg17_conn, analysis.relations)
    with pg17_conn.transaction(force_rollback=True):
        pg17_conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # as what_if
        form, cost = parameters.costing_form(
            pg17_conn,
            analysis,
            resolve=lambda use: column_resolve(use, tables),
            stats={},
            server_version=pg17_conn.info.server_version,
        )
    assert form.mode == mode
    assert cost.total > 0
