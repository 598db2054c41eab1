import math

import pytest

from optimizations.embeddings import generate_embedding, generate_embeddings


def _cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embedding_has_384_normalized_dimensions():
    vector = generate_embedding("SELECT * FROM demo_user WHERE email = $1")
    assert len(vector) == 384
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)


def test_embedding_is_deterministic_and_batch_matches_single():
    text = "SELECT id FROM demo_behavior_log WHERE user_id = $1 ORDER BY timestamp DESC"
    single = generate_embedding(text)
    batch = generate_embeddings(["other text", text])
    assert generate_embedding(text) == pytest.approx(single, abs=1e-6)
    assert batch[1] == pytest.approx(single, abs=1e-5)


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


def test_many_texts_in_parallel_batches_match_the_models_own_encode():
    from optimizations.embeddings import _model

    texts = _varied_texts(70)  # several batches, of different token counts, on several threads
    expected = _model().encode(texts, normalize_embeddings=True, show_progress_bar=False)
    vectors = generate_embeddings(texts)
    assert len(vectors) == len(texts)
    for vector, want in zip(vectors, expected, strict=True):
        assert vector == pytest.approx(want.tolist(), abs=1e-5)


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
