"""Measure quality on the dev sets: retrieval Recall@k / MRR@10 and answer accuracy, citation precision, not-found, latency.

Retrieval: a SQuAD-format set (DRCD, CMRC2018) pools all its paragraphs as the corpus, one passage per paragraph, and a question's
gold is its own paragraph; `dev_qa.jsonl` is asked over the five bundled articles (optionally beside news distractors) and a passage
is a hit when it comes from the question's article. The index is built once per dataset and every mode (lexical, dense, hybrid and
any fusion variant) is measured on it in the same run. Passage and query embeddings are cached on disk
(`settings.cache_dir/eval/<dataset>-<model>-<hash>.npy`), so a re-run embeds nothing.

Answers: `rag.assistant.Assistant` answers `dev_qa.jsonl` and, turn by turn with the conversation so far, `dev_chat.jsonl`.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from rag.errors import InputError, RagError
from rag.records import Answer, Chunk, Document
from rag.script import detect_script, fold_width, to_simplified
from rag.settings import PROJECT_ROOT, Settings

SHARED_DIR = PROJECT_ROOT.parent / "shared"
DRCD_PATH = SHARED_DIR / "data" / "DRCD_dev.json.gz"
CMRC_PATH = SHARED_DIR / "data" / "cmrc2018_trial.squad.json.gz"
NEWS_PATH = SHARED_DIR / "data" / "news_zh_20k.jsonl.gz"
DEV_QA_PATH = SHARED_DIR / "eval" / "dev_qa.jsonl"
DEV_CHAT_PATH = SHARED_DIR / "eval" / "dev_chat.jsonl"

KS = (1, 5, 20)  # Recall@k
MRR_AT = 10
MODES = ("lexical", "dense", "hybrid")
SAMPLE_SEED = 13
SAVE_EVERY = 2048  # CachedEmbedder writes its cache after each block of this many new vectors  # `--limit` subsamples questions with this seed (deterministic)


# ---------------------------------------------------------------- records


@dataclass
class Passage:
    """One retrievable unit of a SQuAD-format set (a paragraph)."""

    pid: str
    text: str
    title: str = ""


@dataclass
class RetrievalCase:
    """A question and the id of its gold passage (SQuAD) or gold article prefix (dev_qa, e.g. "002")."""

    qid: str
    question: str
    gold: str
    kind: str = ""
    lang: str = "zh"


@dataclass
class RetrievalSet:
    """A dataset ready for retrieval evaluation. `passages` is empty for dev_qa (its corpus is the bundled articles)."""

    name: str
    cases: list[RetrievalCase]
    passages: list[Passage] = field(default_factory=list)


@dataclass
class QACase:
    """One question to answer. Chat turns carry their conversation id and turn number (history is built at run time)."""

    qid: str
    question: str
    doc: str | None  # gold article prefix ("002"); None = the articles do not say
    answer_any: list[str]
    kind: str
    lang: str = "zh"
    conversation: str | None = None
    turn: int = 0


@dataclass
class QAOutcome:
    """How one answer scored."""

    case: QACase
    mode: str
    correct: bool
    found: bool
    answer_text: str
    cited: int = 0  # citations given
    cited_gold: int = 0  # of which from the gold article (only counted when the case has a gold article)
    latency_ms: float = 0.0
    standalone_question: str = ""
    error: str | None = None
    confidence: float = 0.0
    notes: list[str] = field(default_factory=list)  # the answer's notes (why a draft was declined or repaired)


# ---------------------------------------------------------------- loaders


def _open_text(path: Path):
    path = Path(path)
    if not path.exists():
        raise InputError(f"evaluation set not found: {path}")
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def dataset_name(path: str | Path) -> str:
    """Short name of a dataset file: `DRCD_dev.json.gz` -> `DRCD_dev`."""
    name = Path(path).name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name.removesuffix(".squad")


def load_squad(path: str | Path) -> RetrievalSet:
    """A SQuAD-format `.json` / `.json.gz` file: every paragraph is a passage, every question's gold is its own paragraph."""
    try:
        with _open_text(Path(path)) as f:
            data = json.load(f)
        articles = data["data"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError, OSError, EOFError) as e:
        raise InputError(f"{path} is not a SQuAD-format JSON file ({e})") from e
    passages: list[Passage] = []
    cases: list[RetrievalCase] = []
    for a, article in enumerate(articles):
        title = str(article.get("title") or "")
        for p, para in enumerate(article.get("paragraphs", [])):
            context = str(para.get("context") or "")
            if not context.strip():
                continue
            pid = f"{a}-{p}"
            passages.append(Passage(pid=pid, text=context, title=title))
            for q, qa in enumerate(para.get("qas", [])):
                question = str(qa.get("question") or "").strip()
                if question:
                    cases.append(RetrievalCase(qid=str(qa.get("id") or f"{pid}-{q}"), question=question, gold=pid))
    if not passages or not cases:
        raise InputError(f"{path} has no paragraphs with questions")
    return RetrievalSet(name=dataset_name(path), cases=cases, passages=passages)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{n} is not valid JSON ({e})") from e
    return rows


def load_dev_qa(path: str | Path = DEV_QA_PATH) -> list[QACase]:
    """`dev_qa.jsonl`: one question per line with `q`, `doc` (article prefix or null), `answer_any`, `kind`, optional `lang`."""
    cases = []
    for row in _read_jsonl(Path(path)):
        try:
            cases.append(QACase(qid=str(row["id"]), question=row["q"], doc=row.get("doc"),
                                answer_any=list(row.get("answer_any") or []), kind=row.get("kind") or "what",
                                lang=row.get("lang") or "zh"))
        except KeyError as e:
            raise InputError(f"{path}: a question lacks the field {e}") from e
    return cases


