"""Writes and reads of the agent's memory (OptimizationLog)."""

from dataclasses import dataclass

from pgvector.django import CosineDistance

from .embeddings import generate_embedding, generate_embeddings
from .models import OptimizationLog
from .vector_search import nearest_rows


def embedding_text(log: OptimizationLog) -> str:
    """What the embedding of a recommendation is computed from: the query and the fix."""
    return f"{log.query_text}\n{log.recommendation}"


def optimization_store(
    *,
    query: str,
    recommendation: str,
    performance_gain: float,
    confidence: float = 0.0,
    embed: bool = True,
    **fields,
) -> OptimizationLog:
    log = OptimizationLog(
        query_text=query,
        recommendation=recommendation,
        performance_gain=performance_gain,
        confidence=confidence,
        **fields,
    )
    if embed:
        log.embedding = generate_embedding(embedding_text(log))
    log.save()
    return log


def optimization_embed(logs: list[OptimizationLog]) -> None:
    """Give every log without an embedding one, in one batched model call."""
    missing = [log for log in logs if log.embedding is None]
    vectors = generate_embeddings([embedding_text(log) for log in missing])
    for log, vector in zip(missing, vectors, strict=True):
        log.embedding = vector


def optimization_bulk_store(logs: list[OptimizationLog], *, embed: bool = True) -> list:
    """Embed (in batches) and insert many recommendations in one statement."""
    if embed:
        optimization_embed(logs)
    return OptimizationLog.objects.bulk_create(logs)


@dataclass(frozen=True)
class SimilarOptimization:
    optimization: OptimizationLog
    similarity: float


def optimization_list_similar(
    *, query: str, limit: int = 5, queryset=None
) -> list[SimilarOptimization]:
    """The stored optimizations nearest to a query text, closest first (HNSW, cosine)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    vector = generate_embedding(query)
    return optimization_list_near_vector(vector=vector, limit=limit, queryset=queryset)


def optimization_list_near_vector(
    *, vector: list[float], limit: int = 5, queryset=None
) -> list[SimilarOptimization]:
    """Nearest stored optimizations to an embedding, closest first (HNSW, cosine)."""
    queryset = OptimizationLog.objects.all() if queryset is None else queryset
    search = (
        queryset.exclude(embedding=None)
        .defer("embedding")  # 384 floats per row that no caller of a search reads
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")[:limit]
    )
    rows = nearest_rows(search, limit=limit)
    return [SimilarOptimization(optimization=row, similarity=1.0 - row.distance) for row in rows]


def optimization_backfill_embeddings(*, batch_size: int = 256) -> int:
    """Embed every stored optimization that has no embedding yet; returns how many."""
    done = 0
    while True:
        batch = list(
            OptimizationLog.objects.filter(embedding=None).order_by("created_at")[:batch_size]
        )
        if not batch:
            return done
        optimization_embed(batch)
        OptimizationLog.objects.bulk_update(batch, ["embedding"])
        done += len(batch)


# The seed's PgvectorService API, kept for callers that know it.
def store_optimization(query: str, recommendation: str, gain: float, **fields) -> OptimizationLog:
    return optimization_store(
        query=query, recommendation=recommendation, performance_gain=gain, **fields
    )


def find_similar_optimizations(query: str, limit: int = 5) -> list[SimilarOptimization]:
    return optimization_list_similar(query=query, limit=limit)
