"""Every statement the architect runs on a target carries the marker, so the collector can
leave the architect's own work out of the workload: an audit (collect, advise, health,
verify) and an apply, as a role of their own, leave nothing unmarked in pg_stat_statements."""

import pytest
from pglast import ast, parse_sql
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun, Target
from optimizations.applying import recommendation_apply_start
from optimizations.models import OptimizationLog
from pgaccess.marker import MARKER

from .conftest import recent_logs
from .pgss import pgss_reset_own_database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def architect_role(pipeline_workload, workload_conn, settings):
    """A login role only the architect uses, and the test database as target `marked`
    reached as it: pg_stat_statements keys its entries on the role."""
    params = conninfo_to_dict(pipeline_workload.conninfo)
    role = f"{params['dbname']}_marked"
    workload_conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    workload_conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(role)))
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    settings.DBARCHITECT_TARGETS = f"marked=postgres://{role}@{host}:{port}/{params['dbname']}"
    settings.DBARCHITECT_VERIFY = "on"
    Target.objects.create(name="marked", allow_verify=True)
    yield role
    workload_conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _transaction_control(query: str) -> bool:
    """BEGIN, SAVEPOINT, RELEASE, ROLLBACK...: psycopg's own, sent without a cursor."""
    try:
        return all(isinstance(s.stmt, ast.TransactionStmt) for s in parse_sql(query))
    except Exception:
        return False


def test_an_audit_and_an_apply_leave_no_statement_without_the_marker(
    architect_role, workload_conn, superuser
):
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 40)  # the slow query, as the application runs it
    audit = run_audit(target="marked")
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    index = audit.optimizations.filter(kind=OptimizationLog.Kind.INDEX).first()
    assert index is not None and index.measured_ms_before is not None  # verified too
    try:
        recommendation_apply_start(recommendation=index, applied_by=superuser, in_process=True)
        index.refresh_from_db()
        assert index.status == OptimizationLog.Status.APPLIED, index.details
    finally:
        name = index.details.get("apply_job", {}).get("index")
        if name:
            drop = sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier("public", name))
            workload_conn.execute(drop)
    rows = workload_conn.execute(
        "SELECT query FROM pg_stat_statements WHERE toplevel AND userid = to_regrole(%s) "
        "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [architect_role],
    ).fetchall()
    queries = [query for (query,) in rows if not _transaction_control(query)]
    unmarked = [query for query in queries if not query.startswith(MARKER)]
    assert unmarked == []
    # It saw the whole audit: catalog reads, the generic plans, EXPLAIN ANALYZE, the build.
    for fragment in ("FROM pg_index", "EXPLAIN (FORMAT JSON)", "EXPLAIN (ANALYZE", "CONCURRENTLY"):
        assert any(fragment in query for query in queries), fragment
