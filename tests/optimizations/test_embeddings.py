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
