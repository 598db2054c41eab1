"""Embeddings of 1,000 query texts through the product's embedding service.

Baselines in the same run: the model's own batched encode() (what the product would be
if it only wrapped the model; it forms its batches better and runs one per core, see
optimizations/embeddings.py) and one text at a time (what a naive caller would do; timed
on a sample per run and reported per text). Medians over REPEAT interleaved runs.
"""

import numpy as np
from _common import django_only, emit, log, median, query_texts, timed

TEXTS = 1_000
ONE_AT_A_TIME_SAMPLE = 50
REPEAT = 5


def main() -> None:
    django_only()
    from django.conf import settings

    from optimizations.embeddings import (
        _model,
        generate_embedding,
        generate_embeddings,
        native_bfloat16,
        uses_bfloat16,
    )

    def precision(count: int) -> str:
        return "bfloat16" if uses_bfloat16(count) else "float32"

    texts = query_texts(TEXTS, seed=3)
    if len(set(texts)) < TEXTS * 0.9:
        raise RuntimeError("the generated texts are not varied enough to measure anything")
    model = _model()  # loading the model is once per process: not what is measured
    model.encode(texts[:64], normalize_embeddings=True, show_progress_bar=False)  # warm up

    def raw():
        return model.encode(
            texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    product_vectors = np.asarray(generate_embeddings(texts))
    raw_vectors = raw()
    agreement = float(np.min(np.sum(product_vectors * raw_vectors, axis=1)))
    if product_vectors.shape != (TEXTS, 384) or agreement < 0.9999:
        raise RuntimeError(f"the product's vectors differ from the model's (min cos {agreement})")

    product_s, raw_s, single_per_text_s = [], [], []
    for run in range(REPEAT):
        product_s.append(timed(lambda: generate_embeddings(texts)))
        raw_s.append(timed(raw))
        sample = texts[run * ONE_AT_A_TIME_SAMPLE : (run + 1) * ONE_AT_A_TIME_SAMPLE]
        single = timed(lambda sample=sample: [generate_embedding(text) for text in sample])
        single_per_text_s.append(single / len(sample))
        log(
            f"run {run + 1}/{REPEAT}: product {product_s[-1]:.2f}s, model encode "
            f"{raw_s[-1]:.2f}s, one at a time {single_per_text_s[-1] * 1000:.1f} ms/text"
        )

    product_rate = TEXTS / median(product_s)
    raw_rate = TEXTS / median(raw_s)
    single_rate = 1 / median(single_per_text_s)
    emit(
        {
            "embed_texts": TEXTS,
            "embed_texts_per_s": product_rate,
            "embed_raw_texts_per_s": raw_rate,
            "embed_one_at_a_time_texts_per_s": single_rate,
            "embed_ratio_to_raw": product_rate / raw_rate,
            "embed_speedup_vs_one_at_a_time": product_rate / single_rate,
            "embed_one_at_a_time_note": (
                f"{ONE_AT_A_TIME_SAMPLE} texts per run through generate_embedding(), per-text rate"
            ),
            "embed_max_cosine_distance_vs_model": 1 - agreement,
            "embed_precision_note": (
                f"EMBEDDING_PRECISION={settings.EMBEDDING_PRECISION} (CPU with native "
                f"bfloat16: {native_bfloat16()}): batches in {precision(TEXTS)}, one text in "
                f"{precision(1)}; the model's own encode in float32"
            ),
            "embed_repeats": REPEAT,
        }
    )


if __name__ == "__main__":
    main()
