"""`Assistant`: the Python API. Question -> (follow-up rewrite) -> hybrid retrieval -> extractive (or verified LLM) answer.

    from rag import Assistant
    bot = Assistant.default()                      # the bundled corpus (index built on first use)
    a = bot.ask("西宁对接会签了多少个项目？")
    print(a.text)                                  # 共签署59个项目合作协议 [1]
    for c in a.citations:
        print(c.number, c.title, c.date, c.sentences)
    a2 = bot.ask("签约总资金呢？", history=[("西宁对接会签了多少个项目？", a.text)])
    print(a2.standalone_question)                  # 西宁对接会签约总资金是多少？

One Assistant is safe to share between threads (a Gradio server): the model is loaded once; adding documents swaps the
index under a lock while questions keep using the previous one.
"""
from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from rag.answering import answer_extractive
from rag.errors import InputError, RagError
from rag.question import Question, analyze
from rag.records import Answer, Citation, Hit, IngestReport
from rag.settings import Settings

History = Sequence[tuple[str, str]] | Sequence[dict] | None


def _load_dictionary() -> None:
    from rag.question import cedict

    cedict()


class _QueryCache:
    """Wraps an embedder so the question vector computed by retrieval is reused by the answerer (same text, same vector)."""

    def __init__(self, embedder: Any, size: int = 256) -> None:
        self._e = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._e, name)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        with self._lock:
            hit = [self._cache.get(t) for t in texts]
        missing = [t for t, v in zip(texts, hit) if v is None]
        if missing:
            vecs = self._e.encode_queries(missing)
            with self._lock:
                for t, v in zip(missing, vecs):
                    self._cache[t] = v
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            out = [self._cache.get(t) for t in texts]
        out = [v if v is not None else self._e.encode_queries([t])[0] for t, v in zip(texts, out)]
        return np.vstack(out).astype(np.float32) if out else np.zeros((0, self._e.dim), np.float32)


def _filters(filters: Any):
    from rag.retrieval import Filters

    if filters is None or isinstance(filters, Filters):
        return filters
    if isinstance(filters, dict):
        try:
            return Filters(**{k: v for k, v in filters.items() if v not in (None, "", [])})
        except TypeError as e:
            raise InputError(f"unknown filter: {e}; use source, date_from, date_to, doc_ids") from e
    raise InputError("filters must be a rag.retrieval.Filters or a dict with source / date_from / date_to / doc_ids")