def load_dev_chat(path: str | Path = DEV_CHAT_PATH) -> list[list[QACase]]:
    """`dev_chat.jsonl`: one conversation per line (`turns`: list of `q`, `answer_any`, optional `doc`); turns after the first
    are follow-ups (kind `follow-up`)."""
    conversations = []
    for row in _read_jsonl(Path(path)):
        cid = str(row.get("id") or len(conversations))
        turns = []
        for t, turn in enumerate(row.get("turns") or []):
            answer_any = list(turn.get("answer_any") or [])
            kind = "unanswerable" if "doc" in turn and turn["doc"] is None else ("chat-first" if t == 0 else "follow-up")
            turns.append(QACase(qid=f"{cid}.{t + 1}", question=turn["q"], doc=turn.get("doc"), answer_any=answer_any,
                                kind=kind, lang=turn.get("lang") or row.get("lang") or "zh", conversation=cid, turn=t + 1))
        if turns:
            conversations.append(turns)
    return conversations


def dev_qa_retrieval_set(path: str | Path = DEV_QA_PATH) -> RetrievalSet:
    """The answerable dev_qa questions as a retrieval set (gold = the article prefix)."""
    cases = [RetrievalCase(qid=c.qid, question=c.question, gold=c.doc, kind=c.kind, lang=c.lang)
             for c in load_dev_qa(path) if c.doc]
    return RetrievalSet(name=dataset_name(path), cases=cases)


