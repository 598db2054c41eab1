import math

import pytest

from optimizations.embeddings import generate_embedding, generate_embeddings


def _cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embedding_has_384_normalized_dimensions():
    vector = generate_embedding("SELECT * FROM demo_user WHERE email = $1")
    assert len(vector) == 384
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "auto"])
def test_embedding_is_deterministic_and_batch_matches_single(settings, precision):
    settings.EMBEDDING_PRECISION = precision
    text = "SELECT id FROM demo_behavior_log WHERE user_id = $1 ORDER BY timestamp DESC"
    single = generate_embedding(text)
    batch = generate_embeddings(["other text", text])
    assert generate_embedding(text) == pytest.approx(single, abs=1e-6)
    # A batch may run in bfloat16 where the CPU has it (auto): near, not equal.
    assert _cosine(batch[1], single) > 0.9999


def test_similar_topics_are_nearer_than_unrelated_ones():
    emails = generate_embedding("find users by their email address")
    emails_again = generate_embedding("look up a user's email")
    timestamps = generate_embedding("behaviour log events ordered by timestamp")
    assert _cosine(emails, emails_again) > _cosine(emails, timestamps)


def test_empty_batch_gives_no_vectors():
    assert generate_embeddings([]) == []


def _varied_texts(count):
    columns = ["user_id", "event_type", "timestamp", "email", "created_at", "metadata"]
    return [
        f"SELECT * FROM table_{i % 7} WHERE {columns[i % 6]} = $1"
        + " AND x = $2" * (i % 9)
        + f" ORDER BY {columns[(i + 1) % 6]} DESC LIMIT {i}"
        for i in range(count)
    ]


def test_many_texts_in_parallel_batches_match_the_models_own_encode(settings):
    from optimizations.embeddings import _model

    settings.EMBEDDING_PRECISION = "float32"
    texts = _varied_texts(70)  # several batches, of different token counts, on several threads
    expected = _model().encode(texts, normalize_embeddings=True, show_progress_bar=False)
    vectors = generate_embeddings(texts)
    assert len(vectors) == len(texts)
    for vector, want in zip(vectors, expected, strict=True):
        assert vector == pytest.approx(want.tolist(), abs=1e-5)


def test_bfloat16_batches_stay_within_cosine_0_9999_of_float32(settings):
    # Forced, so that it runs on any CPU: where bfloat16 is not native torch emulates it.
    texts = _varied_texts(40)
    settings.EMBEDDING_PRECISION = "float32"
    exact = generate_embeddings(texts)
    settings.EMBEDDING_PRECISION = "bfloat16"
    reduced = generate_embeddings(texts)
    assert reduced != exact  # the autocast took effect
    for vector, want in zip(reduced, exact, strict=True):
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)
        assert _cosine(vector, want) > 0.9999


def test_auto_precision_uses_bfloat16_for_batches_only_where_the_cpu_has_it(settings):
    from optimizations.embeddings import native_bfloat16

    texts = _varied_texts(20)
    results = {}
    for precision in ("float32", "bfloat16", "auto"):
        settings.EMBEDDING_PRECISION = precision
        results[precision] = (generate_embeddings(texts), generate_embedding(texts[0]))
    want_batch = results["bfloat16" if native_bfloat16() else "float32"][0]
    for vector, want in zip(results["auto"][0], want_batch, strict=True):
        assert vector == pytest.approx(want, abs=1e-6)
    # One text alone is faster in float32, whatever the CPU.
    assert results["auto"][1] == pytest.approx(results["float32"][1], abs=1e-6)
    assert results["auto"][1] != pytest.approx(results["bfloat16"][1], abs=1e-6)


def test_a_forked_child_encodes_many_texts_after_its_parent_did():
    import multiprocessing

    texts = _varied_texts(40)
    in_parent = generate_embeddings(texts)  # the parent's worker threads now exist
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        in_child = pool.apply_async(generate_embeddings, (texts,)).get(timeout=60)
    assert len(in_child) == len(in_parent)
    for child_vector, parent_vector in zip(in_child, in_parent, strict=True):
        assert child_vector == pytest.approx(parent_vector, abs=1e-6)
