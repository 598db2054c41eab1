"""The project's default admin site: every ModelAdmin registered on it, the project's and the
installed apps' (auth, celery-beat, authtoken), refuses malformed list input with a message.

Django's changelist passes two inputs on as they come: the ids an action is posted with
(`pk__in=["not-an-id"]` raises on a UUID or integer key) and the date hierarchy's year,
month and day (a year past 9999 raises OverflowError). A browser never sends either; a fuzzer
or a stale form does, and each was a 500.
"""

import datetime

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError

from config.parsing import parse_int


def invalid_selection(values: list[str], *, pk_field) -> list[str]:
    """The posted ids that the primary key cannot hold ("abc" for a UUID, "1.5" for an int)."""
    invalid = []
    for value in values:
        try:
            pk_field.to_python(value)
        except ValidationError:
            invalid.append(value)
    return invalid


def date_hierarchy_valid(params, *, field: str) -> bool:
    """Whether the year/month/day the date hierarchy reads make a date Django can bound.

    Django adds a year (or a month, or a day) to the date for the upper bound, so the last
    year is out too.
    """
    year = params.get(f"{field}__year")
    if year is None:
        return True  # Django ignores a month or a day without a year
    parts = [year, params.get(f"{field}__month") or "1", params.get(f"{field}__day") or "1"]
    numbers = [parse_int(part) for part in parts]
    if None in numbers:
        return False
    try:
        date = datetime.date(*numbers)
    except (ValueError, OverflowError):
        return False
    return datetime.MINYEAR < date.year < datetime.MAXYEAR


class CheckedInputMixin:
    """Malformed action ids are an error message; a malformed date hierarchy is Django's own
    invalid-lookup answer (a redirect to ?e=1), as for any other bad filter."""

    def response_action(self, request, queryset):
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        invalid = invalid_selection(selected, pk_field=self.opts.pk)
        if invalid:
            self.message_user(
                request,
                f"Not a valid id: {invalid[0]!r}. Select the items in the list; "
                "nothing was changed.",
                messages.ERROR,
            )
            return None  # the changelist redirects back to itself with the message
        return super().response_action(request, queryset)

    def get_changelist_instance(self, request):
        field = self.date_hierarchy
        if field and not date_hierarchy_valid(request.GET, field=field):
            raise IncorrectLookupParameters(f"Not a valid {field} date.")
        return super().get_changelist_instance(request)


class AdminSite(admin.AdminSite):
    """Django's admin site; each ModelAdmin registered on it gets CheckedInputMixin."""

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, CheckedInputMixin):
            admin_class = type(
                admin_class.__name__,
                (CheckedInputMixin, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        super().register(model_or_iterable, admin_class, **options)


class CheckedAdminConfig(AdminConfig):
    """django.contrib.admin with AdminSite as `admin.site` (INSTALLED_APPS names this)."""

    default_site = "config.admin_site.AdminSite"