def subsample(items: Sequence[Any], limit: int | None, seed: int = SAMPLE_SEED) -> list[Any]:
    """At most `limit` items, chosen with a fixed seed and kept in their original order."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise InputError("--limit must be at least 1")
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


# ---------------------------------------------------------------- metrics


def first_gold_rank(ranked: Sequence[str], gold: str | set[str]) -> int | None:
    """1-based rank of the first item that is gold, or None when none of `ranked` is."""
    golds = {gold} if isinstance(gold, str) else gold
    for i, item in enumerate(ranked, 1):
        if item in golds:
            return i
    return None


def retrieval_metrics(ranks: Sequence[int | None], ks: Sequence[int] = KS, mrr_at: int = MRR_AT) -> dict[str, float]:
    """Recall@k (share of questions whose gold is in the top k) and MRR@`mrr_at` from first-gold ranks (None = not found)."""
    n = len(ranks)
    if n == 0:
        return {**{f"R@{k}": float("nan") for k in ks}, f"MRR@{mrr_at}": float("nan")}
    out = {f"R@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}
    out[f"MRR@{mrr_at}"] = sum(1.0 / r for r in ranks if r is not None and r <= mrr_at) / n
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; nan for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


# ---------------------------------------------------------------- embedding cache


def _key(kind: str, text: str) -> str:
    return hashlib.sha1(f"{kind}\0{text}".encode("utf-8")).hexdigest()[:20]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(text)).name or str(text)).strip("_") or "model"


class CachedEmbedder:
    """Wraps an `Embedder` and keeps every passage and query vector it computes in a per-dataset file on disk.

    Vectors are keyed by a hash of (query|passage, text), so however the index batches its calls a re-run embeds nothing.
    Everything else (`model_id`, `dim`, ...) is the wrapped embedder's.
    """

    def __init__(self, embedder: Any, cache_dir: Path, dataset: str, settings: Settings) -> None:
        self.inner = embedder
        tag = hashlib.sha1(f"{embedder.model_id}|{embedder.dim}|{settings.query_prompt}|{settings.passage_prompt}"
                           .encode()).hexdigest()[:8]
        self.path = Path(cache_dir) / f"{_slug(dataset)}-{_slug(embedder.model_id)}-{tag}.npy"
        self.keys_path = self.path.with_suffix(".keys.npy")
        self._rows: dict[str, int] = {}
        self._vecs = np.zeros((0, embedder.dim), dtype=np.float32)
        self._pending: list[np.ndarray] = []
        self.computed = 0  # texts embedded for real in this process
        self.reused = 0  # texts served from the cache
        self._load()

    def __getattr__(self, name: str) -> Any:  # model_id, dim and anything else the index may read
        return getattr(self.inner, name)

    def _load(self) -> None:
        if not (self.path.exists() and self.keys_path.exists()):
            return
        try:
            vecs = np.load(self.path)
            keys = np.load(self.keys_path)
        except (OSError, ValueError):
            return  # a damaged cache is simply rebuilt
        if vecs.ndim == 2 and vecs.shape[1] == self.inner.dim and len(keys) == len(vecs):
            self._vecs = vecs.astype(np.float32, copy=False)
            self._rows = {str(k): i for i, k in enumerate(keys)}

    def _all(self) -> np.ndarray:
        if self._pending:
            self._vecs = np.concatenate([self._vecs, *self._pending])
            self._pending = []
        return self._vecs

    def save(self) -> None:
        """Write the cache atomically (new vectors only exist in memory until then)."""
        vecs = self._all()
        keys = np.array(sorted(self._rows, key=self._rows.get), dtype="U20")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for target, arr in ((self.keys_path, keys), (self.path, vecs)):
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npy")
            with os.fdopen(fd, "wb") as f:
                np.save(f, arr)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)

    def _encode(self, kind: str, texts: list[str], compute, progress: bool = False) -> np.ndarray:
        keys = [_key(kind, t) for t in texts]
        missing = list(dict.fromkeys(k_t for k_t in zip(keys, texts) if k_t[0] not in self._rows))
        if missing:
            from tqdm import tqdm

            with tqdm(total=len(missing), desc="embedding", unit="chunk", disable=not progress or len(missing) < 64,
                      leave=False) as bar:
                for i in range(0, len(missing), SAVE_EVERY):  # saved block by block: an interrupted run loses little
                    block = missing[i : i + SAVE_EVERY]
                    new = np.asarray(compute([t for _, t in block]), dtype=np.float32)
                    base = len(self._vecs) + sum(len(p) for p in self._pending)
                    for j, (k, _) in enumerate(block):
                        self._rows[k] = base + j
                    self._pending.append(new)
                    self.computed += len(block)
                    bar.update(len(block))
                    if len(missing) > SAVE_EVERY:
                        self.save()
        self.reused += len(texts) - len(missing)
        vecs = self._all()
        return vecs[[self._rows[k] for k in keys]] if keys else np.zeros((0, self.inner.dim), dtype=np.float32)

    def lookup(self, texts: list[str], kind: str = "passage") -> tuple[np.ndarray, np.ndarray]:
        """Cached vectors of `texts` without computing any: (vectors with zero rows where missing, bool mask of found)."""
        rows = [self._rows.get(_key(kind, t), -1) for t in texts]
        found = np.array([r >= 0 for r in rows], dtype=bool)
        out = np.zeros((len(texts), self.inner.dim), dtype=np.float32)
        if found.any():
            out[found] = self._all()[[r for r in rows if r >= 0]]
        return out, found

    @classmethod
    def all_for(cls, embedder: Any, settings: Settings) -> list["CachedEmbedder"]:
        """Every evaluation cache on disk made with this embedder (any dataset), for reuse by benchmarks."""
        probe = cls(embedder, Path(settings.cache_dir) / "eval", "probe", settings)
        suffix = probe.path.name.removeprefix("probe")
        out = []
        for p in sorted(probe.path.parent.glob(f"*{suffix}")):
            if not p.name.endswith(".keys.npy"):
                out.append(cls(embedder, p.parent, p.name.removesuffix(suffix), settings))
        return out

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode("passage", list(texts), lambda ts: self.inner.encode_passages(ts, progress=False), progress)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        # keyed by the precision questions are encoded with (rag.embedding: bfloat16 where the CPU has it)
        kind = "query" if getattr(self.inner, "query_precision", "float32") == "float32" else "query-bf16"
        return self._encode(kind, list(texts), self.inner.encode_queries)


class NoVectors:
    """Stands in for an embedder when only lexical retrieval is measured: the index gets zero vectors (never searched),
    so a large lexical-only corpus costs no embedding time. Asking it to embed a query is a bug."""

    model_id = "none (lexical-only evaluation)"
    dim = 1

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return np.zeros((len(texts), 1), dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        raise RagError("NoVectors cannot embed queries: dense and hybrid modes need a real embedder")


# ---------------------------------------------------------------- retrieval evaluation


@dataclass
class RetrievalResult:
    """Metrics of every mode/variant on one dataset."""

    dataset: str
    questions: int
    documents: int
    chunks: int
    rows: dict[str, dict[str, float]]  # label ("lexical", "dense", "hybrid", "hybrid[rrf_k=20]") -> metrics
    notes: list[str] = field(default_factory=list)
    misses: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # label -> (question, top-1 title) not ranked 1st
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "questions": self.questions, "documents": self.documents, "chunks": self.chunks,
                "rows": self.rows, "notes": self.notes, "seconds": round(self.seconds, 1),
                "misses": {k: [list(m) for m in v] for k, v in self.misses.items()}}


def parse_variant(spec: str) -> dict[str, Any]:
    """`"dense_weight=1,lexical_weight=0.5"` -> settings overrides (values typed like the Settings fields)."""
    defaults = Settings()
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or not hasattr(defaults, name):
            raise InputError(f"bad fusion variant {part!r}: expected FIELD=VALUE with a Settings field, e.g. rrf_k=20")
        cur = getattr(defaults, name)
        try:
            out[name] = type(cur)(raw) if not isinstance(cur, bool) else raw.lower() in ("1", "true", "yes", "on")
        except ValueError as e:
            raise InputError(f"bad value in fusion variant {part!r}: {e}") from e
    return out


def variant_label(overrides: dict[str, Any], mode: str = "hybrid") -> str:
    return mode if not overrides else f"{mode}[{','.join(f'{k}={v}' for k, v in overrides.items())}]"


def squad_corpus(rset: RetrievalSet) -> tuple[list[Document], list[Chunk], dict[str, str]]:
    """One Document and one Chunk per paragraph (paragraph = retrieval unit, as in the published baselines)."""
    docs, chunks, doc_to_pid = [], [], {}
    for p in rset.passages:
        doc_id = hashlib.sha1(f"{rset.name}:{p.pid}".encode()).hexdigest()[:16]
        simplified = to_simplified(p.text)
        # no title: the retrieval unit is the paragraph alone, as in the published baselines (a shared article title
        # would tell the retriever which article, not which paragraph)
        docs.append(Document(doc_id=doc_id, title="", text=p.text, text_simplified=simplified, date=None,
                             source=rset.name, path=f"{rset.name}#{p.pid}", script=detect_script(p.text)))
        chunks.append(Chunk(chunk_id=f"{doc_id}:0", doc_id=doc_id, text=p.text, text_simplified=simplified, start=0,
                            end=len(p.text), title="", source=rset.name))
        doc_to_pid[doc_id] = p.pid
    return docs, chunks, doc_to_pid


def seed_doc_ids(documents: Iterable[Document | dict[str, Any]]) -> dict[str, str]:
    """Article prefix ("002") -> doc_id, from each document's file name `002_<hash>.txt`."""
    out: dict[str, str] = {}
    for d in documents:
        path = d.get("path") if isinstance(d, dict) else d.path
        doc_id = d.get("doc_id") if isinstance(d, dict) else d.doc_id
        if path and doc_id:
            prefix = Path(str(path).split("#")[0]).name.split("_")[0]
            out.setdefault(prefix, doc_id)
    return out


