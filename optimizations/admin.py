"""Admin for the agent's memory: every recommendation, read-only except the decisions.

Staff approve or reject (buttons on the change page, or actions on the list); only a
superuser applies an index, after a confirmation page: the apply is queued for a Celery worker
(optimizations.applying) and the change page shows the build's progress. Every decision goes
through the same services the API calls.
"""

import json
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError as BrokerError

from presentation.formatting import bytes_text, impact_text, speedup_text
from presentation.plan_tree import plan_tree_pair
from presentation.recommendations import confidence_components, percent_drop

from .applying import (
    APPLICABLE_KINDS,
    APPLY_FROM,
    ApplyState,
    apply_job,
    recommendation_apply_progress,
    recommendation_apply_start,
)
from .decisions import (
    MAX_REJECT_REASON_LENGTH,
    DecisionError,
    recommendation_approve,
    recommendation_reject,
)
from .models import OptimizationLog
from .services import optimization_list_near_vector

Status = OptimizationLog.Status
# The change page lists this many similar past optimizations.
SIMILAR_LIMIT = 5


class WideListMixin:
    """A list a DBA reads across (counters, times, sizes): the app list gives way to it at
    1280 px (it is one click away in the breadcrumbs)."""

    def changelist_view(self, request, extra_context=None):
        extra = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)


class RejectForm(forms.Form):
    """The reject button's reason: bounded, and no NUL (the reason is stored in JSON)."""

    reason = forms.CharField(required=False, max_length=MAX_REJECT_REASON_LENGTH)


