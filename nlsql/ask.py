"""Services: ask a question, run given SQL, record feedback. Every call is logged."""

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from pgaccess.targets import DEFAULT_TARGET, UnknownTarget, configured_targets, target_connection

from .generate import Generated, NoAnswer, generate_sql, regenerate_sql
from .guard import SqlRefused, sql_check
from .models import QuestionLog, TrainingItem
from .permissions import relation_rule, tables_check_permitted
from .runner import QueryFailed, QueryResult, query_run
from .training import TrainingError, training_add_pair


class InvalidInput(ValueError):
    """A question, SQL or target the service will not take; str() says why."""


@dataclass
class AskResult:
    question: str
    target: str
    status: str  # QuestionLog.Status
    source: str  # QuestionLog.Source
    sql: str = ""
    reason: str = ""
    error: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    row_count: int | None = None
    duration_ms: float | None = None
    log_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def question_validate(question: object) -> str:
    if not isinstance(question, str):
        raise InvalidInput("The question must be text.")
    question = question.strip()
    if not question:
        raise InvalidInput("The question is empty.")
    limit = settings.NLSQL_MAX_QUESTION_LENGTH
    if len(question) > limit:
        raise InvalidInput(
            f"The question is {len(question)} characters long; the limit is {limit}."
        )
    if "\x00" in question:
        raise InvalidInput("The question contains a NUL character.")
    return question


def target_names() -> list[str]:
    """The targets a question may be asked of, for the ask page's choices."""
    return sorted(configured_targets())


def target_validate(target: object) -> str:
    if target in (None, ""):
        return DEFAULT_TARGET
    try:
        return target_connection(target).name
    except UnknownTarget as exc:
        raise InvalidInput(f"{exc}.") from None


def question_ask(
    *, question: object, target: object = DEFAULT_TARGET, user=None, run: bool = True
) -> AskResult:
    """Question -> SQL (LLM, or a trained pair offline) -> guard -> read-only run; logged.

    A refused or failing LLM answer is given back to the LLM once with the reason.
    Raises InvalidInput for a bad question or target (nothing is logged then).
    """
    question = question_validate(question)
    target = target_validate(target)
    started = time.monotonic()
    result = AskResult(question=question, target=target, status="error", source="none")
    try:
        generated = generate_sql(question, target)
    except NoAnswer as exc:
        result.reason = str(exc)
        return _logged(result, user=user, started=started)
    result.source, result.reason = generated.source, generated.note
    _answer(result, generated, run=run, user=user)
    return _logged(result, user=user, started=started)


def _answer(result: AskResult, generated: Generated, *, run: bool, user) -> None:
    """Check and run; SQL from the LLM that fails goes back to it once with the problem."""
    try:
        _check_and_run(result, generated, run=run, user=user)
        return
    except (SqlRefused, QueryFailed) as exc:
        first = exc
    if generated.source != "llm":
        _record_failure(result, generated.sql, first)
        return
    try:
        retried = regenerate_sql(generated, problem=_problem(first))
    except NoAnswer as exc:
        _record_failure(result, generated.sql, first)
        result.reason = f"{result.reason} (The LLM could not correct it: {exc})"
        return
    result.reason = retried.note
    try:
        _check_and_run(result, retried, run=run, user=user)
    except (SqlRefused, QueryFailed) as second:
        _record_failure(result, retried.sql, second)


def sql_run(*, sql: object, target: object = DEFAULT_TARGET, user=None) -> AskResult:
    """Run given SQL through the same guard and runner (no LLM); logged."""
    target = target_validate(target)
    started = time.monotonic()
    result = AskResult(question="", target=target, status="error", source="sql")
    text = sql if isinstance(sql, str) else ""
    try:
        if not isinstance(sql, str):
            raise SqlRefused("The SQL must be text.")
        _check_and_run(result, Generated(sql=text, source="sql"), run=True, user=user)
    except (SqlRefused, QueryFailed) as exc:
        _record_failure(result, text, exc)
    return _logged(result, user=user, started=started)


def _check_and_run(result: AskResult, generated: Generated, *, run: bool, user) -> None:
    checked = sql_check(generated.sql)
    tables_check_permitted(tables=checked.tables, target=result.target, user=user)
    result.sql = checked.sql
    if run:
        rule = relation_rule(target=result.target, user=user)
        _fill(result, query_run(checked=checked, target=result.target, also_refuse=rule))
    result.status, result.error = "ok", ""


def _fill(result: AskResult, query: QueryResult) -> None:
    result.columns, result.rows = query.columns, query.rows
    result.truncated, result.row_count = query.truncated, query.row_count


def _record_failure(result: AskResult, sql: str, exc: Exception) -> None:
    result.sql = sql
    result.columns, result.rows, result.row_count = [], [], None
    if isinstance(exc, SqlRefused):
        result.status, result.reason = "refused", exc.reason
    else:
        result.status, result.error = "error", str(exc)
        result.reason = result.reason or "The database could not run the query."


def _problem(exc: Exception) -> str:
    kind = "refused by the safety guard" if isinstance(exc, SqlRefused) else "database error"
    return f"{kind}: {exc}"


def _logged(result: AskResult, *, user, started: float) -> AskResult:
    result.duration_ms = round((time.monotonic() - started) * 1000, 3)
    log = QuestionLog.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        target=result.target,
        question=_storable(result.question),
        sql=_storable(result.sql[: settings.NLSQL_MAX_SQL_LENGTH * 2]),
        status=result.status,
        source=result.source,
        reason=_storable(result.reason),
        row_count=result.row_count,
        duration_ms=result.duration_ms,
        error=_storable(result.error),
    )
    result.log_id = log.pk
    return result


def _storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL; keep the evidence visible instead."""
    return text.replace("\x00", "\\x00")


def question_log_feedback(*, log: QuestionLog, feedback: str, user=None) -> TrainingItem | None:
    """Record correct/wrong; a correct answer to a question becomes a trained pair."""
    if feedback not in (QuestionLog.Feedback.CORRECT, QuestionLog.Feedback.WRONG):
        raise InvalidInput("Feedback must be 'correct' or 'wrong'.")
    with transaction.atomic():
        log.feedback = feedback
        log.save(update_fields=["feedback"])
        trainable = log.status == QuestionLog.Status.OK and log.question and log.sql
        if feedback != QuestionLog.Feedback.CORRECT or not trainable:
            return None
        try:  # nothing is recorded when the pair cannot be trained (the SQL may not be read)
            return training_add_pair(
                question=log.question,
                sql=log.sql,
                target=log.target,
                source=TrainingItem.Source.FEEDBACK,
                created_by=user if user is not None and user.is_authenticated else None,
            )
        except TrainingError as exc:
            raise InvalidInput(f"Not recorded: the answer cannot be trained. {exc}") from None
