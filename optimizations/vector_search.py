"""Nearest-neighbour reads over pgvector HNSW indexes, shared by every similarity search."""

from django.conf import settings
from django.db import connection, transaction


def nearest_rows(queryset, *, limit: int) -> list:
    """Evaluate a closest-first, `limit`-sliced queryset.

    The connection already searches settings.HNSW_EF_SEARCH candidates with iterative scans
    (config/settings/base.py), so a search is one round trip; only a larger limit needs a
    wider search, set for this query alone.
    """
    if limit <= settings.HNSW_EF_SEARCH:
        return list(queryset)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [limit])
        return list(queryset)