class Assistant:
    """Answers questions over one index with exact citations. Build with `open`, `from_paths` or `default`."""

    def __init__(self, index: Any, settings: Settings, embedder: Any | None = None) -> None:
        from rag.retrieval import Retriever

        self.settings = settings
        self.index = index
        if embedder is None:
            from rag.embedding import get_embedder

            embedder = get_embedder(settings)
        self.embedder = _QueryCache(embedder)
        self.retriever = Retriever(index, self.embedder, settings)
        self._lock = threading.RLock()  # serialises index mutation (add_paths)
        self._llm: Any = None
        # the English-to-Chinese dictionary (CC-CEDICT, ~0.3-2 s to load) is read in the background, not by the first
        # English question
        threading.Thread(target=_load_dictionary, name="rag-cedict", daemon=True).start()

    # ------------------------------------------------------------ construction

    @staticmethod
    def _settings_for(index_dir: str | Path | None, settings: Settings | None) -> Settings:
        settings = settings or Settings.from_env()
        if index_dir is not None:
            p = Path(index_dir).expanduser().resolve()
            settings = dataclasses.replace(settings, index_root=p.parent, index_name=p.name)
        return settings

    @classmethod
    def open(cls, index_dir: str | Path | None = None, settings: Settings | None = None) -> "Assistant":
        """An Assistant over an existing index folder (default: settings.index_dir). IndexError_ if missing/corrupt."""
        from rag.store import Index

        settings = cls._settings_for(index_dir, settings)
        return cls(Index.open(settings.index_dir, settings), settings)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], index_dir: str | Path | None = None,
                   settings: Settings | None = None, progress: bool = False) -> "Assistant":
        """Ingest article files/folders into an index (a new temporary folder when `index_dir` is None) and open it."""
        from rag.store import Index, ingest_into_index

        paths = [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        if not paths:
            raise InputError("no paths given: pass article files or folders")
        if index_dir is None:
            index_dir = tempfile.mkdtemp(prefix="rag-index-")
        settings = cls._settings_for(index_dir, settings)
        reports = ingest_into_index(paths, settings, progress=progress)
        if not Index.exists(settings.index_dir):
            failed = "; ".join(f"{r.path}: {r.error}" for r in reports if not r.ok)[:500]
            raise InputError("none of the given files could be used" + (f" ({failed})" if failed else ""))
        bot = cls(Index.open(settings.index_dir, settings), settings)
        bot.last_reports = reports
        return bot

    @classmethod
    def default(cls, settings: Settings | None = None, progress: bool = True) -> "Assistant":
        """The Assistant over the default index (settings.index_dir), built from the bundled corpus on first use."""
        from rag.store import open_or_build_default

        settings = settings or Settings.from_env()
        return cls(open_or_build_default(settings, progress=progress), settings)

    # ------------------------------------------------------------ corpus

    def add_paths(self, paths: Iterable[str | Path], progress: bool = False) -> list[IngestReport]:
        """Ingest more articles into this Assistant's index (unchanged files are skipped); one report per file."""
        from rag.retrieval import Retriever
        from rag.store import Index, ingest_into_index

        paths = [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        with self._lock:
            reports = ingest_into_index(paths, self.settings, progress=progress, embedder=self.embedder._e)
            if Index.exists(self.settings.index_dir):
                index = Index.open(self.settings.index_dir, self.settings)
                self.index, self.retriever = index, Retriever(index, self.embedder, self.settings)
        return reports

    def remove(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete documents from the index (the same `Index.remove` that `rag remove` runs); returns the ids removed."""
        from rag.retrieval import Retriever
        from rag.store import Index

        with self._lock:  # a fresh Index object, swapped in: questions in flight keep reading the previous one
            index = Index.open(self.settings.index_dir, self.settings)
            removed = index.remove(list(doc_ids))
            if removed:
                self.index, self.retriever = index, Retriever(index, self.embedder, self.settings)
        return removed

    def document(self, doc_id: str):
        """The whole cleaned Document (as shown in citations), or None."""
        return self.index.document(doc_id)

    def chunk(self, chunk_id: str):
        """The Chunk with this id (its `start` places a citation's spans in the document's text), or None."""
        return next((c for c in self.index.chunks if c.chunk_id == chunk_id), None)

    def stats(self) -> dict:
        """Documents, chunks, model and size of the index."""
        return self.index.stats()

    def documents(self) -> list[dict]:
        """One dict per document: doc_id, title, date, source, path, added, chunks (count), ..."""
        return [{"doc_id": d, **{k: v for k, v in meta.items() if k != "chunk_ids"}, "chunks": len(meta.get("chunk_ids") or [])}
                for d, meta in self.index.documents.items()]

    # ------------------------------------------------------------ answering

    def _prepare(self, question: str, history: History, filters: Any, top_k: int | None) -> tuple[Question, list[Hit], float]:
        q = analyze(question, history, max_chars=self.settings.max_question_chars)
        k = max(int(top_k or self.settings.top_k), int(self.settings.answer_passages))
        query = q.standalone if q.language == "en" else q.simplified
        t = time.perf_counter()
        hits = self.retriever.retrieve(query, top_k=k, filters=_filters(filters))
        return q, hits, (time.perf_counter() - t) * 1000

    def _extractive(self, q: Question, hits: list[Hit]) -> tuple[Answer, str]:
        """The extractive Answer and its key (the figure or name it found, "" if none)."""
        qvec = self.embedder.encode_queries([q.standalone if q.language == "en" else q.simplified])[0]
        ans, ex = answer_extractive(q, hits, self.embedder, self.settings.not_found_threshold, qvec)
        if not hits:
            ans.notes.append("The index has no passages that match (empty index or filters exclude everything).")
        key = "" if ex.span is None or not ex.found else ex.span.figure or ex.span.text
        return ans, key

    def _get_llm(self, mode: str) -> tuple[Any | None, str | None]:
        """(llm, None) or (None, note saying why LLM mode is unavailable)."""
        try:
            from rag import llm as llm_mod
        except ImportError as e:  # pragma: no cover
            return None, f"LLM mode is not available ({e}); showing the extractive answer."
        try:
            with self._lock:
                if self._llm is None:
                    self._llm = llm_mod.get_llm(self.settings, mode="llm", progress=False)
            return self._llm, None
        except RagError as e:
            return None, f"{e} Showing the extractive answer."

    @staticmethod
    def _llm_passages(hits: list[Hit], ans: Answer, n: int = 4) -> list[Citation]:
        """The top passages numbered 1..n for the LLM (the extractive answer's passage first)."""
        first = [c.chunk_id for c in ans.citations]
        order = sorted(hits, key=lambda h: (h.chunk.chunk_id not in first, h.rank))[:n]
        out = []
        for i, h in enumerate(order, 1):
            ch = h.chunk
            spans = next((c.spans for c in ans.citations if c.chunk_id == ch.chunk_id), [])
            out.append(Citation(i, ch.doc_id, ch.chunk_id, ch.title, ch.date, ch.source, ch.text, list(spans), float(h.score)))
        return out

    @staticmethod
    def _cited_spans(text: str, passage: Citation) -> list[tuple[int, int]]:
        """Sentences of a passage that share a number or a 2+ character word with the LLM's answer (exact offsets)."""
        import re

        from rag.answering import _split
        from rag.script import to_simplified

        ans = to_simplified(re.sub(r"\[\d+\]", "", text))
        nums = set(re.findall(r"\d+(?:\.\d+)?", ans))
        spans = []
        for a, b in _split(passage.passage):
            s = to_simplified(passage.passage[a:b])
            if any(n in s for n in nums) or sum(1 for i in range(len(ans) - 3) if ans[i:i + 4] in s) >= 2:
                spans.append((a, b))
        return spans or list(passage.spans)

    def _apply_llm(self, q: Question, hits: list[Hit], ext: Answer, result: Any) -> Answer:
        ans = dataclasses.replace(ext, notes=list(ext.notes))
        ans.mode = result.mode
        ans.notes += list(result.notes)
        if result.mode == "llm":
            passages = {c.number: c for c in self._llm_passages(hits, ext)}
            cited = [passages[n] for n in result.cited if n in passages]
            renumber = {c.number: i for i, c in enumerate(cited, 1)}
            import re

            text = re.sub(r"\[(\d+)\]", lambda m: f"[{renumber.get(int(m.group(1)), m.group(1))}]", result.text)
            ans.text = text
            ans.citations = [dataclasses.replace(c, number=renumber[c.number], spans=self._cited_spans(result.text, c))
                             for c in cited]
            ans.found = True
            ans.related = []
        return ans

    def ask(self, question: str, history: History = None, filters: Any = None, mode: str | None = None,
            top_k: int | None = None) -> Answer:
        """Answer one question. `history`: earlier (question, answer) pairs or {"role","content"} messages;
        `filters`: rag.retrieval.Filters or a dict (source, date_from, date_to, doc_ids); `mode`: "extractive" | "llm"."""
        final: Answer | None = None
        for piece in self.ask_stream(question, history, filters, mode, top_k):
            if isinstance(piece, Answer):
                final = piece
        assert final is not None  # ask_stream always ends with the Answer
        return final

    def ask_stream(self, question: str, history: History = None, filters: Any = None, mode: str | None = None,
                   top_k: int | None = None) -> Iterator[str | Answer]:
        """Text pieces of the answer as they are ready, then the final Answer (whose text may differ from the pieces
        when an LLM draft failed verification: the Answer is authoritative)."""
        t0 = time.perf_counter()
        mode = (mode or self.settings.answer_mode or "extractive").lower()
        if mode not in ("extractive", "llm"):
            raise InputError(f"unknown answer mode {mode!r}: use 'extractive' or 'llm'")
        q, hits, t_ret = self._prepare(question, history, filters, top_k)
        t1 = time.perf_counter()
        ans, key = self._extractive(q, hits)
        if mode == "llm" and not ans.found:
            # the not-found decision is made on the evidence, before any LLM: a model is never asked to fill the gap
            ans.notes.append("The articles do not answer this; the LLM was not asked.")
        elif mode == "llm":
            llm, note = self._get_llm(mode)
            if llm is None:
                ans.notes.append(note or "LLM mode is not available; showing the extractive answer.")
            elif hits:
                from rag.llm import LLMResult, agrees, stream_answer_with_llm

                passages = self._llm_passages(hits, ans)
                for piece in stream_answer_with_llm(q.standalone, passages, q.language, llm, ans.text):
                    if isinstance(piece, LLMResult):
                        if piece.mode == "llm" and not agrees(piece.text, q.kind, key):
                            # the draft is in the passages but gives another figure/person than the evidence-matched one
                            piece = LLMResult(ans.text, "llm->extractive", [
                                f"The LLM answer did not give {key}, which the passages state for this question; "
                                "showing the extractive answer."], [], piece.draft)
                        ans = self._apply_llm(q, hits, ans, piece)
                    else:
                        yield piece
                ans.timings = {"retrieve_ms": round(t_ret, 1),
                               "answer_ms": round((time.perf_counter() - t1) * 1000, 1),
                               "total_ms": round((time.perf_counter() - t0) * 1000, 1)}
                yield ans
                return
        for piece in _pieces(ans.text):
            yield piece
        ans.timings = {"retrieve_ms": round(t_ret, 1), "answer_ms": round((time.perf_counter() - t1) * 1000, 1),
                       "total_ms": round((time.perf_counter() - t0) * 1000, 1)}
        yield ans


def _pieces(text: str, size: int = 12) -> Iterator[str]:
    """The answer text in small pieces (so a UI can render it progressively)."""
    for i in range(0, len(text), size):
        yield text[i:i + size]
