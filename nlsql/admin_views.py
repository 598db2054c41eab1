"""The "Ask the database" admin page: form, SQL, paginated rows, explanation, feedback."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.parsing import parse_int

from .answer_csv import answer_csv
from .ask import InvalidInput, question_ask, question_log_feedback, target_names
from .charts import answer_chart
from .generate import explain_query
from .guard import SqlRefused, sql_check
from .models import QuestionLog
from .permissions import relation_rule, tables_check_permitted
from .runner import QueryFailed, query_run


class AskForm(forms.Form):
    question = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=settings.NLSQL_MAX_QUESTION_LENGTH,
    )
    target = forms.ChoiceField(choices=())
    run = forms.BooleanField(required=False, initial=True, label="Run the SQL")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(name, name) for name in target_names()]


def ask_view(request):
    """POST asks (and logs); GET ?log=ID&page=N shows a logged answer's rows again."""
    context = {**admin.site.each_context(request), "title": "Ask the database"}
    if request.method == "POST":
        form = AskForm(request.POST)
        if form.is_valid():
            try:
                result = question_ask(**form.cleaned_data, user=request.user)
            except InvalidInput as exc:
                form.add_error("question", str(exc))
            else:
                context.update(_answer_context(request, result.as_dict(), page_number=1))
    else:
        form = AskForm(initial={"target": "default", "run": True})
        if request.GET.get("log"):
            context.update(_logged_answer_context(request))
    context["form"] = form
    return TemplateResponse(request, "nlsql/ask.html", context)


def _logged_answer_context(request) -> dict:
    log = get_object_or_404(QuestionLog, pk=_positive_int(request.GET.get("log")))
    answer = {
        "question": log.question, "target": log.target, "status": log.status,
        "source": log.source, "sql": log.sql, "reason": log.reason, "error": log.error,
        "columns": [], "rows": [], "truncated": False, "row_count": log.row_count,
        "duration_ms": log.duration_ms, "log_id": log.pk,
    }  # fmt: skip
    answer.update(_logged_rows(log, user=request.user))
    page_number = _positive_int(request.GET.get("page")) or 1
    return _answer_context(request, answer, page_number=page_number)


def _logged_rows(log: QuestionLog, *, user) -> dict:
    """A logged answer's rows, run again (columns, rows, truncated), or its error."""
    if log.status != QuestionLog.Status.OK or not log.sql:
        return {}
    try:  # checked again: settings may have changed, and `user` may not be who asked
        checked = sql_check(log.sql)
        tables_check_permitted(tables=checked.tables, target=log.target, user=user)
        rule = relation_rule(target=log.target, user=user)
        query = query_run(checked=checked, target=log.target, also_refuse=rule)
    except (SqlRefused, QueryFailed) as exc:
        return {"error": str(exc)}
    return {"columns": query.columns, "rows": query.rows, "truncated": query.truncated}


def answer_csv_view(request, log_id: int) -> HttpResponse:
    """A logged answer's rows as a CSV download (formula-like cells defused)."""
    log = get_object_or_404(QuestionLog, pk=log_id)
    rows = _logged_rows(log, user=request.user)
    if "rows" not in rows:
        messages.error(request, rows.get("error") or "This answer has no rows to download.")
        return HttpResponseRedirect(f"{reverse('admin:nlsql_ask')}?log={log.pk}")
    response = HttpResponse(
        answer_csv(rows["columns"], rows["rows"]), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="answer-{log.pk}.csv"'
    return response


def _answer_context(request, answer: dict, *, page_number: int) -> dict:
    paginator = Paginator(answer["rows"], settings.NLSQL_PAGE_SIZE)
    page = paginator.get_page(page_number)
    explanation = None
    if answer["status"] == "ok" and answer["sql"] and not answer["error"] and page.number == 1:
        try:
            explanation = explain_query(answer["sql"], answer["target"])
        except (SqlRefused, QueryFailed) as exc:
            messages.warning(request, f"No explanation: {exc}")
    chart = answer_chart(answer["columns"], answer["rows"])
    return {
        "answer": answer,
        "page": page,
        "explanation": explanation,
        "chart": chart.as_dict() if chart else None,
    }


def _positive_int(raw) -> int | None:
    number = parse_int(raw)
    return number if number is not None and number > 0 else None


@require_POST
def feedback_view(request, log_id: int):
    log = get_object_or_404(QuestionLog, pk=log_id)
    try:
        trained = question_log_feedback(
            log=log, feedback=request.POST.get("feedback", ""), user=request.user
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        if trained is not None:
            messages.success(request, "Thanks: the question and its SQL are now a trained pair.")
        else:
            messages.info(request, f"Recorded: {log.feedback}.")
    return HttpResponseRedirect(f"{reverse('admin:nlsql_ask')}?log={log.pk}")
