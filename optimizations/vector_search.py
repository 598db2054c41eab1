"""Nearest-neighbour reads over pgvector HNSW indexes, shared by every similarity search."""

from django.conf import settings
from django.db import connection, transaction


def nearest_rows(queryset, *, limit: int) -> list:
    """Evaluate a closest-first, `limit`-sliced queryset.

    The connection already searches settings.HNSW_EF_SEARCH candidates with iterative scans
    (config/settings/base.py), so a search is one round trip; only a larger limit needs a
    wider search, set for this query alone.

    An HNSW scan can still come back short: its graph keeps the entries of deleted and
    rolled-back rows until a vacuum, and they take up the candidates it visits. When fewer
    than `limit` rows come back, an exact scan says what is really there (cheap when the
    rows are few, which is when it happens).
    """
    if limit <= settings.HNSW_EF_SEARCH:
        rows = list(queryset)
    else:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [limit])
            rows = list(queryset)
    if len(rows) < limit:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_seqscan = on")
            rows = list(queryset.all())
    return rows
