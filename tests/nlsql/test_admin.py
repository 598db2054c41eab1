"""The "Ask the database" admin page: staff only, answer, paginated rows, explanation, feedback."""

import re

import pytest
from django.urls import reverse

from nlsql.models import QuestionLog, TrainingItem
from tests.nlsql.conftest import DEMO_EVENTS

pytestmark = pytest.mark.django_db(transaction=True)

ASK = "/admin/nlsql/questionlog/ask/"


def test_ask_page_is_linked_from_the_admin_index_and_staff_only(client, staff_client):
    assert reverse("admin:nlsql_ask") == ASK
    index = staff_client.get("/admin/").content.decode()
    assert f'href="{ASK}"' in index
    assert staff_client.get(ASK).status_code == 200
    client.logout()
    response = client.get(ASK)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_non_staff_user_cannot_ask(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="plain", password="x"))
    response = client.post(ASK, {"question": "Show me top 10 active users", "target": "default"})
    assert response.status_code == 302 and not QuestionLog.objects.exists()


def test_asking_offline_shows_sql_rows_explanation_and_feedback_buttons(
    staff_client, trained_pairs, no_llm
):
    response = staff_client.post(
        ASK, {"question": "Show me top 10 active users", "target": "default", "run": "on"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="answer-sql"' in page and "demo_behavior_log" in page
    assert "No LLM is configured" in page
    assert 'id="answer-explanation"' in page and "(from the query plan)" in page
    table = page[
        page.index('id="answer-rows"') : page.index("</table>", page.index('id="answer-rows"'))
    ]
    assert table.count("<tr>") == 1 + 10  # header + ten users
    assert 'value="correct"' in page and 'value="wrong"' in page


def test_result_table_is_paginated_by_rerunning_the_logged_sql(staff_client, demo_data, settings):
    settings.NLSQL_PAGE_SIZE = 4
    settings.LLM_PROVIDER = ""
    from nlsql.ask import sql_run

    total = len(DEMO_EVENTS)
    log_id = sql_run(sql="SELECT email FROM demo_user ORDER BY email").log_id
    first = staff_client.get(ASK, {"log": log_id}).content.decode()
    emails = sorted(f"user{n:02d}@example.com" for n in DEMO_EVENTS)
    assert re.findall(r"<td>(user\d\d@example.com)</td>", first) == emails[:4]
    assert f"Page 1 of {-(-total // 4)}" in first and "page=2" in first
    second = staff_client.get(ASK, {"log": log_id, "page": 2}).content.decode()
    assert re.findall(r"<td>(user\d\d@example.com)</td>", second) == emails[4:8]
    assert staff_client.get(ASK, {"log": 999999}).status_code == 404


def test_correct_button_trains_the_question(
    staff_client, staff_user, demo_data, openai_server, settings
):
    openai_server.configure(settings)
    openai_server.reply("SELECT count(*) FROM demo_user")
    staff_client.post(ASK, {"question": "How many learners do we have?", "target": "default"})
    log = QuestionLog.objects.get(question="How many learners do we have?")
    response = staff_client.post(
        reverse("admin:nlsql_feedback", args=[log.pk]), {"feedback": "correct"}
    )
    assert response.status_code == 302
    log.refresh_from_db()
    assert log.feedback == "correct"
    pair = TrainingItem.objects.get(kind="question_sql", question="How many learners do we have?")
    assert pair.source == "feedback" and pair.created_by == staff_user
    assert pair.sql == "SELECT count(*) FROM demo_user"


def test_feedback_needs_post_and_a_known_value(staff_client, demo_data):
    from nlsql.ask import sql_run

    log_id = sql_run(sql="SELECT 1").log_id
    url = reverse("admin:nlsql_feedback", args=[log_id])
    assert staff_client.get(url).status_code == 405
    staff_client.post(url, {"feedback": "maybe"})
    assert QuestionLog.objects.get(pk=log_id).feedback == "none"


def test_training_item_added_in_the_admin_is_checked_and_embedded(super_client, db):
    """Adding follows Django's permissions (a superuser here); staff without them only read."""
    url = reverse("admin:nlsql_trainingitem_add")
    refused = super_client.post(
        url, {"kind": "question_sql", "target": "default", "question": "wipe",
              "sql": "DELETE FROM demo_user"},
    )  # fmt: skip
    assert refused.status_code == 200 and "Refused by the SQL guard" in refused.content.decode()
    assert not TrainingItem.objects.exists()
    super_client.post(
        url, {"kind": "documentation", "target": "default", "text": "Users are learners."}
    )
    item = TrainingItem.objects.get()
    assert item.source == "admin" and len(item.embedding) == 384


def test_refused_answer_shows_the_reason_and_no_feedback_buttons(
    staff_client, demo_data, openai_server, settings
):
    openai_server.configure(settings)
    openai_server.default = "DROP TABLE demo_user"
    page = staff_client.post(
        ASK, {"question": "Remove the users table", "target": "default"}
    ).content.decode()
    assert "Answer: refused" in page
    assert "Only SELECT is allowed; this is DROP." in page
    assert 'value="correct"' not in page and 'id="answer-rows"' not in page
