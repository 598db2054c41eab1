"""Similar-optimization search, top 5, over 100k stored OptimizationLog rows.

Vectors: REAL varied texts are embedded for real by the product's model; the other rows
are small real perturbations of those vectors (Gaussian noise, renormalized), because
embedding 100k texts on 2 shared CPU cores would take most of an hour. Queries are new
texts (not stored), embedded for real.

similar_p50_ms is the search the product runs (optimization_list_near_vector: HNSW,
cosine, the service's ef_search) for a query whose embedding is known; the end-to-end
figure through optimization_list_similar (embedding the query text first) is reported
beside it. Recall@5 is against an exact scan (SET enable_indexscan = off) of the same rows.
"""

import time

import numpy as np
from _common import bench_database, emit, log, percentile, query_texts, timed

ROWS = 100_000
REAL = 5_000
QUERIES = 100
NOISE = 0.03  # per dimension; a perturbed vector keeps a cosine of about 0.85 to its source
COPY_BATCH = 20_000


def load_rows(vectors: np.ndarray, texts: list[str]) -> None:
    """Every row through one template row: the model's own defaults for every other column,
    staged by binary COPY (pgvector's adapter), then one INSERT ... SELECT."""
    from django.db import connection
    from pgvector.psycopg.vector import register_vector_info
    from psycopg import sql
    from psycopg.types import TypeInfo

    from optimizations.models import OptimizationLog

    template = OptimizationLog.objects.create(query_text="template", recommendation="template")
    table = OptimizationLog._meta.db_table
    staged = {"id": "id", "query_text": "query_text", "recommendation": "recommendation"}
    staged["embedding"] = "embedding"
    columns = [field.column for field in OptimizationLog._meta.concrete_fields]
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        # Only this cursor learns the binary vector format; Django's adapters stay as they are.
        register_vector_info(cursor, TypeInfo.fetch(connection.connection, "vector"))
        cursor.execute(
            "CREATE TEMP TABLE bench_staging "
            "(id uuid, query_text text, recommendation text, embedding vector(384))"
        )
        copy_sql = "COPY bench_staging FROM STDIN (FORMAT BINARY)"
        with cursor.copy(copy_sql) as copy:
            copy.set_types(["uuid", "text", "text", "vector"])
            for i, vector in enumerate(vectors):
                query, _, fix = texts[i % len(texts)].partition("\n")
                copy.write_row((_uuid(i), query, fix, vector))
        select = [
            sql.SQL("s.{}").format(sql.Identifier(staged[column]))
            if column in staged
            else sql.SQL("t.{}").format(sql.Identifier(column))
            for column in columns
        ]
        cursor.execute(
            sql.SQL(
                "INSERT INTO {table} ({columns}) SELECT {select} "
                "FROM bench_staging AS s CROSS JOIN {table} AS t WHERE t.id = %s"
            ).format(
                table=sql.Identifier(table),
                columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
                select=sql.SQL(", ").join(select),
            ),
            [template.id],
        )
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(table)), [template.id]
        )
        cursor.execute("DROP TABLE bench_staging")


def _uuid(i: int):
    import uuid

    return uuid.UUID(int=(0x5EED << 64) | i)


def main() -> None:
    with bench_database("bench_similar"):
        from django.db import connection, transaction
        from pgvector.django import CosineDistance
        from psycopg import sql

        from optimizations.embeddings import generate_embeddings
        from optimizations.models import OptimizationLog
        from optimizations.services import optimization_list_near_vector, optimization_list_similar

        texts = list(dict.fromkeys(query_texts(REAL * 2, seed=11)))[:REAL]
        log(f"embedding {len(texts)} real texts")
        embedded: list = []
        embed_s = timed(lambda: embedded.extend(generate_embeddings(texts)))
        real = np.asarray(embedded, dtype=np.float32)
        rng = np.random.default_rng(5)
        derived = real[rng.integers(0, len(real), size=ROWS - len(real))]
        derived = derived + rng.normal(0, NOISE, size=derived.shape).astype(np.float32)
        derived /= np.linalg.norm(derived, axis=1, keepdims=True)
        vectors = np.vstack([real, derived])

        # Load without the HNSW index, then build it once: what a bulk load would do.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = %s AND indexdef ILIKE %s",
                [OptimizationLog._meta.db_table, "%USING hnsw%"],
            )
            hnsw = cursor.fetchall()
            if len(hnsw) != 1:
                raise RuntimeError(f"expected one HNSW index on the optimization log, found {hnsw}")
            ((index_name, index_ddl),) = hnsw
            cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index_name)))
        log(f"loading {ROWS} rows")
        load_s = timed(lambda: load_rows(vectors, texts))
        log("building the HNSW index")
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            build_s = timed(lambda: cursor.execute(index_ddl))
            cursor.execute(
                sql.SQL("ANALYZE {}").format(sql.Identifier(OptimizationLog._meta.db_table))
            )
        if OptimizationLog.objects.count() != ROWS:
            raise RuntimeError("the optimization log does not hold the rows loaded")

        query_list = [t for t in query_texts(QUERIES * 3, seed=99) if t not in set(texts)][:QUERIES]
        query_vectors = generate_embeddings(query_list)

        def exact_top5(vector) -> list:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
                return list(
                    OptimizationLog.objects.exclude(embedding=None)
                    .annotate(distance=CosineDistance("embedding", vector))
                    .order_by("distance")
                    .values_list("id", flat=True)[:5]
                )

        for vector in query_vectors[:10]:  # warm up
            optimization_list_near_vector(vector=vector, limit=5)
        times, recalls = [], []
        for vector in query_vectors:
            started = time.perf_counter()
            found = optimization_list_near_vector(vector=vector, limit=5)
            times.append(time.perf_counter() - started)
            exact = set(exact_top5(vector))
            recalls.append(len(exact & {hit.optimization.id for hit in found}) / 5)
        end_to_end = [
            timed(lambda q=q: optimization_list_similar(query=q, limit=5)) for q in query_list[:30]
        ]
        emit(
            {
                "similar_rows": ROWS,
                "similar_real_embeddings": len(texts),
                "similar_vectors_note": (
                    f"{len(texts)} texts embedded for real, {ROWS - len(texts)} rows are real "
                    f"vectors plus Gaussian noise (sd {NOISE} per dimension), renormalized"
                ),
                "similar_queries": QUERIES,
                "similar_p50_ms": percentile(times, 0.5) * 1000,
                "similar_p95_ms": percentile(times, 0.95) * 1000,
                "similar_recall_at_5": float(np.mean(recalls)),
                "similar_end_to_end_p50_ms": percentile(end_to_end, 0.5) * 1000,
                "similar_end_to_end_note": (
                    "optimization_list_similar: embeds the query text, then searches"
                ),
                "similar_load_s": load_s,
                "similar_hnsw_build_s": build_s,
                "similar_embed_real_s": embed_s,
            }
        )


if __name__ == "__main__":
    main()