def _ingest(paths: list[Path], settings: Settings, limit: int | None = None,
            seen: set[str] | None = None) -> tuple[list[Document], list[Chunk]]:
    """Documents and chunks of the first `limit` articles of `paths`, skipping documents whose id is in `seen` (updated)."""
    from rag.ingest import iter_ingest

    seen = set() if seen is None else seen
    docs: list[Document] = []
    chunks: list[Chunk] = []
    for doc, doc_chunks, _report in islice(iter_ingest(paths, settings, progress=False), limit):
        if doc is not None and doc.doc_id not in seen:  # a repeated article would only be a duplicate
            seen.add(doc.doc_id)
            docs.append(doc)
            chunks.extend(doc_chunks)
    return docs, chunks


def _rank(retriever: Any, question: str, mode: str, top_k: int) -> list[Chunk]:
    return [h.chunk for h in retriever.retrieve(question, top_k=top_k, mode=mode)]


def run_retrieval(index: Any, embedder: Any, settings: Settings, cases: list[RetrievalCase], gold_of: dict[str, str],
                  modes: Sequence[str] = MODES, variants: Sequence[dict[str, Any]] = (), progress: bool = True,
                  name: str = "") -> tuple[dict[str, dict[str, float]], dict[str, list[tuple[str, str]]]]:
    """Ask every case in every mode (and each hybrid fusion variant) of `rag.retrieval.Retriever` over `index`.

    `gold_of` maps a chunk's doc_id to the gold key the cases use (paragraph id or article prefix).
    Returns per-label metrics and, per label, the questions whose gold was not ranked first.
    """
    from tqdm import tqdm

    from rag.retrieval import Retriever

    runs = [(m, {}) for m in modes] + [("hybrid", v) for v in variants]
    rows: dict[str, dict[str, float]] = {}
    misses: dict[str, list[tuple[str, str]]] = {}
    top_k = max(max(KS), MRR_AT)
    if isinstance(embedder, CachedEmbedder) and any(m != "lexical" for m, _ in runs):
        prewarm_queries(embedder, [c.question for c in cases], progress=progress)
    for mode, overrides in runs:
        label = variant_label(overrides, mode)
        retriever = Retriever(index, embedder, replace(settings, **overrides))
        ranks: list[int | None] = []
        missed: list[tuple[str, str]] = []
        for case in tqdm(cases, desc=f"{name} {label}".strip(), unit="q", disable=not progress, leave=False):
            ranked = _rank(retriever, case.question, mode, top_k)
            rank = first_gold_rank([gold_of.get(c.doc_id, "") for c in ranked], case.gold)
            ranks.append(rank)
            if rank != 1:
                missed.append((case.question, (ranked[0].title or ranked[0].text[:30]) if ranked else "(nothing)"))
        rows[label] = retrieval_metrics(ranks)
        misses[label] = missed
        if isinstance(embedder, CachedEmbedder):
            embedder.save()
    return rows, misses


def prewarm_queries(embedder: CachedEmbedder, questions: list[str], batch: int = 64, progress: bool = True) -> None:
    """Embed all questions in batches up front (far faster than one by one). The text is prepared the way
    `Retriever` prepares a query for the embedder (strip, cut, width fold, t2s); if that ever differs, the
    retriever simply embeds its own text: only speed depends on this, never the result."""
    from tqdm import tqdm

    from rag.retrieval import MAX_QUERY_CHARS

    texts = list(dict.fromkeys(to_simplified(fold_width(q.strip()[:MAX_QUERY_CHARS])) for q in questions))
    for i in tqdm(range(0, len(texts), batch), desc="embedding questions", unit="batch", disable=not progress, leave=False):
        embedder.encode_queries(texts[i : i + batch])
    embedder.save()


def _build_index(docs: list[Document], chunks: list[Chunk], embedder: Any, settings: Settings, where: Path,
                 progress: bool) -> Any:
    from rag.store import Index

    index = Index.create(where, settings)
    index.add(docs, chunks, embedder, progress=progress)
    return index


