"""Embeddings for ask-the-database, with a bounded in-process cache.

The same texts are embedded again and again (a question and its retries, paging, the
feedback that trains it; a schema retrained without changes), and the model is the
slowest step, so each distinct text is computed once per process.
"""

import threading
from collections import OrderedDict
from collections.abc import Sequence

from optimizations.embeddings import generate_embeddings

# Distinct texts kept (a 384-float vector plus its text: a few KB each).
CACHE_SIZE = 2048

_cache: OrderedDict[str, tuple[float, ...]] = OrderedDict()
_lock = threading.Lock()


def embed_texts(texts: Sequence[str]) -> list[list[float]]:
    """One vector per text; the texts not cached are encoded together in one batch."""
    with _lock:
        missing = list(dict.fromkeys(text for text in texts if text not in _cache))
    if missing:
        computed = generate_embeddings(missing)
        with _lock:
            for text, vector in zip(missing, computed, strict=True):
                _cache[text] = tuple(vector)
                _cache.move_to_end(text)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    with _lock:
        found = {text: _cache.get(text) for text in texts}
    # A text evicted by a concurrent caller in between is simply computed again.
    absent = [text for text, vector in found.items() if vector is None]
    if absent:
        found.update(zip(absent, map(tuple, generate_embeddings(absent)), strict=True))
    return [list(found[text]) for text in texts]


def embed_text(text: str) -> list[float]:
    return embed_texts([text])[0]
