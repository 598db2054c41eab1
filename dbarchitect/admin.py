"""Admin for the agent: targets, audits (with the dashboard and the report), query snapshots.

Staff read everything (the product's rule: every admin page needs a staff user); the only
writes are a target's two switches (Django's change permission) and "Run audit now".
"""

import uuid

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from config.parsing import parse_int
from optimizations.admin import WideListMixin
from presentation.charts import frontier_chart, phase_chart
from presentation.formatting import count_text, ms_text, seconds_text

from .dashboard import audit_progress, dashboard_data
from .models import AuditRun, QuerySnapshot, Target
from .reports import audit_report_build, audit_report_markdown
from .services import audit_queue

# The AuditRun change page lists this many of the audit's slow queries inline.
INLINE_SNAPSHOTS = 50
# The snapshot list cuts each query at this many characters, so the counters fit 1280 px.
LIST_QUERY_CHARS = 60
# "Run audit now": verify on, off, or as the target's allow_verify switch says ("").
VERIFY_CHOICES = {"": None, "on": True, "off": False}


class StaffReadMixin:
    """Any active staff user may read; adding and editing follow Django's permissions."""

    class Media:
        css = {"all": ["dbarchitect/dbarchitect.css"]}  # status badges, code blocks

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Target)
class TargetAdmin(StaffReadMixin, admin.ModelAdmin):
    list_display = ["name", "enabled", "allow_verify", "last_audit", "audit_count"]
    list_filter = ["enabled", "allow_verify"]
    search_fields = ["name"]
    fields = ["name", "enabled", "allow_verify", "last_audit", "audit_count", "created_at"]
    readonly_fields = ["name", "last_audit", "audit_count", "created_at"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(last_audit_at=Max("audits__started_at"), audits_total=Count("audits"))
        )

    def has_delete_permission(self, request, obj=None):
        # Targets come from the environment; their audits and recommendations refer to them.
        return False

    @admin.display(description="last audit", ordering="last_audit_at")
    def last_audit(self, obj):
        return obj.last_audit_at or "never"

    @admin.display(description="audits", ordering="audits_total")
    def audit_count(self, obj):
        return obj.audits_total


class SnapshotNumbersMixin:
    """A snapshot's counters as people read them (1,234 calls, 58.0 ms, 1.45 s)."""

    @admin.display(description="calls", ordering="calls")
    def calls_display(self, obj):
        return count_text(obj.calls)

    @admin.display(description="mean", ordering="mean_time_ms")
    def mean_display(self, obj):
        return ms_text(obj.mean_time_ms)

    @admin.display(description="total", ordering="total_time_ms")
    def total_display(self, obj):
        return ms_text(obj.total_time_ms)

    @admin.display(description="rows", ordering="rows")
    def rows_display(self, obj):
        return count_text(obj.rows)


