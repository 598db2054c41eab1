"""With no LLM configured: answers from the nearest trained question-SQL pair, saying so."""

import pytest

from nlsql.ask import question_ask, question_log_feedback
from nlsql.models import QuestionLog, TrainingItem
from tests.nlsql.conftest import expected_activity

pytestmark = pytest.mark.django_db(transaction=True)


def _top_users(result) -> list[tuple[str, int]]:
    email, events = result.columns.index("email"), result.columns.index("events")
    return [(row[email], row[events]) for row in result.rows]


@pytest.mark.parametrize(
    "question",
    ["Show me top 10 active users", "Who are the 10 most active users?"],
    ids=["seed-question", "paraphrase"],
)
def test_offline_answers_top_10_active_users_from_the_trained_pair(trained_pairs, no_llm, question):
    result = question_ask(question=question)
    assert result.status == "ok", result
    assert result.source == "trained"
    assert "No LLM is configured" in result.reason
    assert "'Show me top 10 active users'" in result.reason
    assert _top_users(result) == expected_activity()[:10]
    log = QuestionLog.objects.get(pk=result.log_id)
    assert (log.status, log.source, log.row_count) == ("ok", "trained", 10)
    assert log.question == question and "demo_behavior_log" in log.sql


def test_offline_unrelated_question_gets_a_clear_message(trained_pairs, no_llm):
    result = question_ask(question="What is the weather in Hanoi tomorrow?")
    assert result.status == "error" and result.source == "none"
    assert "No LLM is configured" in result.reason
    assert "no trained question is close enough" in result.reason
    assert result.sql == "" and result.rows == []
    assert QuestionLog.objects.get(pk=result.log_id).status == "error"


def test_offline_without_any_pairs_says_how_to_train(demo_data, no_llm):
    result = question_ask(question="Show me top 10 active users")
    assert result.status == "error"
    assert "nlsql_train --file" in result.reason


def test_offline_threshold_is_the_setting(trained_pairs, no_llm):
    no_llm.NLSQL_OFFLINE_MIN_SIMILARITY = 0.99
    result = question_ask(question="Who are the 10 most active users?")
    assert result.status == "error" and "needs 0.99" in result.reason


def test_correct_feedback_trains_the_pair_and_offline_mode_then_uses_it(trained_pairs, no_llm):
    question = "List every login event"  # not trained: nothing close enough yet
    assert question_ask(question=question).status == "error"
    from nlsql.ask import sql_run

    answered = sql_run(sql="SELECT id FROM demo_behavior_log WHERE event_type = 'login'")
    log = QuestionLog.objects.get(pk=answered.log_id)
    # A direct SQL run has no question: marking it correct trains nothing.
    assert question_log_feedback(log=log, feedback="correct") is None
    log.question = question
    log.save()
    item = question_log_feedback(log=log, feedback="correct")
    assert item.kind == TrainingItem.Kind.QUESTION_SQL and item.source == "feedback"
    assert item.embedding is not None
    again = question_ask(question=question)
    assert again.status == "ok" and again.source == "trained"
    assert again.row_count == answered.row_count


def test_wrong_feedback_trains_nothing(trained_pairs, no_llm):
    result = question_ask(question="Show me top 10 active users")
    before = TrainingItem.objects.count()
    log = QuestionLog.objects.get(pk=result.log_id)
    assert question_log_feedback(log=log, feedback="wrong") is None
    log.refresh_from_db()
    assert log.feedback == "wrong" and TrainingItem.objects.count() == before
