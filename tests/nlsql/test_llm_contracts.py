"""The Gemini and OpenAI-compatible contracts, against local HTTP servers that speak each API."""

import pytest

from llmclient import LLMError, llm_client
from nlsql.ask import question_ask
from nlsql.generate import explain_query
from nlsql.models import QuestionLog
from tests.nlsql.conftest import DEMO_EVENTS

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS_SQL = (
    "SELECT event_type, count(*) AS events FROM demo_behavior_log "
    "GROUP BY event_type ORDER BY event_type"
)
QUESTION = "How many events of each type were logged?"


def _expected_event_counts() -> list[list]:
    counts: dict[str, int] = {}
    for events in DEMO_EVENTS.values():
        for kind, _ in events:
            counts[kind] = counts.get(kind, 0) + 1
    return [[kind, counts[kind]] for kind in sorted(counts)]


@pytest.fixture(params=["gemini", "openai"])
def llm_server(request, settings, gemini_server, openai_server):
    server = gemini_server if request.param == "gemini" else openai_server
    server.configure(settings)
    return server


def test_prompt_sent_to_a_local_server_speaking_the_api_carries_retrieved_context(
    trained, llm_server
):
    llm_server.reply(f"```sql\n{EVENTS_SQL}\n```")
    result = question_ask(question=QUESTION)
    assert result.status == "ok" and result.source == "llm"
    request = llm_server.requests[0]
    # The schema of the relevant tables, the notes and the nearest worked example.
    assert 'CREATE TABLE "public"."demo_behavior_log"' in request.prompt
    assert '"event_type" character varying(64) NOT NULL' in request.prompt
    assert "FOREIGN KEY (user_id) REFERENCES demo_user(id)" in request.prompt
    assert "Question: How many events of each type were logged?" in request.prompt
    assert "active user is a user with behaviour log events" in request.prompt
    assert request.prompt.rstrip().endswith(f"Question: {QUESTION}\nSQL:")
    assert "exactly one read-only PostgreSQL SELECT" in request.system
    # Denied tables are never described to the LLM.
    assert '"auth_user"' not in request.prompt


def test_local_gemini_server_receives_the_generate_content_contract(
    trained, gemini_server, settings
):
    gemini_server.configure(settings)
    gemini_server.reply(EVENTS_SQL)
    assert question_ask(question=QUESTION).status == "ok"
    request = gemini_server.requests[0]
    assert request.path.endswith("/models/gemini-test:generateContent")
    assert request.headers["x-goog-api-key"] == gemini_server.api_key
    assert request.body["contents"][0]["parts"][0]["text"] == request.prompt
    assert request.body["generationConfig"]["temperature"] == 0


def test_local_openai_compatible_server_receives_the_chat_completions_contract(
    trained, openai_server, settings
):
    openai_server.configure(settings)
    openai_server.reply(EVENTS_SQL)
    assert question_ask(question=QUESTION).status == "ok"
    request = openai_server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {openai_server.api_key}"
    assert request.body["model"] == "local-test-model"
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.body["temperature"] == 0


@pytest.mark.parametrize(
    "answer",
    [
        f"```sql\n{EVENTS_SQL}\n```",
        f"Here is the query you need:\n\n```postgresql\n{EVENTS_SQL};\n```\nIt groups by type.",
        f"```\n{EVENTS_SQL}\n```",
        EVENTS_SQL,
        f"Sure! The query is:\n{EVENTS_SQL};\nThis counts the events per type.",
    ],
    ids=["fenced-sql", "fenced-with-prose", "fenced-no-language", "plain", "plain-with-prose"],
)
def test_sql_is_extracted_from_answers_of_a_local_server_speaking_the_api(
    demo_data, llm_server, answer
):
    llm_server.reply(answer)
    result = question_ask(question=QUESTION)
    assert result.status == "ok", result
    assert result.rows == _expected_event_counts()
    assert len(llm_server.requests) == 1  # no correction needed


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ((500, "backend exploded"), "500"),
        ((401, "API key not valid"), "401"),
        ((429, "quota exceeded"), "429"),
        (b"<html>not json</html>", "unreadable answer"),
        (b'{"unexpected": true}', ""),
    ],
    ids=["http-500", "http-401", "http-429", "garbage", "wrong-shape"],
)
def test_api_errors_of_a_local_server_speaking_the_api_give_a_clear_message(
    demo_data, llm_server, reply, message
):
    if isinstance(reply, tuple):
        llm_server.reply_error(*reply)
    else:
        llm_server.reply_raw(reply)
    result = question_ask(question=QUESTION)
    assert result.status == "error" and result.sql == "" and result.rows == []
    provider = "Gemini" if llm_server.provider == "gemini" else "OpenAI-compatible endpoint"
    assert result.reason.startswith(provider), result.reason
    assert message in result.reason
    if isinstance(reply, tuple):
        assert reply[1] in result.reason  # the API's own message is passed on
    assert llm_server.api_key not in result.reason
    assert QuestionLog.objects.get(pk=result.log_id).status == "error"


