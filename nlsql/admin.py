"""Admin: the "Ask the database" page, the question log and the training memory (staff only)."""

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path, reverse

from . import admin_views
from .guard import SqlRefused, sql_check
from .models import AskPage, QuestionLog, TrainingItem
from .permissions import tables_check_permitted
from .vectors import embed_text


class StaffMixin:
    """Any active staff user may read (the product's rule for admin pages)."""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


@admin.register(QuestionLog)
class QuestionLogAdmin(StaffMixin, admin.ModelAdmin):
    list_display = ["created_at", "user", "status", "source", "short_question", "row_count",
                    "duration_ms", "feedback", "target"]  # fmt: skip
    list_filter = ["status", "source", "feedback", "target"]
    search_fields = ["question", "sql", "reason"]
    readonly_fields = [field.name for field in QuestionLog._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="question or SQL")
    def short_question(self, obj):
        return (obj.question or obj.sql)[:100]

    def get_urls(self):
        ask = self.admin_site.admin_view(admin_views.ask_view)
        feedback = self.admin_site.admin_view(admin_views.feedback_view)
        answer_csv = self.admin_site.admin_view(admin_views.answer_csv_view)
        return [
            path("ask/", ask, name="nlsql_ask"),
            path("ask/<int:log_id>/answer.csv", answer_csv, name="nlsql_answer_csv"),
            path("ask/<int:log_id>/feedback/", feedback, name="nlsql_feedback"),
            *super().get_urls(),
        ]


@admin.register(AskPage)
class AskPageAdmin(StaffMixin, admin.ModelAdmin):
    """The index entry "Ask the database": its list is the ask page."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return HttpResponseRedirect(reverse("admin:nlsql_ask"))


class TrainingItemForm(forms.ModelForm):
    user = None  # who saves it: TrainingItemAdmin.get_form sets it per request

    class Meta:
        model = TrainingItem
        fields = ["kind", "target", "question", "sql", "text", "table_name"]

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == TrainingItem.Kind.QUESTION_SQL:
            if not (data.get("question") or "").strip() or not (data.get("sql") or "").strip():
                raise forms.ValidationError("A question-SQL pair needs both a question and SQL.")
            try:
                checked = sql_check(data["sql"])
                target = data.get("target") or "default"
                tables_check_permitted(tables=checked.tables, target=target, user=self.user)
            except SqlRefused as exc:
                self.add_error("sql", f"Refused by the SQL guard: {exc.reason}")
        elif not (data.get("text") or "").strip():
            self.add_error("text", "DDL and documentation items need a text.")
        return data


@admin.register(TrainingItem)
class TrainingItemAdmin(StaffMixin, admin.ModelAdmin):
    form = TrainingItemForm
    list_display = ["kind", "target", "label", "source", "created_by", "created_at"]
    list_filter = ["kind", "source", "target"]
    search_fields = ["question", "sql", "text", "table_name"]
    readonly_fields = ["source", "created_by", "created_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user  # a class of its own per request (modelform_factory)
        return form

    @admin.display(description="question / table / text")
    def label(self, obj):
        return (obj.question or obj.table_name or obj.text)[:100]

    def save_model(self, request, obj, form, change):
        """Every saved item is embedded again, so retrieval finds it by its new text."""
        if not change:
            obj.source = TrainingItem.Source.ADMIN
            obj.created_by = request.user
        obj.embedding = embed_text(obj.embedding_text)
        super().save_model(request, obj, form, change)