def evaluate_retrieval(dataset: str | Path, settings: Settings | None = None, *, limit: int | None = None,
                       modes: Sequence[str] = MODES, variants: Sequence[dict[str, Any]] = (), distractors: int = 0,
                       embedder: Any = None, progress: bool = True, show_misses: int = 0) -> RetrievalResult:
    """Recall@1/5/20 and MRR@10 of lexical, dense, hybrid (and hybrid fusion `variants`) on one dataset, in one run.

    `dataset`: a SQuAD-format .json(.gz) (corpus = its pooled paragraphs) or a dev_qa.jsonl (corpus = the bundled articles plus
    the first `distractors` articles of the shared news file). The index is built once, in a temporary folder, from
    disk-cached embeddings. `embedder` defaults to `rag.embedding.get_embedder(settings)`, except when only lexical mode is
    measured: then nothing is embedded at all.
    """
    settings = settings or Settings.from_env()
    path = Path(dataset)
    started = time.perf_counter()
    notes: list[str] = []
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        rset = dev_qa_retrieval_set(path)
        from rag.ingest import default_corpus

        docs, chunks = _ingest(default_corpus(), settings)
        gold_of = {doc_id: prefix for prefix, doc_id in seed_doc_ids(docs).items()}
        missing = {c.gold for c in rset.cases} - set(gold_of.values())
        if missing:
            raise RagError(f"the bundled corpus has no article with prefix {sorted(missing)} (needed by {path.name})")
        name = cache_name = rset.name
        if distractors:
            added, more_chunks = _ingest([NEWS_PATH], settings, limit=distractors, seen={d.doc_id for d in docs})
            docs += added
            chunks += more_chunks
            name = f"{rset.name}+news{len(added)}"
            cache_name = f"{rset.name}+news"  # one cache for every distractor count: vectors are keyed by text
            notes.append(f"distractors: {len(added)} distinct articles from the first {distractors} lines of {NEWS_PATH.name}")
    else:
        rset = load_squad(path)
        docs, chunks, gold_of = squad_corpus(rset)
        name = cache_name = rset.name
        notes.append("corpus: every paragraph pooled, one passage per paragraph; gold = the question's own paragraph")
    cases = subsample(rset.cases, limit)
    if len(cases) < len(rset.cases):
        notes.append(f"questions: {len(cases)} of {len(rset.cases)} (seed {SAMPLE_SEED})")

    if embedder is None and (variants or any(m != "lexical" for m in modes)):
        from rag.embedding import get_embedder

        embedder = get_embedder(settings)
    cached = CachedEmbedder(embedder, Path(settings.cache_dir) / "eval", cache_name, settings) if embedder is not None else None
    if cached is None:
        notes.append("lexical only: no passage was embedded")
    with tempfile.TemporaryDirectory(prefix=f"rag-eval-{_slug(name)}-") as tmp:
        index = _build_index(docs, chunks, cached or NoVectors(), settings, Path(tmp) / "index", progress)
        if cached is not None:
            cached.save()
        rows, misses = run_retrieval(index, cached, settings, cases, gold_of, modes=modes, variants=variants,
                                     progress=progress, name=name)
        if cached is not None:
            cached.save()
            notes.append(f"embeddings: {cached.reused} from cache, {cached.computed} computed ({cached.path.name})")
        n_chunks = len(getattr(index, "chunks", chunks))
    return RetrievalResult(dataset=name, questions=len(cases), documents=len(docs), chunks=n_chunks, rows=rows,
                           notes=notes, misses={k: v[:show_misses] for k, v in misses.items()} if show_misses else {},
                           seconds=time.perf_counter() - started)


def format_retrieval_table(result: RetrievalResult) -> str:
    """A plain-text table: one row per mode/variant, Recall@1/5/20 and MRR@10; the best value per column is starred."""
    cols = [f"R@{k}" for k in KS] + [f"MRR@{MRR_AT}"]
    width = max([len("mode")] + [len(label) for label in result.rows])
    best = {c: max((r[c] for r in result.rows.values()), default=0.0) for c in cols}
    lines = [f"== {result.dataset}: {result.questions} questions, {result.documents} documents, {result.chunks} chunks "
             f"({result.seconds:.0f} s)",
             "  ".join([f"{'mode':<{width}}"] + [f"{c:>7}" for c in cols])]
    for label, r in result.rows.items():
        cells = [f"{r[c]:.3f}{'*' if r[c] == best[c] and len(result.rows) > 1 else ' '}" for c in cols]
        lines.append("  ".join([f"{label:<{width}}"] + [f"{c:>7}" for c in cells]))
    lines += [f"  {n}" for n in result.notes]
    for label, missed in result.misses.items():
        if missed:
            lines.append(f"  {label}: gold not ranked first for")
            lines += [f"    - {q}  (top-1: {top})" for q, top in missed]
    return "\n".join(lines)


# ---------------------------------------------------------------- answer evaluation


def _norm(text: str) -> str:
    return to_simplified(fold_width(text)).lower()


def answer_matches(answer_text: str, answer_any: Sequence[str]) -> bool:
    """True when the answer contains one of `answer_any`, as written or after t2s + width folding of both sides."""
    norm = _norm(answer_text)
    return any(a in answer_text or _norm(a) in norm for a in answer_any if a)


def score_answer(case: QACase, answer: Answer, gold_doc_id: str | None, mode: str = "", latency_ms: float = 0.0) -> QAOutcome:
    """Score one Answer: an answerable case is correct when found and the text matches; an unanswerable one when not found.

    Citation counts are kept only when the case names a gold article (`gold_doc_id`).
    """
    if case.doc is None and not case.answer_any:
        correct = not answer.found
    else:
        correct = bool(answer.found) and answer_matches(answer.text, case.answer_any)
    cited = cited_gold = 0
    if gold_doc_id is not None and answer.found:
        cited = len(answer.citations)
        cited_gold = sum(1 for c in answer.citations if c.doc_id == gold_doc_id)
    return QAOutcome(case=case, mode=mode or answer.mode, correct=correct, found=bool(answer.found), answer_text=answer.text,
                     cited=cited, cited_gold=cited_gold, latency_ms=latency_ms,
                     standalone_question=answer.standalone_question or "", confidence=float(answer.confidence or 0.0),
                     notes=list(answer.notes or []))


