"""Admin for the demo tables; list pages stay fast on millions of logs.

No COUNT(*) of the whole table per page view (show_full_result_count off, an estimating
paginator), no default ordering that an index does not serve, users picked by id rather
than from a 20k-row <select>, and no filter that needs a DISTINCT over every log: the logs'
dates are a date-range filter, not a date_hierarchy (whose month list scans the table).
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import BehaviorLog, User
from .paginators import EstimatedCountPaginator
from .selectors import behavior_log_event_types


class StaffReadableAdmin(admin.ModelAdmin):
    """Any active staff user may read the demo data; edits follow Django's permissions."""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


class EventTypeFilter(admin.SimpleListFilter):
    title = _("event type")
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(event_type, event_type) for event_type in behavior_log_event_types()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(event_type=self.value())
        return queryset


@admin.register(User)
class UserAdmin(StaffReadableAdmin):
    list_display = ("email", "name_en", "name_vi", "created_at")
    search_fields = ("email",)
    readonly_fields = ("id", "created_at")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ("email",)  # served by the unique index on email

    @admin.display(description="name (en)")
    def name_en(self, obj: User) -> str:
        return (obj.name or {}).get("en", "")

    @admin.display(description="name (vi)")
    def name_vi(self, obj: User) -> str:
        return (obj.name or {}).get("vi", "")


@admin.register(BehaviorLog)
class BehaviorLogAdmin(StaffReadableAdmin):
    list_display = ("timestamp", "event_type", "user", "metadata")
    list_filter = (EventTypeFilter, ("timestamp", admin.DateFieldListFilter))
    list_select_related = ("user",)
    search_fields = ("user__email",)
    raw_id_fields = ("user",)
    readonly_fields = ("id",)
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ("-timestamp",)  # served by the timestamp index
