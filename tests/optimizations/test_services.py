import pytest
from django.core.management import call_command
from django.db import connection

from optimizations.models import OptimizationLog
from optimizations.services import (
    find_similar_optimizations,
    optimization_backfill_embeddings,
    optimization_bulk_store,
    optimization_list_similar,
    store_optimization,
)

pytestmark = pytest.mark.django_db


def test_migrations_create_the_extensions_and_the_hnsw_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension")
        extensions = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'optlog_embedding_hnsw'")
        (indexdef,) = cursor.fetchone()
    assert {"vector", "hypopg", "pg_stat_statements"} <= extensions
    assert "USING hnsw (embedding vector_cosine_ops)" in indexdef


def test_store_optimization_keeps_a_384_dim_embedding():
    log = store_optimization(
        "SELECT * FROM demo_user WHERE email = $1", "CREATE INDEX ON demo_user (email)", 93.5
    )
    log.refresh_from_db()
    assert len(log.embedding) == 384
    assert log.performance_gain == 93.5


def test_similarity_search_returns_the_closest_first_with_its_score():
    optimization_bulk_store(
        [
            OptimizationLog(
                query_text="SELECT * FROM demo_behavior_log WHERE user_id = $1 "
                "ORDER BY timestamp DESC LIMIT $2",
                recommendation="composite index on behavior logs (user_id, timestamp DESC)",
            ),
            OptimizationLog(
                query_text="SELECT * FROM demo_user WHERE lower(email) = $1",
                recommendation="expression index on lower(email) of users",
            ),
            OptimizationLog(
                query_text="SELECT count(*) FROM invoices GROUP BY status",
                recommendation="no index: aggregate over the whole table",
            ),
        ]
    )
    results = optimization_list_similar(query="find a user by lower-cased email", limit=3)
    assert results[0].optimization.recommendation.startswith("expression index")
    assert len(results) == 3
    scores = [r.similarity for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert len(find_similar_optimizations("find a user by lower-cased email", limit=1)) == 1


def test_similarity_search_rejects_a_limit_below_one():
    with pytest.raises(ValueError, match="limit"):
        optimization_list_similar(query="x", limit=0)


def test_backfill_embeds_only_the_rows_without_one():
    optimization_bulk_store(
        [OptimizationLog(query_text=f"SELECT {i}", recommendation="r") for i in range(3)],
        embed=False,
    )
    store_optimization("SELECT 99", "already embedded", 1.0)
    assert OptimizationLog.objects.filter(embedding=None).count() == 3
    assert optimization_backfill_embeddings(batch_size=2) == 3
    assert not OptimizationLog.objects.filter(embedding=None).exists()
    call_command("backfill_embeddings")  # nothing left: must not fail


def test_ensure_admin_creates_once_and_keeps_the_password(django_user_model, capsys):
    call_command("ensure_admin", "--username", "boss", "--password", "s3cret-pass!")
    call_command("ensure_admin", "--username", "boss")
    assert "exists" in capsys.readouterr().out
    user = django_user_model.objects.get(username="boss")
    assert user.is_superuser and user.check_password("s3cret-pass!")
