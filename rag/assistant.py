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
index under a lock while questions keep using the previous one. Retrieval and extractive reading only read the index,
so questions run side by side; LLM drafts are serialised (one local model). Before each question the Assistant checks
(one stat of manifest.json) whether another process (`rag ingest`, `rag remove`) committed a new generation of its
index, and if so loads it and swaps it in atomically.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from rag.errors import InputError, RagError
from rag.question import Question, analyze
from rag.records import Answer, Citation, Hit, IngestReport
from rag.settings import Settings

History = Sequence[tuple[str, str]] | Sequence[dict] | None
log = logging.getLogger(__name__)
# one question per script and language, about nothing in particular: `Assistant.warm_up` loads what they need
WARM_UP_QUESTIONS = ("签约了多少个项目？", "會議在哪裡舉行？", "Who attended the signing ceremony?")


def _load_dictionary() -> None:
    from rag.evidence import _places_by_pinyin
    from rag.question import cedict

    cedict()
    _places_by_pinyin()  # English place names -> Chinese, for the entity check of English questions


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
        self._lock = threading.RLock()  # serialises index mutation (add_paths) and reloads
        self._llm: Any = None
        self._doc_texts: tuple[Any, Any] | None = None  # (index, doc_id -> simplified text) for entity checks
        self._manifest_stamp = self._stamp()
        # the English-to-Chinese dictionary (CC-CEDICT, ~0.3-2 s to load) is read in the background, not by the first
        # English question
        self._dictionary = threading.Thread(target=_load_dictionary, name="rag-cedict", daemon=True)
        self._dictionary.start()

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
                self._manifest_stamp = self._stamp()
        return reports

    def _manifest_path(self) -> Path | None:
        folder = getattr(self.index, "folder", None)
        return Path(folder) / "manifest.json" if folder is not None else None

    def _stamp(self) -> tuple[int, int, int] | None:
        """(inode, size, mtime_ns) of the index's manifest.json: changes whenever a writer commits a generation."""
        path = self._manifest_path()
        try:
            st = path.stat() if path is not None else None
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns) if st is not None else None

    def refresh(self) -> bool:
        """Load the index again when another process committed a new generation of it since it was opened (one stat
        when nothing changed). The new Index and Retriever replace the old ones together; questions already running
        finish on the old one. Returns True when it reloaded."""
        stamp = self._stamp()
        if stamp is None or stamp == self._manifest_stamp:
            return False
        from rag.errors import IndexError_
        from rag.retrieval import Retriever
        from rag.store import Index

        with self._lock:
            stamp = self._stamp()
            if stamp is None or stamp == self._manifest_stamp:
                return False
            current = self.index.manifest.get("generation") if hasattr(self.index, "manifest") else None
            try:
                index = Index.open(self.index.folder, self.settings)
            except IndexError_ as e:  # a damaged new generation: keep answering from the one in memory, say why
                import logging

                logging.getLogger(__name__).warning("index changed on disk but cannot be loaded: %s", e)
                self._manifest_stamp = stamp
                return False
            self._manifest_stamp = stamp
            if index.manifest.get("generation") == current:
                return False
            self.index, self.retriever = index, Retriever(index, self.embedder, self.settings)
            return True

    def remove(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete documents from the index (the same `Index.remove` that `rag remove` runs); returns the ids removed."""
        from rag.retrieval import Retriever
        from rag.store import Index

        with self._lock:  # a fresh Index object, swapped in: questions in flight keep reading the previous one
            index = Index.open(self.settings.index_dir, self.settings)
            removed = index.remove(list(doc_ids))
            if removed:
                self.index, self.retriever = index, Retriever(index, self.embedder, self.settings)
                self._manifest_stamp = self._stamp()
        return removed

    def document(self, doc_id: str):
        """The whole cleaned Document (as shown in citations), or None."""
        return self.index.document(doc_id)

    def chunk(self, chunk_id: str):
        """The Chunk with this id (its `start` places a citation's spans in the document's text), or None."""
        return next((c for c in self.index.chunks if c.chunk_id == chunk_id), None)

    def stats(self) -> dict:
        """Documents, chunks, model and size of the index."""
        self.refresh()
        return self.index.stats()

    def documents(self) -> list[dict]:
        """One dict per document: doc_id, title, date, source, path, added, chunks (count), ..."""
        self.refresh()
        return [{"doc_id": d, **{k: v for k, v in meta.items() if k != "chunk_ids"}, "chunks": len(meta.get("chunk_ids") or [])}
                for d, meta in self.index.documents.items()]

    # ------------------------------------------------------------ answering

    def _prepare(self, question: str, history: History, filters: Any, top_k: int | None) -> tuple[Question, list[Hit], float]:
        q = analyze(question, history, max_chars=self.settings.max_question_chars)
        self.refresh()
        k = max(int(top_k or self.settings.top_k), int(self.settings.answer_passages))
        query = q.standalone if q.language == "en" else q.simplified
        t = time.perf_counter()
        hits = self.retriever.retrieve(query, top_k=k, filters=_filters(filters))
        return q, hits, (time.perf_counter() - t) * 1000

    def _get_llm(self) -> tuple[Any | None, str | None]:
        """(llm, None) or (None, note saying why LLM mode is unavailable); the model is loaded once."""
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

    def _doc_text(self, doc_id: str) -> str:
        index = self.index
        if self._doc_texts is None or self._doc_texts[0] is not index:
            from rag.evidence import doc_texts

            self._doc_texts = (index, doc_texts(index))
        return self._doc_texts[1](doc_id)

    def warm_up(self) -> float:
        """Answer WARM_UP_QUESTIONS extractively and discard the answers, so that what loads on first use (the question
        encoder's trace, OpenCC's traditional converter, the word lists, CC-CEDICT's place names by pinyin) is loaded
        before the first user asks. Returns the seconds it took; a failure is logged, never raised."""
        t = time.perf_counter()
        self._dictionary.join()
        for question in WARM_UP_QUESTIONS:
            try:
                self.ask(question, mode="extractive")
            except RagError as e:
                log.warning("warm-up question %r failed: %s", question, e)
                break
        return time.perf_counter() - t

    def ask(self, question: str, history: History = None, filters: Any = None, mode: str | None = None,
            top_k: int | None = None) -> Answer:
        """Answer one question. `history`: earlier (question, answer) pairs or {"role","content"} messages;
        `filters`: rag.retrieval.Filters or a dict (source, date_from, date_to, doc_ids); `mode`: "extractive" | "llm"."""
        final: Answer | None = None
        for piece in self.ask_stream(question, history, filters, mode, top_k):
            if isinstance(piece, Answer) and piece.final:
                final = piece
        assert final is not None  # ask_stream always ends with the final Answer
        return final

    def ask_stream(self, question: str, history: History = None, filters: Any = None, mode: str | None = None,
                   top_k: int | None = None) -> Iterator[str | Answer]:
        """Text pieces of the answer as they are ready, and Answers: in LLM mode first a preliminary extractive Answer
        (`final=False`), then the LLM's draft pieces, then the final Answer (authoritative: it may differ from the
        pieces when a draft was not grounded). `mode`: "auto" (default), "extractive" or "llm"."""
        from rag.evidence import gather
        from rag.reader import ExtractiveReader, read_stream, resolve_mode

        t0 = time.perf_counter()
        mode = resolve_mode(mode, self.settings)
        q, hits, t_ret = self._prepare(question, history, filters, top_k)
        t1 = time.perf_counter()
        ev = gather(q, hits, self._doc_text)
        for piece in read_stream(ev, mode, ExtractiveReader(self.settings), self._get_llm,
                                 budget=self.settings.evidence_chars):
            if isinstance(piece, Answer):
                piece.timings = {"retrieve_ms": round(t_ret, 1),
                                 "answer_ms": round((time.perf_counter() - t1) * 1000, 1),
                                 "total_ms": round((time.perf_counter() - t0) * 1000, 1)}
            yield piece
