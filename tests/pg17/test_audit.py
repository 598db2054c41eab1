"""One audit end to end on PostgreSQL 17: the GENERIC_PLAN costing path, verified indexes."""

import pytest

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from tests.dbarchitect.conftest import recent_logs
from tests.dbarchitect.pgss import pgss_reset_own_database

from .conftest import TARGET, architect_statements, pg17

pytestmark = [pg17, pytest.mark.django_db(transaction=True)]


def test_an_audit_of_postgresql_17_costs_generic_plans_and_verifies_the_index(
    pg17_target, pg17_conn
):
    pgss_reset_own_database(pg17_conn)
    recent_logs(pg17_conn, 30)

    audit = run_audit(target=TARGET)

    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    index = audit.optimizations.get(kind="index", table_name="public.pl_behavior_log")
    assert index.columns[0].strip('"') == "user_id"
    assert "timestamp" in index.columns[1] and index.columns[1].endswith("DESC")
    assert index.estimated_cost_after < index.estimated_cost_before
    assert index.measured_ms_before > index.measured_ms_after > 0
    health = {(log.kind, log.details["index"]) for log in audit.optimizations.exclude(kind="index")}
    assert {
        ("drop_index", "pl_behavior_log_event_type"),
        ("drop_index", "pl_behavior_log_timestamp_dup"),
        ("invalid_index", "pl_user_created_at_uniq"),
        ("fk_index", "pl_payment_user_id_fk_idx"),
    } <= health
    # The slow query was costed by the server's own generic plan, EXPLAIN (GENERIC_PLAN):
    # never through PREPARE + EXPLAIN EXECUTE, the PostgreSQL 15 fallback.
    generic = architect_statements(pg17_conn, "EXPLAIN (GENERIC_PLAN, FORMAT JSON) SELECT")
    assert [q for q, _calls in generic if "FROM pl_behavior_log WHERE user_id = $1" in q]
    assert architect_statements(pg17_conn, "EXECUTE dbarchitect_costing_") == []
