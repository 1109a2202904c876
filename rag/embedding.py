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
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from rag.errors import RagError
from rag.models import DEFAULT_EMBEDDING_MODEL, MAX_SEQ_LENGTH, ensure_embedding_model, is_default_model, set_offline
from rag.settings import Settings

log = logging.getLogger(__name__)

QUANTIZE_CHOICES = ("none", "int8")
TITLE_MAX_CHARS = 64  # a longer title is cut (with "…") before it is put in front of a passage
_SETTINGS_DEFAULTS = {f.name: f.default for f in fields(Settings)}


SMALL_BATCH = 4  # query calls up to this size are batched with concurrent ones, on one thread (Embedder.encode_queries)
MAX_QUERY_BATCH = 16  # texts in one shared forward pass (per-question cost: 27 ms alone, 13 ms in a batch of 8)
_THREADS_LOCK = threading.Lock()
BF16_MIN_COSINE = 0.9995  # a bfloat16 question encoder is used only if its vectors agree this closely with float32


def _native_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX); elsewhere bfloat16 is emulated and slow."""
    import torch

    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def _encoder_forward(model: Any) -> Any:
    """The whole sentence-transformers model (transformer, pooling, normalization) with positional inputs and the
    sentence embedding as its one output (what a trace needs), as a torch module (torch is imported only when
    questions are encoded)."""
    import torch

    class EncoderForward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stages = torch.nn.ModuleList(list(model))  # the model's modules, not the model object itself

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            for stage in self.stages:
                features = stage(features)
            return features["sentence_embedding"]

    return EncoderForward()


class _Waiter:
    """One caller's texts in the batcher's queue, and what it gets back."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.lead = False  # handed the leader's role: encode what is queued
        self.woken = threading.Event()


class _QueryBatcher:
    """Concurrent small encode calls share one forward pass (leader/follower, no extra thread): a caller that finds no
    pass running encodes everything queued (up to `max_batch` texts) and hands the results out; callers that arrive
    meanwhile wait and go into the next pass. When its own texts are done, the leader hands its role to the oldest
    waiting caller. A failing pass raises in every caller whose texts it held."""

    def __init__(self, fn: Callable[[list[str]], np.ndarray], max_batch: int) -> None:
        self._fn = fn
        self._max = max(1, int(max_batch))
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._running = False

    def encode(self, texts: list[str]) -> np.ndarray:
        me = _Waiter(texts)
        with self._lock:
            self._queue.append(me)
            if not self._running:
                self._running = me.lead = True
        while me.result is None and me.error is None:
            if me.lead:
                me.lead = False
                self._pass()
            else:
                me.woken.wait()
                me.woken.clear()
        if me.error is not None:
            raise me.error
        return me.result

    def _pass(self) -> None:
        """Encode one batch from the front of the queue; then hand the leader's role on, or stop if none wait."""
        with self._lock:
            batch, n = [], 0
            while self._queue and (not batch or n + len(self._queue[0].texts) <= self._max):
                w = self._queue.pop(0)
                batch.append(w)
                n += len(w.texts)
        try:
            vecs = self._fn([t for w in batch for t in w.texts])
            start = 0
            for w in batch:
                w.result, start = vecs[start : start + len(w.texts)], start + len(w.texts)
        except BaseException as e:  # noqa: BLE001 - every caller of the failed pass gets the error
            for w in batch:
                w.error = e
        with self._lock:
            nxt = self._queue[0] if self._queue else None
            self._running = nxt is not None
            if nxt is not None:
                nxt.lead = True
        for w in batch:
            w.woken.set()
        if nxt is not None:
            nxt.woken.set()

