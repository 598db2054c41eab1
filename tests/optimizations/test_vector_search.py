import pytest
from django.db import connection
from pgvector.django import CosineDistance

from optimizations.models import OptimizationLog
from optimizations.services import optimization_bulk_store
from optimizations.vector_search import nearest_rows

pytestmark = pytest.mark.django_db


def _ef_search() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        return int(cursor.fetchone()[0])


def test_connections_search_as_wide_as_the_setting(settings):
    assert _ef_search() == settings.HNSW_EF_SEARCH


def test_a_limit_over_the_setting_widens_the_search_for_that_query(settings):
    optimization_bulk_store(
        [OptimizationLog(query_text=f"SELECT * FROM t{i}", recommendation="r") for i in range(4)]
    )
    settings.HNSW_EF_SEARCH = 2
    vector = OptimizationLog.objects.first().embedding
    queryset = OptimizationLog.objects.annotate(
        distance=CosineDistance("embedding", vector)
    ).order_by("distance")[:4]
    rows = nearest_rows(queryset, limit=4)
    assert len(rows) == 4
    assert [r.distance for r in rows] == sorted(r.distance for r in rows)
    assert rows[0].distance == pytest.approx(0.0, abs=1e-6)
    assert _ef_search() == 4  # SET LOCAL: this transaction only


def test_a_short_index_scan_is_completed_by_an_exact_one():
    optimization_bulk_store(
        [OptimizationLog(query_text=f"SELECT * FROM t{i}", recommendation="r") for i in range(4)]
    )
    vector = OptimizationLog.objects.first().embedding
    with connection.cursor() as cursor:
        # The index scan alone, and one that can see a single candidate: it comes back short.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL hnsw.iterative_scan = off")
        cursor.execute("SET LOCAL hnsw.ef_search = 1")
    queryset = OptimizationLog.objects.annotate(
        distance=CosineDistance("embedding", vector)
    ).order_by("distance")[:4]
    assert len(list(queryset.all())) < 4
    rows = nearest_rows(queryset, limit=4)
    assert len(rows) == 4
    assert [r.distance for r in rows] == sorted(r.distance for r in rows)
