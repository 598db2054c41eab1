import pytest

from dbarchitect.explain import SYSTEM_PROMPT, rationale_write
from dbarchitect.models import Target
from optimizations.models import OptimizationLog
from optimizations.services import optimization_store
from tests import llm_servers

# The local servers speaking the Gemini and OpenAI APIs (tests/llm_servers.py).
gemini_server = llm_servers.gemini_server
openai_server = llm_servers.openai_server

pytestmark = pytest.mark.django_db

QUERY = "SELECT * FROM demo_behavior_log WHERE user_id = $1 ORDER BY timestamp DESC LIMIT $2"
DDL = "CREATE INDEX behavior_log_user_ts ON public.demo_behavior_log (user_id, timestamp)"


@pytest.fixture
def log():
    return OptimizationLog(
        query_text=QUERY,
        recommendation="Create index behavior_log_user_ts on public.demo_behavior_log",
        ddl=DDL,
        estimated_cost_before=1000.0,
        estimated_cost_after=10.0,
        measured_ms_before=100.0,
        measured_ms_after=10.0,
        index_size_bytes=4 * 1024**2,
        plan_before={"Plan": {"Node Type": "Seq Scan", "Relation Name": "demo_behavior_log"}},
        plan_after={"Plan": {"Node Type": "Index Scan", "Index Name": "behavior_log_user_ts"}},
    )


@pytest.fixture
def similar(log):
    from dbarchitect.memory import memory_similar

    shop = Target.objects.create(name="shop")
    optimization_store(
        query="SELECT id FROM demo_behavior_log WHERE user_id = $1 AND timestamp > $2",
        recommendation="CREATE INDEX ON demo_behavior_log (user_id, timestamp)",
        performance_gain=80.0,
        target=shop,
        status="rejected",
        fingerprint="old",
    )
    found = memory_similar(log=log)
    assert len(found) == 1
    return found


def test_without_llm_the_rationale_comes_from_the_facts(log, similar, settings):
    settings.LLM_PROVIDER = ""
    rationale = rationale_write(log=log, similar=similar, workload_share=0.25)
    assert rationale.source == "facts" and rationale.note == "no LLM configured"
    text = rationale.text
    assert "from 1,000.0 to 10.0 (99.0% less)" in text
    assert "100.00 ms before, 10.00 ms after, 10.0x faster" in text
    assert "25.0% of the workload's time" in text
    assert "Estimated index size: 4.0 MB." in text
    assert "Similar past optimizations:" in text
    assert "CREATE INDEX ON demo_behavior_log (user_id, timestamp) on shop (rejected" in text


@pytest.mark.parametrize(
    ("kind", "details", "says"),
    [
        ("index", {}, "Not measured (verification was off): estimate only."),
        (
            "index",
            {"verification_error": "this database is a hot standby."},
            "Not measured: this database is a hot standby. Estimate only.",
        ),
        ("drop_index", {}, "this is an index to drop: estimate only."),
        ("rewrite", {}, "this is a change to the query: estimate only."),
    ],
)
def test_unmeasured_recommendation_says_why(log, settings, kind, details, says):
    settings.LLM_PROVIDER = ""
    log.measured_ms_before = log.measured_ms_after = None
    log.kind, log.details = kind, details
    text = rationale_write(log=log, similar=[]).text
    assert says in text and "Similar past" not in text


def test_gemini_contract_prompt_carries_query_plans_and_past(log, similar, settings, gemini_server):
    gemini_server.configure(settings)
    gemini_server.reply("Use the composite index; also consider keyset pagination.")
    rationale = rationale_write(log=log, similar=similar, workload_share=0.25)
    assert rationale.source == "llm"
    assert rationale.text.startswith("Use the composite index; also consider keyset pagination.")
    assert "Facts:\n" in rationale.text and "99.0% less" in rationale.text
    [request] = gemini_server.requests
    assert request.path.endswith("/models/gemini-test:generateContent")
    assert request.headers["x-goog-api-key"] == gemini_server.api_key
    assert QUERY in request.prompt and DDL in request.prompt
    assert "Seq Scan" in request.prompt and "Index Scan" in request.prompt
    assert "on shop (rejected" in request.prompt
    assert request.system == SYSTEM_PROMPT


def test_openai_contract_and_the_llm_never_changes_the_ddl(log, settings, openai_server):
    openai_server.configure(settings)
    openai_server.reply("Better: CREATE INDEX ON demo_behavior_log (timestamp).")
    rationale = rationale_write(log=log, similar=[])
    assert rationale.source == "llm"
    assert log.ddl == DDL  # the answer is text for people, never parsed for DDL
    [request] = openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "local-test-model"
    assert request.headers["authorization"] == f"Bearer {openai_server.api_key}"
    assert "No similar past optimizations." in request.prompt
    assert "Do not propose different DDL" in request.system


def test_llm_failure_falls_back_to_the_facts(log, settings, openai_server):
    openai_server.configure(settings)
    openai_server.reply_error(500, "model crashed")
    rationale = rationale_write(log=log, similar=[])
    assert rationale.source == "facts"
    assert rationale.note.startswith("LLM failed:") and "500" in rationale.note
    assert "99.0% less" in rationale.text


def test_llm_misconfigured_is_reported_not_raised(log, settings):
    settings.LLM_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = ""
    rationale = rationale_write(log=log, similar=[])
    assert rationale.source == "facts" and "GEMINI_API_KEY" in rationale.note


@pytest.mark.django_db(transaction=True)
def test_run_audit_command_reports_confidence_and_rationale(
    default_target, workload_conn, settings
):
    import io
    import json

    from django.core.management import call_command

    from .conftest import pgss_reset_own_database, recent_logs

    settings.LLM_PROVIDER = ""
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 20)
    text = io.StringIO()
    call_command("run_audit", "--no-verify", stdout=text)
    assert "      confidence 0." in text.getvalue()
    assert "      Not measured (verification was off): estimate only." in text.getvalue()

    recent_logs(workload_conn, 20)
    out = io.StringIO()
    call_command("run_audit", "--json", "--no-verify", stdout=out)
    report = json.loads(out.getvalue())
    [index] = [r for r in report["recommendations"] if r["kind"] == "index"]
    # Found again: reported as recorded before, not scored or explained a second time.
    assert index["already_recorded"]
    assert index["confidence"] is None and index["rationale"] is None
    stored = OptimizationLog.objects.get(fingerprint=index["fingerprint"])
    assert 0 < stored.confidence < 0.8 and "planner's estimated cost" in stored.explanation