@admin.register(OptimizationLog)
class OptimizationLogAdmin(WideListMixin, admin.ModelAdmin):
    # Ranked by impact, the columns a DBA decides on, narrow enough for 1280 px.
    list_display = [
        "short_recommendation",
        "kind",
        "table_display",
        "impact_display",
        "speedup_display",
        "size_display",
        "confidence_display",
        "status_badge",
    ]
    ordering = ["-impact", "-created_at"]
    list_filter = ["status", "kind", "target", "created_at"]
    search_fields = ["query_text", "ddl", "recommendation", "table_name"]
    date_hierarchy = "created_at"
    list_select_related = ["target"]
    actions = ["approve_selected", "reject_selected", "apply_selected"]
    change_form_template = "admin/optimizations/optimizationlog/change_form.html"

    class Media:
        css = {"all": ["dbarchitect/dbarchitect.css"]}  # status badges, code blocks

    fieldsets = [
        (
            None,
            {
                "fields": [
                    "recommendation",
                    "status_badge",
                    "kind",
                    "target",
                    "audit_link",
                    "table_name",
                    "columns",
                    "impact_display",
                    "confidence_display",
                    "estimated_gain",
                    "measured_gain",
                    "speedup_display",
                    "size_display",
                    "proposal_display",
                    "pr_url",
                ]
            },
        ),
        (
            "History",
            {"fields": ["created_at", "decided_by", "decided_at", "applied_at", "outcome"]},
        ),
        (
            "Identity",
            {"fields": ["id", "fingerprint", "queryids"], "classes": ["collapse"]},
        ),
    ]
    # Every field shown is read-only: decisions go through the buttons and actions.
    readonly_fields = flatten_fieldsets(fieldsets)

    # --- permissions: staff read and decide, superusers apply, nobody edits ---

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # The memory is what keeps the agent from repeating itself: never deleted by hand.
        return False

    def has_decide_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_apply_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding")

    # --- list columns ---

    @admin.display(description="recommendation", ordering="recommendation")
    def short_recommendation(self, obj):
        return format_html('<span title="{}">{}</span>', obj.recommendation, obj.label)

    @admin.display(description="table", ordering="table_name")
    def table_display(self, obj):
        return obj.table_short or "-"

    @admin.display(description="time saved", ordering="impact")
    def impact_display(self, obj):
        basis = OptimizationLog.ImpactBasis
        if obj.impact_basis == basis.NONE:
            return "-"
        return format_html(
            '<span class="dba-impact" title="{} ms per week, {}">{}</span>'
            '<br><span class="dba-basis dba-basis-{}">{}</span>',
            f"{obj.impact:,.0f}",
            obj.impact_basis,
            impact_text(obj.impact),
            obj.impact_basis,
            obj.impact_basis,
        )

    @admin.display(description="speed-up")
    def speedup_display(self, obj):
        return speedup_text(obj.measured_ms_before, obj.measured_ms_after)

    @admin.display(description="size", ordering="index_size_bytes")
    def size_display(self, obj):
        return bytes_text(obj.index_size_bytes)

    @admin.display(description="proposal")
    def proposal_display(self, obj):
        """The migration branch this recommendation went to, and its pull request (or why none)."""
        proposal = (obj.details or {}).get("proposal")
        if not proposal:
            return "-"
        files = format_html_join(", ", "<code>{}</code>", ((f,) for f in proposal.get("files", [])))
        pull = (
            format_html('<a href="{}">pull request</a>', obj.pr_url)
            if obj.pr_url
            else "no pull request: opening one needs GITHUB_TOKEN and GITHUB_REPOSITORY"
        )
        return format_html(
            'branch <code id="dba-proposal-branch">{}</code>, commit <code>{}</code>, '
            "migration {}; {}",
            proposal.get("branch", "?"),
            str(proposal.get("commit", ""))[:12],
            files or "-",
            pull,
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html('<span class="dba-badge dba-{}">{}</span>', obj.status, obj.status)

    @admin.display(description="confidence", ordering="confidence")
    def confidence_display(self, obj):
        return f"{obj.confidence:.2f}"

    @admin.display(description="estimated gain")
    def estimated_gain(self, obj):
        return _percent(percent_drop(obj.estimated_cost_before, obj.estimated_cost_after))

    @admin.display(description="measured gain")
    def measured_gain(self, obj):
        return _percent(percent_drop(obj.measured_ms_before, obj.measured_ms_after))

    @admin.display(description="audit")
    def audit_link(self, obj):
        if obj.audit_id is None:
            return "-"
        url = reverse("admin:dbarchitect_audit_report", args=[obj.audit_id])
        return format_html('<a href="{}">{}</a>', url, obj.audit)

    # --- the change page: query, DDL, plans, breakdown, similar, decision buttons ---

    def change_view(self, request, object_id, form_url="", extra_context=None):
        log = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if log is not None:
            extra.update(self._page_context(request, log))
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _page_context(self, request: HttpRequest, log: OptimizationLog) -> dict:
        similar = []
        if log.embedding is not None:
            similar = optimization_list_near_vector(
                vector=list(log.embedding),
                limit=SIMILAR_LIMIT,
                queryset=OptimizationLog.objects.exclude(pk=log.pk).select_related("target"),
            )
        breakdown = log.confidence_breakdown or {}
        can_decide = self.has_decide_permission(request)
        progress = recommendation_apply_progress(recommendation=log)
        lost = progress is not None and progress.state == ApplyState.LOST
        job = apply_job(log)
        applicable = (
            (log.status in APPLY_FROM or lost) and log.kind in APPLICABLE_KINDS and bool(log.ddl)
        )
        return {
            "log": log,
            "confidence": self.confidence_display(log),  # one rounding on the whole page
            "similar": similar,
            "embedded": log.embedding is not None,
            "components": confidence_components(breakdown),
            "formula": breakdown.get("formula", ""),
            "plan_trees": plan_tree_pair(log.plan_before, log.plan_after),
            "plans_json": [
                ("Before", _pretty(log.plan_before)),
                ("After", _pretty(log.plan_after)),
            ],
            "proposal": (log.details or {}).get("proposal"),
            "estimated_gain_percent": percent_drop(
                log.estimated_cost_before, log.estimated_cost_after
            ),
            "measured_gain_percent": percent_drop(log.measured_ms_before, log.measured_ms_after),
            # A statistics recommendation: the planner's row estimate before and after.
            "estimates": (log.details or {}).get("estimates"),
            # Only the transitions optimizations.decisions allows from this status get a button.
            "can_approve": can_decide and log.status == Status.PROPOSED,
            "can_reject": can_decide and log.status in (Status.PROPOSED, Status.APPROVED),
            "can_apply": self.has_apply_permission(request) and applicable,
            "applicable": applicable,
            "apply_progress": progress,
            "apply_job": job,
            "apply_finished_at": parse_datetime(job.get("finished_at") or ""),
        }

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<uuid:pk>/approve/",
                view(require_POST(self.approve_view)),
                name="optimizations_optimizationlog_approve",
            ),
            path(
                "<uuid:pk>/reject/",
                view(require_POST(self.reject_view)),
                name="optimizations_optimizationlog_reject",
            ),
            path(
                "<uuid:pk>/apply/",
                view(self.apply_view),
                name="optimizations_optimizationlog_apply",
            ),
            *super().get_urls(),
        ]

    def _change_url(self, log: OptimizationLog) -> str:
        return reverse("admin:optimizations_optimizationlog_change", args=[log.pk])

    def approve_view(self, request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
        if not self.has_decide_permission(request):
            raise PermissionDenied
        log = get_object_or_404(OptimizationLog, pk=pk)
        self._decide(
            request,
            [log],
            lambda item: recommendation_approve(recommendation=item, user=request.user),
            "approved",
        )
        return HttpResponseRedirect(self._change_url(log))

    def reject_view(self, request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
        if not self.has_decide_permission(request):
            raise PermissionDenied
        log = get_object_or_404(OptimizationLog, pk=pk)
        form = RejectForm(request.POST)
        if not form.is_valid():
            for error in form.errors["reason"]:
                self.message_user(request, f"Not rejected: reason: {error}", messages.ERROR)
            return HttpResponseRedirect(self._change_url(log))
        self._decide(
            request,
            [log],
            lambda item: recommendation_reject(
                recommendation=item, user=request.user, reason=form.cleaned_data["reason"]
            ),
            "rejected",
        )
        return HttpResponseRedirect(self._change_url(log))

    def apply_view(self, request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
        """GET: a confirmation page showing the DDL; POST: apply (superusers only)."""
        if not self.has_apply_permission(request):
            raise PermissionDenied("Only a superuser applies an index.")
        log = get_object_or_404(OptimizationLog, pk=pk)
        if request.method == "POST":
            self._apply(request, [log])
            return HttpResponseRedirect(self._change_url(log))
        return self._apply_confirmation(request, [log], action_url=request.path, is_action=False)

    # --- the same decisions as list actions ---

    @admin.action(description="Approve selected recommendations", permissions=["decide"])
    def approve_selected(self, request, queryset: QuerySet[OptimizationLog]):
        self._decide(
            request,
            list(queryset),
            lambda item: recommendation_approve(recommendation=item, user=request.user),
            "approved",
        )

    @admin.action(description="Reject selected recommendations", permissions=["decide"])
    def reject_selected(self, request, queryset: QuerySet[OptimizationLog]):
        self._decide(
            request,
            list(queryset),
            lambda item: recommendation_reject(
                recommendation=item, user=request.user, reason="rejected from the admin list"
            ),
            "rejected",
        )

    @admin.action(description="Apply selected indexes (superuser)", permissions=["apply"])
    def apply_selected(self, request, queryset: QuerySet[OptimizationLog]):
        """Like delete_selected: a confirmation page first, then the apply on its POST."""
        logs = list(queryset.order_by("created_at"))
        if request.POST.get("confirm") == "yes":
            self._apply(request, logs)
            return None
        return self._apply_confirmation(
            request, logs, action_url=request.get_full_path(), is_action=True
        )

    # --- shared by buttons and actions ---

    def _decide(self, request, logs: list[OptimizationLog], decide, done: str) -> None:
        ok = 0
        for log in logs:
            try:
                decide(log)
                ok += 1
            except DecisionError as exc:
                self.message_user(request, f"{_label(log)}: {exc}", messages.ERROR)
        if ok:
            noun = "recommendation" if ok == 1 else "recommendations"
            self.message_user(request, f"{ok} {noun} {done}.", messages.SUCCESS)

    def _apply(self, request, logs: list[OptimizationLog]) -> None:
        for log in logs:
            try:
                started = recommendation_apply_start(recommendation=log, applied_by=request.user)
            except DecisionError as exc:
                self.message_user(request, f"{_label(log)}: {exc}", messages.ERROR)
                continue
            except BrokerError:
                self.message_user(
                    request,
                    f"{_label(log)}: the task queue (Redis) is unavailable; nothing was queued "
                    "or built. Try again later.",
                    messages.ERROR,
                )
                continue
            failed = started.ran_here and started.recommendation.status != Status.APPLIED
            level = messages.ERROR if failed else messages.SUCCESS
            self.message_user(request, f"{_label(log)}: {started.message}", level)

    def _apply_confirmation(
        self, request, logs: list[OptimizationLog], *, action_url: str, is_action: bool
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Apply indexes?" if len(logs) > 1 else "Apply this index?",
            "opts": self.opts,
            "logs": logs,
            "action_url": action_url,
            "is_action": is_action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/optimizations/optimizationlog/apply_confirmation.html", context
        )


def _label(log: OptimizationLog) -> str:
    return log.ddl or log.recommendation[:80]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _pretty(plan: object) -> str:
    return json.dumps(plan, indent=2, sort_keys=False) if plan else ""