def summarize_qa(outcomes: Sequence[QAOutcome]) -> dict[str, dict[str, float]]:
    """Per question kind, for English (`lang:en`) and traditional-script questions, and `overall`: n, answer accuracy (answerable), not-found accuracy (unanswerable), citation precision
    (micro-averaged over the citations of answered questions with a gold article) and latency p50/p95 (ms)."""
    groups: dict[str, list[QAOutcome]] = {}
    for o in outcomes:
        groups.setdefault(o.case.kind, []).append(o)
    for o in outcomes:  # cross-cutting groups: English and traditional-script questions
        if o.case.lang != "zh":
            groups.setdefault(f"lang:{o.case.lang}", []).append(o)
        elif detect_script(o.case.question) == "traditional":
            groups.setdefault("traditional", []).append(o)
    groups["overall"] = list(outcomes)
    table: dict[str, dict[str, float]] = {}
    for kind, outs in groups.items():
        answerable = [o for o in outs if not _unanswerable(o.case)]
        unanswerable = [o for o in outs if _unanswerable(o.case)]
        cited = sum(o.cited for o in outs)
        lat = [o.latency_ms for o in outs if o.error is None]
        table[kind] = {
            "n": len(outs),
            "accuracy": _share(sum(o.correct for o in answerable), len(answerable)),
            "not_found_accuracy": _share(sum(o.correct for o in unanswerable), len(unanswerable)),
            "citation_precision": _share(sum(o.cited_gold for o in outs), cited),
            "citations": cited,
            "errors": sum(o.error is not None for o in outs),
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
        }
    return table


def _unanswerable(case: QACase) -> bool:
    return case.doc is None and not case.answer_any


def _share(k: float, n: int) -> float:
    return k / n if n else float("nan")


@dataclass
class QAResult:
    """Outcomes of one answer mode over the QA sets, with their summary table."""

    mode: str
    outcomes: list[QAOutcome]
    table: dict[str, dict[str, float]]
    notes: list[str] = field(default_factory=list)

    def failures(self) -> list[QAOutcome]:
        return [o for o in self.outcomes if not o.correct or (o.cited and o.cited_gold < o.cited)]

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "table": self.table, "notes": self.notes,
                "outcomes": [{"id": o.case.qid, "kind": o.case.kind, "question": o.case.question,
                              "standalone_question": o.standalone_question, "answer": o.answer_text, "found": o.found,
                              "correct": o.correct, "cited": o.cited, "cited_gold": o.cited_gold,
                              "latency_ms": round(o.latency_ms, 1), "error": o.error,
                              "confidence": o.confidence, "notes": o.notes} for o in self.outcomes]}


def _ask(assistant: Any, case: QACase, history: list[tuple[str, str]], mode: str) -> tuple[Answer | None, float, str | None]:
    t0 = time.perf_counter()
    try:
        answer = assistant.ask(case.question, history=list(history) or None, mode=mode)
        err = None
    except RagError as e:
        answer, err = None, f"{type(e).__name__}: {e}"
    return answer, (time.perf_counter() - t0) * 1000, err


def run_qa(assistant: Any, qa_cases: Sequence[QACase], conversations: Sequence[Sequence[QACase]], mode: str,
           progress: bool = True, gold_ids: dict[str, str] | None = None) -> list[QAOutcome]:
    """Ask every single question, then every conversation turn by turn passing the (question, answer) history so far.
    `gold_ids` maps a case's `doc` (a news id such as crud04889) to the indexed doc_id; bundled prefixes are found by name."""
    from tqdm import tqdm

    doc_ids = {**seed_doc_ids(assistant.documents()), **(gold_ids or {})}
    total = len(qa_cases) + sum(len(c) for c in conversations)
    bar = tqdm(total=total, desc=f"qa {mode}", unit="q", disable=not progress, leave=False)
    outcomes: list[QAOutcome] = []

    def one(case: QACase, history: list[tuple[str, str]]) -> str:
        answer, ms, err = _ask(assistant, case, history, mode)
        gold = doc_ids.get(case.doc) if case.doc else None
        if case.doc and gold is None:
            err = f"no indexed article has the prefix {case.doc!r}"
        if answer is None:
            outcomes.append(QAOutcome(case=case, mode=mode, correct=False, found=False, answer_text="", latency_ms=ms,
                                      error=err))
            text = ""
        else:
            out = score_answer(case, answer, gold, mode=answer.mode, latency_ms=ms)
            out.error = err
            outcomes.append(out)
            text = answer.text
        bar.update(1)
        return text

    for case in qa_cases:
        one(case, [])
    for conv in conversations:
        history: list[tuple[str, str]] = []
        for case in conv:
            history.append((case.question, one(case, history)))
    bar.close()
    return outcomes


NEWS_DISTRACTORS = 300  # news articles indexed beside the gold ones when a set asks about the news corpus
NEWS_SETS = (SHARED_DIR / "eval" / "dev_news_qa.jsonl", SHARED_DIR / "eval" / "dev_news_chat.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout2.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout3.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout4.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout5.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout6.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout7.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout8.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout9.jsonl",
             PROJECT_ROOT / "tests" / "data" / "news_qa_heldout10.jsonl")  # one index for every news set


def _case_docs(path: Path) -> set[str]:
    out: set[str] = set()
    for row in _read_jsonl(path):
        for t in row.get("turns") or [row]:
            if t.get("doc"):
                out.add(str(t["doc"]))
    return out


