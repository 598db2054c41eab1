"""Reads of the agent's memory for the API and the admin: filtered lists and one item."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from .models import OptimizationLog

# What a list may be ordered by ("-" first: descending).
ORDERINGS = (
    "-impact",  # the default: the largest workload time saved per week first
    "impact",
    "created_at",
    "-created_at",
    "confidence",
    "-confidence",
    "performance_gain",
    "-performance_gain",
)


@dataclass(frozen=True)
class OptimizationFilters:
    """Every filter is optional; None means "any"."""

    status: str | None = None
    kind: str | None = None
    target: str | None = None  # a Target's name
    created_after: datetime | None = None
    created_before: datetime | None = None
    min_confidence: float | None = None
    ordering: str = "-impact"


# Each filter of OptimizationFilters (but the ordering) and the lookup it stands for.
FILTER_LOOKUPS = {
    "status": "status",
    "kind": "kind",
    "target": "target__name",
    "created_after": "created_at__gte",
    "created_before": "created_at__lt",
    "min_confidence": "confidence__gte",
}


# Shown by the detail view only, and the largest columns (plans, the served queries): a
# list page leaves them in the database instead of decoding them for every row.
DETAIL_ONLY_FIELDS = ("embedding", "plan_before", "plan_after", "details", "confidence_breakdown")


def optimization_list(*, filters: OptimizationFilters) -> QuerySet[OptimizationLog]:
    """Recommendations matching every given filter, in a stable order for paging."""
    if filters.ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {', '.join(ORDERINGS)}")
    given = {
        lookup: value
        for name, lookup in FILTER_LOOKUPS.items()
        if (value := getattr(filters, name)) is not None
    }
    # A list names the audit by id: no join to its report.
    queryset = OptimizationLog.objects.select_related("target", "decided_by")
    queryset = queryset.filter(**given).defer(*DETAIL_ONLY_FIELDS)
    # The id breaks ties so that no row shows on two pages or on none.
    return queryset.order_by(filters.ordering, "id")


def optimization_get(*, optimization_id: uuid.UUID | str) -> OptimizationLog | None:
    """One recommendation, or None when the id is malformed or unknown."""
    try:
        key = (
            optimization_id
            if isinstance(optimization_id, uuid.UUID)
            else uuid.UUID(str(optimization_id))
        )
    except ValueError:
        return None
    return (
        OptimizationLog.objects.select_related("target", "audit", "decided_by")
        .defer("embedding")
        .filter(pk=key)
        .first()
    )
