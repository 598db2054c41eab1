"""manage.py run_audit: the report, the JSON document, and errors that say what to do."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from dbarchitect.locking import audit_lock
from dbarchitect.models import AuditRun, Target

from .conftest import pgss_reset_own_database, recent_logs

pytestmark = pytest.mark.django_db(transaction=True)

REPORT_KEYS = {"audit_id", "status", "phase_seconds", "queries", "skipped", "recommendations"}
RECOMMENDATION_KEYS = {
    "kind",
    "table",
    "columns",
    "ddl",
    "estimated_cost_before",
    "estimated_cost_after",
    "measured_ms_before",
    "measured_ms_after",
    "queryids",
}


def run(*args: str) -> str:
    out = StringIO()
    call_command("run_audit", *args, stdout=out)
    return out.getvalue()


def test_json_output_is_one_document_with_the_documented_keys(pipeline_workload, workload_conn):
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 20)

    report = json.loads(run("--json", "--no-verify"))

    assert set(report) >= REPORT_KEYS
    assert report["status"] == "succeeded"
    assert AuditRun.objects.get(id=report["audit_id"]).status == AuditRun.Status.SUCCEEDED
    assert {"collect", "advise", "health", "record"} <= set(report["phase_seconds"])
    query = next(q for q in report["queries"] if "pl_behavior_log" in q["query"])
    assert query["calls"] == 20 and query["mean_ms"] > 0 and isinstance(query["queryid"], int)
    for skipped in report["skipped"]:
        assert {"queryid", "reason"} <= set(skipped)
    kinds = {r["kind"] for r in report["recommendations"]}
    assert {"index", "drop_index", "invalid_index", "fk_index"} <= kinds
    for recommendation in report["recommendations"]:
        assert set(recommendation) >= RECOMMENDATION_KEYS
    index = next(r for r in report["recommendations"] if r["kind"] == "index")
    assert index["queryids"] == [query["queryid"]]
    assert index["measured_ms_before"] is None  # --no-verify


def test_text_report_names_the_audit_and_its_recommendations(pipeline_workload, workload_conn):
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 20)
    text = run("--no-verify")
    audit = AuditRun.objects.get()
    assert text.startswith(f"Audit {audit.id} of target default: succeeded")
    assert "Slow queries analyzed:" in text and "pl_behavior_log" in text
    assert "[fk_index] Create index pl_payment_user_id_fk_idx" in text


def test_the_command_creates_the_targets_named_in_the_environment(pipeline_workload):
    down = override_settings(DBARCHITECT_TARGETS="down=postgres://a:pw@127.0.0.1:1/x")
    with down, pytest.raises(CommandError):
        run("--target", "down", "--no-verify")
    assert set(Target.objects.values_list("name", flat=True)) == {"default", "down"}


def test_an_unknown_target_is_a_command_error_that_lists_the_known_ones(pipeline_workload):
    with pytest.raises(CommandError, match=r"unknown target 'nope'.*configured targets: default"):
        run("--target", "nope")


def test_a_failed_audit_exits_non_zero_with_the_reason(pipeline_workload):
    out = StringIO()
    down = override_settings(DBARCHITECT_TARGETS="down=postgres://a:secret-pw@127.0.0.1:1/x")
    with down, pytest.raises(CommandError, match="failed: target 'down' is unreachable") as info:
        call_command("run_audit", "--target", "down", "--json", stdout=out)
    assert "secret-pw" not in str(info.value) and "secret-pw" not in out.getvalue()
    report = json.loads(out.getvalue())
    assert report["status"] == "failed" and "unreachable" in report["error"]


def test_an_audit_already_running_is_a_command_error(pipeline_workload):
    with audit_lock("default"), pytest.raises(CommandError, match="already running"):
        run("--no-verify")
    assert not AuditRun.objects.exists()


@override_settings(DBARCHITECT_TARGETS="broken")
def test_a_malformed_target_list_is_a_command_error(pipeline_workload):
    with pytest.raises(CommandError, match="DBARCHITECT_TARGETS"):
        run()