def news_index(sets: Sequence[str | Path], settings: Settings, distractors: int = NEWS_DISTRACTORS,
               progress: bool = True) -> tuple[Path, dict[str, str]]:
    """An index of the bundled articles, every news article the sets (and the shared news dev sets) ask about, and the
    first `distractors` other articles of the news file; built once under `cache_dir/eval/` and reused.
    Returns (index folder, news id -> doc_id)."""
    from rag.ingest import default_corpus
    from rag.store import Index, ingest_into_index

    wanted: set[str] = set()
    for s in [*sets, *[p for p in NEWS_SETS if p.exists()]]:
        wanted |= {d for d in _case_docs(Path(s)) if d.startswith("crud")}
    rows: list[dict] = []
    others = 0
    with gzip.open(NEWS_PATH, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["id"] in wanted:
                rows.append(row)
            elif others < distractors:
                rows.append(row)
                others += 1
    missing = wanted - {r["id"] for r in rows}
    if missing:
        raise RagError(f"{NEWS_PATH.name} has no article {sorted(missing)[:5]}")
    key = hashlib.sha1(json.dumps([sorted(wanted), distractors, settings.chunk_size, settings.chunk_overlap,
                                   settings.embedding_model]).encode()).hexdigest()[:10]
    folder = Path(settings.cache_dir) / "eval" / f"news-index-{key}"
    ids_path = folder / "news_ids.json"
    if Index.exists(folder / "index") and ids_path.exists():
        return folder / "index", json.loads(ids_path.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    subset = folder / "news_subset.jsonl"
    with open(subset, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    from rag.embedding import get_embedder

    where = replace(settings, index_root=folder, index_name="index")
    cached = CachedEmbedder(get_embedder(settings), Path(settings.cache_dir) / "eval", "news", settings)
    reports = ingest_into_index([*default_corpus(), subset], where, progress=progress, rebuild=True, embedder=cached)
    cached.save()
    ids: dict[str, str] = {}
    for r in reports:
        if r.doc_id and "#" in r.path and Path(r.path.split("#")[0]).name == subset.name:
            n = int(r.path.rsplit("#", 1)[1])
            ids.setdefault(rows[n - 1]["id"], r.doc_id)
    ids_path.write_text(json.dumps(ids), encoding="utf-8")
    return folder / "index", ids


def llm_available(settings: Settings) -> str | None:
    """None when LLM answering may run here, else why not (`rag.llm.available`)."""
    from rag.llm import available

    return available(settings)


def evaluate_qa(sets: Sequence[str | Path] | None = None, settings: Settings | None = None, *,
                modes: Sequence[str] = ("extractive",), assistant: Any = None, limit: int | None = None,
                progress: bool = True) -> list[QAResult]:
    """Answer the QA sets (default: the shared dev_qa.jsonl and dev_chat.jsonl) with `rag.assistant.Assistant` in each answer
    mode and score them. A set whose lines have `turns` is a chat set. `assistant` defaults to `Assistant.default(settings)`;
    one warm-up question (not scored) runs first so latency excludes model loading."""
    settings = settings or Settings.from_env()
    qa_cases: list[QACase] = []
    conversations: list[list[QACase]] = []
    for s in sets or (DEV_QA_PATH, DEV_CHAT_PATH):
        rows = _read_jsonl(Path(s))
        if rows and "turns" in rows[0]:
            conversations += load_dev_chat(s)
        else:
            qa_cases += load_dev_qa(s)
    qa_cases = subsample(qa_cases, limit)
    gold_ids: dict[str, str] = {}
    news = any(c.doc and c.doc.startswith("crud") for c in [*qa_cases, *(t for conv in conversations for t in conv)])
    if assistant is None:
        from rag.assistant import Assistant

        if news:
            folder, gold_ids = news_index(list(sets or ()), settings, progress=progress)
            assistant = Assistant.open(folder, settings)
        else:
            assistant = Assistant.default(settings)
    results = []
    for mode in modes:
        notes = []
        if mode == "llm":
            reason = llm_available(settings)
            if reason:
                results.append(QAResult(mode=mode, outcomes=[], table={}, notes=[f"LLM mode not measured: {reason}"]))
                continue
        warm = qa_cases[0] if qa_cases else conversations[0][0]
        _ask(assistant, warm, [], mode)  # loads models / builds caches; not scored
        outcomes = run_qa(assistant, qa_cases, conversations, mode, progress=progress, gold_ids=gold_ids)
        modes_seen = sorted({o.mode for o in outcomes if o.error is None})
        if modes_seen and modes_seen != [mode]:
            notes.append("answer modes reported by the answers: " + ", ".join(
                f"{m} x{sum(o.mode == m for o in outcomes)}" for m in modes_seen))
        results.append(QAResult(mode=mode, outcomes=outcomes, table=summarize_qa(outcomes), notes=notes))
    return results


# ---------------------------------------------------------------- reading comprehension (gold paragraph given)


@dataclass
class ReadingResult:
    """Answer accuracy and character F1 of one answer mode on a SQuAD-format set, the gold paragraph given."""

    dataset: str
    mode: str
    questions: int
    accuracy: float
    f1: float
    found: float
    p50_ms: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def char_f1(prediction: str, gold: str) -> float:
    """Character-overlap F1 (as CMRC2018 / DRCD score Chinese answers), after t2s, width folding and dropping
    punctuation, spaces and citation markers."""
    def norm(t: str) -> list[str]:
        t = _norm(re.sub(r"\[\d+\]", "", t))
        return [c for c in t if c.isalnum()]

    p, g = norm(prediction), norm(gold)
    if not p or not g:
        return 0.0
    common = sum(min(p.count(c), g.count(c)) for c in set(g))
    if not common:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def evaluate_reading(dataset: str | Path, settings: Settings | None = None, *, modes: Sequence[str] = ("extractive",),
                     limit: int = 200, progress: bool = True) -> list[ReadingResult]:
    """Reading comprehension: `limit` sampled questions of a SQuAD-format set, each asked through the Assistant with
    the doc filter set to its own paragraph (the gold paragraph given, as the published readers are scored). A
    question is right when the answer contains a gold answer; F1 is `char_f1` of the answer text against the best
    gold answer. The index holds the sampled questions' paragraphs, embedded with the disk cache."""
    from tqdm import tqdm

    from rag.assistant import Assistant
    from rag.embedding import get_embedder

    settings = settings or Settings.from_env()
    path = Path(dataset)
    with _open_text(path) as f:
        data = json.load(f)
    items = []
    for a, article in enumerate(data["data"]):
        for p, para in enumerate(article.get("paragraphs", [])):
            for qa in para.get("qas", []):
                golds = [x["text"] for x in qa.get("answers", []) if x.get("text")]
                if golds and str(qa.get("question") or "").strip():
                    items.append((f"{a}-{p}", qa["question"].strip(), golds))
    items = subsample(items, limit)
    rset = load_squad(path)
    wanted = {pid for pid, _, _ in items}
    rset = replace(rset, passages=[p for p in rset.passages if p.pid in wanted])
    docs, chunks, doc_to_pid = squad_corpus(rset)
    doc_of = {pid: d for d, pid in doc_to_pid.items()}
    cached = CachedEmbedder(get_embedder(settings), Path(settings.cache_dir) / "eval", rset.name, settings)
    results = []
    with tempfile.TemporaryDirectory(prefix="rag-reading-") as tmp:
        index = _build_index(docs, chunks, cached, settings, Path(tmp) / "index", progress)
        cached.save()
        bot = Assistant(index, settings, embedder=cached)
        for mode in modes:
            if mode == "llm" and (reason := llm_available(settings)):
                results.append(ReadingResult(rset.name, mode, 0, float("nan"), float("nan"), float("nan"),
                                             float("nan"), [f"not measured: {reason}"]))
                continue
            right, f1s, found, lat = 0, [], 0, []
            for pid, question, golds in tqdm(items, desc=f"reading {mode}", disable=not progress, leave=False):
                t = time.perf_counter()
                try:
                    ans = bot.ask(question, filters={"doc_ids": [doc_of[pid]]}, mode=mode)
                except RagError:
                    f1s.append(0.0)
                    continue
                lat.append((time.perf_counter() - t) * 1000)
                found += ans.found
                text = ans.text if ans.found else ""
                right += bool(text) and answer_matches(text, golds)
                f1s.append(max(char_f1(text, g) for g in golds) if text else 0.0)
            n = len(items)
            results.append(ReadingResult(rset.name, mode, n, right / n, sum(f1s) / n, found / n, percentile(lat, 50)))
    return results


def _pct(x: float) -> str:
    return "   -  " if isinstance(x, float) and math.isnan(x) else f"{100 * x:5.1f}%"


def _ms(x: float) -> str:
    return "    -" if math.isnan(x) else f"{x:5.0f}"


def format_qa_table(results: Sequence[QAResult], failures: bool = True) -> str:
    """Per kind and overall, side by side for each answer mode: accuracy, not-found accuracy, citation precision, latency."""
    lines: list[str] = []
    measured = [r for r in results if r.table]
    kinds: list[str] = []
    for r in measured:
        kinds += [k for k in r.table if k not in kinds and k != "overall"]
    kinds.append("overall")
    if measured:
        head = f"{'kind':<13}{'n':>4}"
        for r in measured:
            head += f" | {r.mode + ': acc':>14} {'not-found':>9} {'cite-prec':>9} {'p50 ms':>6} {'p95 ms':>6}"
        lines.append(head)
        for k in kinds:
            n = next((int(r.table[k]["n"]) for r in measured if k in r.table), 0)
            row = f"{k:<13}{n:>4}"
            for r in measured:
                t = r.table.get(k)
                row += (f" | {_pct(t['accuracy']):>14} {_pct(t['not_found_accuracy']):>9} {_pct(t['citation_precision']):>9}"
                        f" {_ms(t['p50_ms']):>6} {_ms(t['p95_ms']):>6}") if t else " | " + " " * 48
            lines.append(row)
    for r in results:
        lines += [f"  [{r.mode}] {n}" for n in r.notes]
        if failures and r.outcomes:
            bad = r.failures()
            lines.append(f"  [{r.mode}] failures ({len(bad)}):" if bad else f"  [{r.mode}] no failures")
            for o in bad:
                what = ("error: " + o.error) if o.error else (
                    "answered although the articles do not say" if _unanswerable(o.case) and o.found else
                    "not found" if not o.found else
                    f"wrong citations {o.cited - o.cited_gold}/{o.cited}" if o.correct else
                    f"expected one of {o.case.answer_any}")
                q = o.case.question + (f"  (standalone: {o.standalone_question})"
                                       if o.standalone_question and o.standalone_question != o.case.question else "")
                lines.append(f"    - {o.case.qid} [{o.case.kind}] {q}\n      -> {o.answer_text.strip()[:300]!r}  ({what})")
    return "\n".join(lines)
