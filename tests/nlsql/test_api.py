"""POST /api/ask and POST /api/explain: staff only, clear 400s, the answer's shape."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from nlsql.models import QuestionLog, TrainingItem
from tests.nlsql.conftest import expected_activity

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def staff_api(staff_user):
    return _client(staff_user)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "question", "This field is required."),
        ({"question": ""}, "question", "may not be blank"),
        ({"question": "   "}, "question", "may not be blank"),
        ({"question": 42}, "question", "Must be text."),
        ({"question": ["a", "b"]}, "question", "Must be text."),
        ({"question": None}, "question", "may not be null"),
        ({"question": True}, "question", "Must be text."),
        ({"question": "x" * 2001}, "question", "no more than 2000 characters"),
        ({"question": "ok", "run": "maybe"}, "run", "Must be a valid boolean."),
        ({"question": "ok", "target": 7}, "target", "Must be text."),
        ({"question": "ok", "target": "nope"}, "target", "Unknown target 'nope'"),
        ({"question": "nul \x00 byte"}, "question", "Null characters are not allowed."),
    ],
)
def test_ask_rejects_bad_input_with_a_clear_400(staff_api, body, field, message):
    response = staff_api.post("/api/ask", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert message in response.json()["error"]
    assert not QuestionLog.objects.exists()  # nothing is logged for invalid input


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "sql: This field is required."),
        ({"sql": ""}, "may not be blank"),
        ({"sql": 1}, "Must be text."),
        ({"sql": "DELETE FROM demo_user"}, "Only SELECT is allowed"),
        ({"sql": "SELECT * FROM auth_user"}, "denied"),
        ({"sql": "SELECT nope FROM demo_user"}, 'column "nope" does not exist'),
        ({"sql": "SELECT " + "1," * 12000 + "1"}, "no more than 20000 characters"),
    ],
)
def test_explain_rejects_bad_or_refused_sql_with_a_clear_400(staff_api, body, message):
    response = staff_api.post("/api/explain", body, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/ask", "/api/explain"])
def test_endpoints_need_a_staff_user(path, django_user_model):
    body = {"question": "Show me top 10 active users", "sql": "SELECT 1"}
    assert APIClient().post(path, body, format="json").status_code in (401, 403)
    plain = django_user_model.objects.create_user(username="plain", password="x")
    assert _client(plain).post(path, body, format="json").status_code == 403


def test_ask_answers_offline_with_sql_rows_and_the_log_id(
    staff_api, staff_user, trained_pairs, no_llm
):
    response = staff_api.post(
        "/api/ask", {"question": "Show me top 10 active users"}, format="json"
    )
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok" and data["source"] == "trained"
    assert data["columns"] == ["id", "email", "name", "events"]
    assert [(row[1], row[3]) for row in data["rows"]] == expected_activity()[:10]
    assert data["row_count"] == 10 and data["truncated"] is False
    log = QuestionLog.objects.get(pk=data["log_id"])
    assert log.user == staff_user and log.status == "ok"


def test_ask_with_run_false_returns_the_sql_only(staff_api, trained_pairs, no_llm):
    data = staff_api.post(
        "/api/ask", {"question": "Show me top 10 active users", "run": False}, format="json"
    ).json()
    assert data["status"] == "ok" and data["sql"].startswith("SELECT u.id")
    assert data["rows"] == [] and data["row_count"] is None


def test_ask_refusal_is_a_200_with_status_refused(staff_api, demo_data, openai_server, settings):
    openai_server.configure(settings)
    openai_server.default = "DROP TABLE demo_user"
    data = staff_api.post("/api/ask", {"question": "drop it"}, format="json").json()
    assert data["status"] == "refused" and "DROP" in data["reason"]


def test_explain_without_llm_summarizes_the_plan(staff_api, demo_data, no_llm):
    from django.db import connection

    sql = "SELECT email FROM demo_user WHERE email = 'user01@example.com'"
    response = staff_api.post("/api/explain", {"sql": sql}, format="json")
    assert response.status_code == 200
    data = response.json()
    with connection.cursor() as cursor:  # the planner's own answer, read independently
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0][0]["Plan"]
    assert data["source"] == "plan" and data["tables"] == ["demo_user"]
    assert data["estimated_rows"] == plan["Plan Rows"]
    assert data["total_cost"] == plan["Total Cost"]
    expected_indexes = [plan["Index Name"]] if "Index Name" in plan else []
    assert data["indexes"] == expected_indexes
    assert "demo_user" in data["explanation"] and "Estimated" in data["explanation"]


def test_openapi_schema_documents_every_endpoint(staff_api):
    response = staff_api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path, ok in (
        ("/api/ask", "200"),
        ("/api/explain", "200"),
        ("/api/training", "201"),
        ("/api/ask/{log_id}/feedback", "200"),
    ):
        responses = paths[path]["post"]["responses"]
        assert {ok, "400", "403"} <= set(responses)


def test_training_api_adds_documentation_and_checked_pairs(staff_api, staff_user, db):
    response = staff_api.post(
        "/api/training",
        {
            "kind": "question_sql",
            "question": "How many users?",
            "sql": "SELECT count(*) FROM demo_user",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    item = TrainingItem.objects.get(pk=response.json()["id"])
    assert (item.kind, item.source, item.created_by) == ("question_sql", "api", staff_user)
    assert len(item.embedding) == 384
    doc = staff_api.post(
        "/api/training", {"kind": "documentation", "text": "Users are learners."}, format="json"
    )
    assert doc.status_code == 201 and doc.json()["source"] == "api"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "ddl", "text": "x"}, "is not a valid choice"),
        ({"kind": "question_sql", "question": "q", "sql": "DROP TABLE demo_user"}, "refused"),
        ({"kind": "question_sql", "sql": "SELECT 1"}, "question must be non-empty text"),
        ({"kind": "documentation"}, "documentation must be non-empty text"),
        ({"kind": "documentation", "text": ["x"]}, "Must be text."),
        ({"kind": "documentation", "text": "x", "target": "nope"}, "Unknown target"),
    ],
)
def test_training_api_rejects_bad_items(staff_api, db, body, message):
    response = staff_api.post("/api/training", body, format="json")
    assert response.status_code == 400 and message in response.json()["error"]
    assert not TrainingItem.objects.exists()


def test_feedback_api_trains_a_correct_answer(staff_api, demo_data, openai_server, settings):
    openai_server.configure(settings)
    openai_server.reply("SELECT count(*) FROM demo_user")
    log_id = staff_api.post("/api/ask", {"question": "How many learners?"}, format="json").json()[
        "log_id"
    ]
    bad = staff_api.post(f"/api/ask/{log_id}/feedback", {"feedback": "meh"}, format="json")
    assert bad.status_code == 400
    response = staff_api.post(f"/api/ask/{log_id}/feedback", {"feedback": "correct"}, format="json")
    assert response.status_code == 200
    item = TrainingItem.objects.get(pk=response.json()["trained_item_id"])
    assert item.question == "How many learners?" and item.source == "feedback"
    missing = staff_api.post("/api/ask/999999/feedback", {"feedback": "wrong"}, format="json")
    assert missing.status_code == 404