class SlowSnapshotInline(SnapshotNumbersMixin, admin.TabularInline):
    model = QuerySnapshot
    verbose_name_plural = f"slow queries (the heaviest {INLINE_SNAPSHOTS})"
    fields = [
        "snapshot_link",
        "short_query",
        "calls_display",
        "mean_display",
        "total_display",
        "rows_display",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        slow = super().get_queryset(request).filter(is_slow=True).order_by("-total_time_ms")
        ids = slow.values_list("pk", flat=True)[:INLINE_SNAPSHOTS]
        return slow.filter(pk__in=list(ids))

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="queryid")
    def snapshot_link(self, obj):
        url = reverse("admin:dbarchitect_querysnapshot_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.queryid)

    @admin.display(description="query")
    def short_query(self, obj):
        return _short(obj.query)


@admin.register(AuditRun)
class AuditRunAdmin(StaffReadMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "target",
        "status_badge",
        "duration",
        "queries_collected",
        "queries_analyzed",
        "recommendations_count",
        "report_link",
    ]
    list_filter = ["status", "target", "verify", "started_at"]
    search_fields = ["target__name", "error", "task_id"]
    date_hierarchy = "started_at"
    list_select_related = ["target"]
    inlines = [SlowSnapshotInline]
    fieldsets = [
        (None, {"fields": ["target", "status_badge", "report_link", "verify", "task_id"]}),
        ("When", {"fields": ["started_at", "finished_at", "duration", "phases"]}),
        (
            "Counts",
            {"fields": ["queries_collected", "queries_analyzed", "recommendations_count"]},
        ),
        ("Skipped and errors", {"fields": ["skipped", "error"], "classes": ["collapse"]}),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html('<span class="dba-badge dba-{}">{}</span>', obj.status, obj.status)

    @admin.display(description="duration")
    def duration(self, obj):
        seconds = obj.duration_seconds
        return "running" if seconds is None else seconds_text(seconds)

    @admin.display(description="phases")
    def phases(self, obj):
        chart = phase_chart(obj.phase_seconds)
        if chart is None:
            return "-"
        return ", ".join(
            f"{name} {seconds_text(seconds)}"
            for name, seconds in zip(chart.labels, chart.series[0].data, strict=True)
        )

    @admin.display(description="report")
    def report_link(self, obj):
        url = reverse("admin:dbarchitect_audit_report", args=[obj.pk])
        return format_html('<a href="{}">report</a>', url)

    # --- extra pages: the dashboard, "Run audit now" and its progress, the report ---

    def get_urls(self):
        view = self.admin_site.admin_view  # active staff only; anonymous -> the login page
        return [
            path("dashboard/", view(self.dashboard_view), name="dbarchitect_dashboard"),
            path("run/", view(require_POST(self.run_audit_view)), name="dbarchitect_audit_run"),
            path(
                "<uuid:audit_id>/progress/",
                view(require_GET(self.progress_view)),
                name="dbarchitect_audit_progress",
            ),
            path(
                "<uuid:audit_id>/report/",
                view(self.report_view),
                name="dbarchitect_audit_report",
            ),
            path(
                "<uuid:audit_id>/report.md",
                view(self.report_markdown_view),
                name="dbarchitect_audit_report_markdown",
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        dashboard = dashboard_data()
        context = {
            **self.admin_site.each_context(request),
            "title": "DB Architect dashboard",
            "is_nav_sidebar_enabled": False,  # the charts and the ranked table need the width
            "opts": self.opts,
            "dashboard": dashboard,
            "charts": dashboard.charts(),
            "targets": Target.objects.filter(enabled=True),
            "follow_audit": _uuid_or_none(request.GET.get("audit")),
        }
        return TemplateResponse(request, "admin/dbarchitect/dashboard.html", context)

    def run_audit_view(self, request: HttpRequest) -> HttpResponse:
        """Queue one audit (dbarchitect.services.audit_queue) and follow it on the dashboard."""
        target = request.POST.get("target", "").strip()
        choice = request.POST.get("verify", "")
        if not target or choice not in VERIFY_CHOICES:
            self.message_user(
                request,
                "Choose a target to audit, and verify: on, off or empty (the target's setting).",
                messages.ERROR,
            )
            return HttpResponseRedirect(_dashboard_url())
        verify = VERIFY_CHOICES[choice]
        try:
            audit_id = audit_queue(target=target, verify=verify)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(_dashboard_url())
        self.message_user(request, f"Audit of {target} queued ({audit_id}).", messages.SUCCESS)
        return HttpResponseRedirect(_dashboard_url(audit_id))

    def progress_view(self, request: HttpRequest, audit_id: uuid.UUID) -> JsonResponse:
        """What the dashboard polls while an audit runs."""
        progress = audit_progress(audit_id=audit_id)
        payload = progress.as_dict()
        if progress.exists:
            payload["report_url"] = reverse("admin:dbarchitect_audit_report", args=[audit_id])
        return JsonResponse(payload)

    def report_view(self, request: HttpRequest, audit_id: uuid.UUID) -> TemplateResponse:
        audit = get_object_or_404(AuditRun.objects.select_related("target"), pk=audit_id)
        stored = audit.report if isinstance(audit.report, dict) else {}
        phases, frontier = phase_chart(audit.phase_seconds), frontier_chart(stored.get("frontier"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Audit report: {audit.target.name}, {audit.started_at:%Y-%m-%d %H:%M}",
            "is_nav_sidebar_enabled": False,
            "opts": self.opts,
            "original": audit,
            "report": audit_report_build(audit=audit),
            "phase_chart": phases.as_dict() if phases else None,
            "frontier_chart": frontier.as_dict() if frontier else None,
            "budget": stored.get("budget"),
            "proposal": stored.get("proposal"),
            "small_drops": stored.get("small_drops_left_out") or {},
        }
        return TemplateResponse(request, "admin/dbarchitect/audit_report.html", context)

    def report_markdown_view(self, request: HttpRequest, audit_id: uuid.UUID) -> HttpResponse:
        audit = get_object_or_404(AuditRun.objects.select_related("target"), pk=audit_id)
        response = HttpResponse(
            audit_report_markdown(audit=audit), content_type="text/markdown; charset=utf-8"
        )
        filename = f"audit-{audit.target.name}-{audit.started_at:%Y%m%d-%H%M}.md"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@admin.register(QuerySnapshot)
class QuerySnapshotAdmin(WideListMixin, SnapshotNumbersMixin, StaffReadMixin, admin.ModelAdmin):
    list_display = [
        "queryid",
        "short_query",
        "audit_display",
        "calls_display",
        "mean_display",
        "total_display",
        "rows_display",
    ]
    list_filter = ["is_slow", "audit__target", "audit__started_at"]
    search_fields = ["query"]
    list_select_related = ["audit__target"]
    readonly_fields = [field.name for field in QuerySnapshot._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        """A number searches the queryid too (staff paste it from pg_stat_statements)."""
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        queryid = parse_int(search_term.strip())
        if queryid is not None and -(2**63) <= queryid < 2**63:  # queryids are bigints
            queryset |= self.model.objects.filter(queryid=queryid)
        return queryset, duplicates

    @admin.display(description="query")
    def short_query(self, obj):
        return _short(obj.query, limit=LIST_QUERY_CHARS)

    @admin.display(description="audit", ordering="audit__started_at")
    def audit_display(self, obj):
        return f"{obj.audit.target.name} {obj.audit.started_at:%Y-%m-%d %H:%M}"


def _short(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _dashboard_url(audit_id: uuid.UUID | None = None) -> str:
    url = reverse("admin:dbarchitect_dashboard")
    return f"{url}?audit={audit_id}" if audit_id else url


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
