"""Admin pagination that does not COUNT(*) millions of rows on every page view."""

import json
from functools import cached_property

from django.core.paginator import Paginator
from django.db import connections

# Up to this many rows the count is exact (a cheap bounded scan); past it, the planner's estimate.
EXACT_COUNT_LIMIT = 10_000


class EstimatedCountPaginator(Paginator):
    """Exact counts for small results, the planner's row estimate for large ones."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        exact = queryset[: EXACT_COUNT_LIMIT + 1].count()
        if exact <= EXACT_COUNT_LIMIT:
            return exact
        return max(exact, _planner_rows(queryset))


def _planner_rows(queryset) -> int:
    """The row estimate of the queryset's top plan node (EXPLAIN, nothing is run)."""
    query = queryset.order_by().query
    compiler = query.get_compiler(queryset.db)
    sql, params = compiler.as_sql()
    with connections[queryset.db].cursor() as cursor:
        # The ORM's own SQL, its values still separate parameters.
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # Django loads json/jsonb as text on psycopg 3
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