class Embedder:
    """A loaded sentence-transformers model with the project's prompts, batching and normalization."""

    def __init__(self, model: Any, model_id: str, query_prompt: str, passage_prompt: str, batch_size: int = 32,
                 query_bf16: bool = False) -> None:
        self.model = model
        self.model_id = model_id  # recorded in index manifests: vectors from different ids must not be mixed
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.batch_size = max(1, int(batch_size))
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim: int = int(get_dim())
        self._batcher = _QueryBatcher(self._encode_small, MAX_QUERY_BATCH)
        self._traced: Any = None  # None: not tried yet; False: eager; else the traced model
        self.query_bf16 = query_bf16

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
        """(len(texts), dim) float32, L2-normalized; each text gets the query prompt. Small calls made at the same time
        from several threads (a server's concurrent questions) share one forward pass (`_QueryBatcher`)."""
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items or len(items) > SMALL_BATCH:
            return self._encode(items, self.query_prompt, progress=False, desc="queries")
        return self._batcher.encode(items)

    @property
    def query_precision(self) -> str:
        """"bfloat16" or "float32": what questions are encoded with (traces the encoder if not done yet)."""
        traced = self._traced_encoder()
        if traced is None:
            return "float32"
        return str(next(traced.parameters()).dtype).removeprefix("torch.")

    def _encode_small(self, texts: list[str]) -> np.ndarray:
        """A batch of questions on one thread, through the traced encoder where there is one. A question or two is
        too small to split across threads: on a busy machine two OpenMP threads spin-wait on each other (measured
        under load: 1,430 ms with 2 threads vs 51 ms with 1); the other core stays free for the rest of the answer."""
        import torch

        with _THREADS_LOCK:
            before = torch.get_num_threads()
            torch.set_num_threads(1 if len(texts) < 8 else before)
            try:
                traced = self._traced_encoder()
                if traced is None:
                    return self._encode(texts, self.query_prompt, progress=False, desc="queries")
                return self._run_traced(traced, texts)
            finally:
                torch.set_num_threads(before)

    def _traced_encoder(self) -> Any:
        """The whole model as a TorchScript trace (made once, on the first question), or None where the model cannot
        be traced or the trace disagrees with the model. Eager PyTorch takes the GIL back between every operation, so
        a question's forward pass starves while other threads run Python (measured: 48 ms alone, 4.4 s beside two
        busy Python threads); the trace runs the whole pass without the GIL (39 ms alone, 85 ms beside them).
        With `query_bf16` and a CPU with native bfloat16 (oneDNN), the trace is of a bfloat16 copy of the model: a
        question reads half the weight bytes (measured on this box: 26.7 → 20.9 ms alone, 15.1 → 8.7 ms per question in
        a batch of 8), and it is kept only if its vectors agree with float32 (cosine ≥ BF16_MIN_COSINE; measured
        0.99996). Passages are always float32."""
        if self._traced is not None:
            return self._traced or None
        self._traced = False
        try:
            import torch

            probe = [self.query_prompt + t for t in ("科技成果转化对接会签约项目", "How many projects were signed?")]
            feats = self.model.preprocess(probe)
            if feats.get("modality", "text") != "text" or set(feats) - {"input_ids", "attention_mask", "modality"}:
                return None  # e.g. token type ids or image inputs: encoded eagerly
            expected = self._encode(probe, "", progress=False, desc="queries")
            for model in ([self._bf16_copy()] if self.query_bf16 and _native_bf16() else []) + [self.model]:
                with torch.inference_mode(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # trace warnings about shape-dependent branches of masking code
                    traced = torch.jit.trace(_encoder_forward(model).eval(),
                                             (feats["input_ids"], feats["attention_mask"]), check_trace=False)
                    got = self._run_traced(traced, probe, prompt="")
                agree = float(np.min(np.sum(got * expected, axis=1)))
                if agree >= (BF16_MIN_COSINE if model is not self.model else 1 - 1e-6):
                    self._traced = traced
                    return traced
                log.info("the traced encoder disagrees with the model (cosine %.6f)", agree)
            return None
        except Exception as e:  # noqa: BLE001 - any model that cannot be traced is encoded eagerly, as before
            log.info("encoder not traced (%s): eager questions", e)
            return None

    def _bf16_copy(self) -> Any:
        """A bfloat16 copy of the model, for questions only (the float32 model stays for passages)."""
        import copy

        import torch

        return copy.deepcopy(self.model).to(torch.bfloat16).eval()

    def _run_traced(self, traced: Any, texts: list[str], prompt: str | None = None) -> np.ndarray:
        """Tokenize, then one call of the traced model (the GIL is taken only around it)."""
        import torch

        prompt = self.query_prompt if prompt is None else prompt
        feats = self.model.preprocess([prompt + t for t in texts])
        with torch.inference_mode():
            out = traced(feats["input_ids"], feats["attention_mask"]).float().numpy()
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

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
_EMBEDDERS: dict[tuple[str, str, str, int, bool], Embedder] = {}  # + prompts, batch size, bf16 -> Embedder sharing that model
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
               max(1, int(settings.embedding_batch_size)), bool(settings.query_bf16))
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = _EMBEDDERS[key] = Embedder(model, *key[:4], query_bf16=key[4])
        return embedder