def test_unreachable_local_server_is_a_clear_error(demo_data, llm_server):
    llm_server.stop()
    result = question_ask(question=QUESTION)
    assert result.status == "error"
    assert "not reachable" in result.reason


def test_execution_error_is_given_back_to_the_llm_once(demo_data, llm_server):
    llm_server.reply("SELECT kind, count(*) FROM demo_behavior_log GROUP BY kind")
    llm_server.reply(f"```sql\n{EVENTS_SQL}\n```")
    result = question_ask(question=QUESTION)
    assert result.status == "ok" and result.rows == _expected_event_counts()
    assert len(llm_server.requests) == 2
    retry = llm_server.requests[1].prompt
    assert 'database error: column "kind" does not exist' in retry
    assert "SELECT kind, count(*) FROM demo_behavior_log GROUP BY kind" in retry
    assert "Corrected once" in result.reason


def test_refused_sql_is_given_back_once_then_refused(demo_data, llm_server):
    llm_server.default = "DELETE FROM demo_behavior_log"
    result = question_ask(question=QUESTION)
    assert result.status == "refused"
    assert "DELETE" in result.reason
    assert len(llm_server.requests) == 2
    assert "refused by the safety guard" in llm_server.requests[1].prompt


def test_run_false_checks_the_sql_without_running_it(demo_data, llm_server):
    llm_server.reply(EVENTS_SQL)
    result = question_ask(question=QUESTION, run=False)
    assert result.status == "ok" and result.sql.startswith("SELECT event_type")
    assert result.rows == [] and result.row_count is None


def test_explain_query_uses_the_llm_of_a_local_server(demo_data, llm_server):
    llm_server.reply("It counts events per type by reading the whole log.")
    explanation = explain_query(EVENTS_SQL)
    assert explanation.source == "llm"
    assert explanation.text == "It counts events per type by reading the whole log."
    prompt = llm_server.requests[0].prompt
    assert "demo_behavior_log" in prompt and "Plan summary:" in prompt


def test_explain_query_falls_back_to_the_plan_when_the_llm_fails(demo_data, llm_server):
    llm_server.reply_error(503, "overloaded")
    explanation = explain_query(EVENTS_SQL)
    assert explanation.source == "plan"
    assert "demo_behavior_log" in explanation.text and "overloaded" in explanation.text


def test_llm_client_configuration_errors_are_clear(settings):
    settings.LLM_PROVIDER = ""
    assert llm_client() is None
    settings.LLM_PROVIDER = "gemini"
    settings.GEMINI_API_KEY = ""
    with pytest.raises(LLMError, match="GEMINI_API_KEY is empty"):
        llm_client()
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = ""
    with pytest.raises(LLMError, match="OPENAI_BASE_URL is empty"):
        llm_client()
    settings.LLM_PROVIDER = "claude"
    with pytest.raises(LLMError, match="not gemini or openai"):
        llm_client()


def test_llm_failing_during_the_correction_keeps_the_first_reason(demo_data, llm_server):
    llm_server.reply("UPDATE demo_user SET email = 'x'")
    llm_server.reply_error(500, "backend exploded")
    result = question_ask(question=QUESTION)
    assert result.status == "refused" and "UPDATE" in result.reason
    assert "The LLM could not correct it" in result.reason and "500" in result.reason
