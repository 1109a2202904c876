"""Turn questions and passages into vectors with a sentence-transformers model (loaded once per process).

    embedder = get_embedder(settings)
    P = embedder.encode_passages([Embedder.passage_text(title, chunk_text) for ...], progress=True)  # (n, dim) float32
    q = embedder.encode_queries(["西宁对接会签了多少个项目？"])[0]
    scores = P @ q  # cosine similarity: every row is L2-normalized

Queries get the query prompt and passages the passage prompt (`query: ` / `passage: ` for the default e5 model). Passages
are encoded in batches of `settings.embedding_batch_size`, longest first (less padding), and returned in input order.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from dataclasses import fields
from typing import Any, Iterator, Sequence

import numpy as np

from rag.errors import RagError
from rag.models import DEFAULT_EMBEDDING_MODEL, MAX_SEQ_LENGTH, ensure_embedding_model, is_default_model, set_offline
from rag.settings import Settings

log = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("none", "int8")
TITLE_MAX_CHARS = 64  # a longer title is cut (with "…") before it is put in front of a passage
_SETTINGS_DEFAULTS = {f.name: f.default for f in fields(Settings)}


SMALL_BATCH = 4  # query batches up to this size are encoded on one thread (see Embedder.encode_queries)
_THREADS_LOCK = threading.Lock()

class Embedder:
    """A loaded sentence-transformers model with the project's prompts, batching and normalization."""

    def __init__(self, model: Any, model_id: str, query_prompt: str, passage_prompt: str, batch_size: int = 32) -> None:
        self.model = model
        self.model_id = model_id  # recorded in index manifests: vectors from different ids must not be mixed
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.batch_size = max(1, int(batch_size))
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim: int = int(get_dim())

    def __repr__(self) -> str:
        return f"Embedder({self.model_id!r}, dim={self.dim})"

    @staticmethod
    def passage_text(title: str | None, text: str) -> str:
        """The text to embed for a chunk: the document title (whitespace collapsed, cut at 64 chars) on the first line as
        context, then the chunk text. The title is left out when the chunk already starts with it. The chunk itself is
        not cut here: the model reads the first 512 tokens (~600 Chinese characters), far more than a chunk."""
        body = (text or "").strip()
        head = " ".join((title or "").split())
        if len(head) > TITLE_MAX_CHARS:
            head = head[: TITLE_MAX_CHARS - 1] + "…"
        if not head or body.startswith(head):
            return body
        return f"{head}\n{body}"

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalized; each text gets the query prompt."""
        import torch

        # A question or two is too small to split across threads: on a busy machine two OpenMP threads spin-wait on
        # each other (measured under load: 1,430 ms with 2 threads vs 51 ms with 1). Batches keep every core.
        if isinstance(texts, str) or len(texts) <= SMALL_BATCH:
            before = torch.get_num_threads()
            with _THREADS_LOCK:
                torch.set_num_threads(1)
                try:
                    return self._encode(texts, self.query_prompt, progress=False, desc="queries")
                finally:
                    torch.set_num_threads(before)
        return self._encode(texts, self.query_prompt, progress=False, desc="queries")

    def encode_passages(self, texts: Sequence[str], progress: bool = False, batch_size: int | None = None) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalized, in input order; each text gets the passage prompt.
        With `progress`, a tqdm bar counts chunks and shows chunks/s."""
        return self._encode(texts, self.passage_prompt, progress=progress, desc="embedding", batch_size=batch_size)

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool, desc: str,
                batch_size: int | None = None) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        items = [texts] if isinstance(texts, str) else list(texts)
        for t in items:
            if not isinstance(t, str):
                raise TypeError(f"texts must be strings, got {type(t).__name__}")
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        bs = max(1, int(batch_size or self.batch_size))
        order = np.argsort([-len(t) for t in items], kind="stable")  # longest first: similar lengths share a batch
        with tqdm(total=len(items), unit="chunk", desc=desc, disable=not progress, dynamic_ncols=True) as bar, \
                torch.inference_mode():
            for start in range(0, len(items), bs):
                idx = order[start : start + bs]
                vecs = self.model.encode([items[i] for i in idx], prompt=prompt, batch_size=bs, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
                out[idx] = np.asarray(vecs, dtype=np.float32)
                bar.update(len(idx))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------- loading (the one cached loader)

_MODELS: dict[str, Any] = {}  # model id -> loaded sentence-transformers model (the one cached loader)
_EMBEDDERS: dict[tuple[str, str, str, int], Embedder] = {}  # + prompts and batch size -> Embedder sharing that model
_LOAD_LOCK = threading.Lock()


def _quantize_mode(settings: Settings) -> str:
    mode = (settings.embedding_quantize or "none").strip().lower()
    if mode not in QUANTIZE_CHOICES:
        raise RagError(f"embedding_quantize must be one of {', '.join(QUANTIZE_CHOICES)}, "
                       f"got {settings.embedding_quantize!r}")
    return mode


def model_id_for(settings: Settings) -> str:
    """The id an index records for vectors made with these settings (without loading anything)."""
    name = (settings.embedding_model or "").strip()
    base = DEFAULT_EMBEDDING_MODEL if is_default_model(name) else name
    mode = _quantize_mode(settings)
    return base if mode == "none" else f"{base}+{mode}"


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No per-tensor progress bar from transformers while loading (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _is_ffn_down_projection(name: str) -> bool:
    """BERT's feed-forward output layer (`encoder.layer.N.output.dense`), whose post-GELU input has outliers."""
    return name.endswith("output.dense") and "attention" not in name


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantization (weights per output channel, activations per tensor on the fly), in place, of every
    Linear layer except the feed-forward down-projections: quantizing those too costs cosine 0.97 to float32 instead of
    0.997 (measured on CMRC paragraphs; bench/bench_embedding.py measures speed and Recall)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and not _is_ffn_down_projection(name)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao, still works here
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def load_model(path: str, quantize: str = "none", threads: int = 0) -> Any:
    """Load a sentence-transformers model from a local folder or the offline Hugging Face cache, on the CPU."""
    set_offline()
    import torch

    torch.set_num_threads(threads if threads > 0 else (os.cpu_count() or 1))
    from sentence_transformers import SentenceTransformer

    try:
        with _quiet_loading():
            model = SentenceTransformer(path, device="cpu", local_files_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise RagError(f"cannot load embedding model {path!r} offline ({type(e).__name__}: {str(e)[:300]}); set "
                       f"RAG_EMBEDDING_MODEL to a sentence-transformers folder or to {DEFAULT_EMBEDDING_MODEL!r}") from e
    model.eval()
    model.max_seq_length = min(int(model.max_seq_length or MAX_SEQ_LENGTH), MAX_SEQ_LENGTH)
    if quantize == "int8":
        model = quantize_int8(model)
    return model


def _prompt(settings: Settings, model: Any, name: str) -> str:
    """The settings' prompt, unless it is the untouched default and the model declares its own prompt of that name."""
    field = f"{name}_prompt"
    value = getattr(settings, field)
    declared = (getattr(model, "prompts", None) or {}).get(name)
    if declared is not None and value == _SETTINGS_DEFAULTS[field]:
        return declared
    return value


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The embedder for `settings` (model, quantization, prompts, batch size). Each model is loaded once per process,
    on first use, and shared by every embedder that uses it; the bundled default is provisioned first (see rag.models).
    Loading sets torch to `settings.embedding_threads` CPU threads (0 = all cores)."""
    settings = settings or Settings.from_env()
    model_id = model_id_for(settings)
    with _LOAD_LOCK:
        model = _MODELS.get(model_id)
        if model is None:
            path = ensure_embedding_model(settings)
            model = _MODELS[model_id] = load_model(path, _quantize_mode(settings), settings.embedding_threads)
            log.info("loaded embedding model %s from %s", model_id, path)
        key = (model_id, _prompt(settings, model, "query"), _prompt(settings, model, "passage"),
               max(1, int(settings.embedding_batch_size)))
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = _EMBEDDERS[key] = Embedder(model, *key)
        return embedder
