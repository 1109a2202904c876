"""Hybrid retrieval: dense (vector store) + lexical (BM25) candidates, filtered, fused, near-duplicates collapsed.

    retriever = Retriever(index, embedder, settings)
    hits = retriever.retrieve("西宁对接会签了多少个项目？", top_k=5, filters=Filters(date_from="2024-01-01"))

Fusion (`settings.fusion`):
- "convex" (default): `dense_weight * d + lexical_weight * l`, each side scaled by how sure it is.
  d = (cosine - lowest candidate cosine) / max(cosine range over the dense candidates, 0.08): the best passage gets 1
  only when dense separates its candidates; when the top 50 lie within a few hundredths of each other (typical of e5
  on an English question over Chinese news) dense counts less.
  l = BM25 / best BM25, times the gate min(1, coverage / 0.2), coverage = best BM25 / the query's best possible BM25
  (sum of its tokens' idf, unknown tokens counted as the rarest): a Chinese question's best passage covers 25-65% of
  it (gate 1); an English question that matched only a place name through pinyin covers a few percent.
- "rrf": weighted reciprocal rank fusion, `dense_weight / (rrf_k + rank_d) + lexical_weight / (rrf_k + rank_l)`.

Questions without Han characters (English over Chinese text) are fused by `settings.cross_lingual_fusion` (rrf):
their BM25 scores come from pinyin names, stray English words and the CC-CEDICT glosses of the English words
(`settings.cross_lingual_glosses` per word), whose size says little, so only ranks count.
With all 19,975 news articles as distractors, dev_qa hybrid R@1 was 0.944 with convex for every question (the English
d09 lost) and 1.000 with rrf; on the Chinese DRCD/CMRC sets convex stays far ahead (table above).

Names in English questions: a capitalised word that spells pinyin (Xining, Xi'an, Zhongguangxue) names something the
Chinese text must spell with whole words (Xi'an is 西安, not 先进). In hybrid mode the first `NAME_RERANK` (all) fused
candidates of an English question are reordered so that those spelling more of its names come first (ties keep the
fused order). Literal English words in Chinese news (Tech, App, share) otherwise let English-laden articles outrank
the passage about the place the question names.

R@1 with the bundled e5 model, `rag eval retrieval --dataset ... --distractors 2000 --variant fusion=rrf`
(paragraphs pooled; dev_qa = its 18 answerable questions over the five articles + 1,999 news articles):

| set | lexical | dense | RRF 1:1 (k=60) | convex (default) |
|---|---|---|---|---|
| DRCD dev (3,524 q) | 0.930 | 0.774 | 0.874 | 0.939 |
| CMRC trial (1,002 q) | 0.965 | 0.946 | 0.965 | 0.979 |
| dev_qa + 1,999 news | 0.944 | 0.889 | 1.000 | 1.000 |
"""
from __future__ import annotations

import dataclasses
import re
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Sequence

import numpy as np

from rag.errors import InputError, RagError
from rag.lexical import name_coverage, pinyin_names
from rag.lexical import top_k as _top_k
from rag.records import Chunk, Hit
from rag.script import fold_width, han_count, to_simplified
from rag.tagging import seed
from rag.settings import Settings

MODES = ("hybrid", "dense", "lexical")
FUSIONS = ("convex", "rrf")
MAX_QUERY_CHARS = 2000  # longer questions are cut (the embedder reads 512 tokens anyway)
CONFIDENT_COVERAGE = 0.2  # a lexical match covering this share of the query's best possible BM25 counts fully
DENSE_MIN_SPAN = 0.08  # cosine range below which the dense candidates count as not clearly separated
NAME_RERANK = 100  # hybrid: how many fused candidates (all of them by default: 2 x 50) of an English question are reordered
GLOSS_SHARE = 0.5  # weight of dictionary-gloss coverage in that reordering, against 1 per name spelled
NEAR_DUPLICATE_JACCARD = 0.8  # character 5-gram Jaccard above which two passages count as the same
_DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass
class Filters:
    """Metadata filters; every given one must hold. Dates are ISO (YYYY, YYYY-MM or YYYY-MM-DD, inclusive);
    `source` matches when it occurs in the document's source (script- and case-insensitive)."""

    source: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    doc_ids: Sequence[str] | None = None

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                value = value.strip()
                if not _DATE_RE.match(value) or not _valid_date(value):
                    raise InputError(f"{name} must be a date like 2024-04-11 (or 2024-04, 2024), "
                                     f"got {value!r}")
                setattr(self, name, value)
        if isinstance(self.doc_ids, str):
            self.doc_ids = [self.doc_ids]

    @property
    def empty(self) -> bool:
        return not (self.source or self.date_from or self.date_to or self.doc_ids is not None)

    def accepts(self, meta: dict[str, Any], doc_id: str) -> bool:
        """Whether a document (its manifest entry) passes every filter. Undated documents fail date filters."""
        if self.doc_ids is not None and doc_id not in self.doc_ids:
            return False
        if self.source and _norm(self.source) not in _norm(meta.get("source") or ""):
            return False
        d = meta.get("date")
        if self.date_from and (not d or d < self.date_from):
            return False
        if self.date_to and (not d or d[: len(self.date_to)] > self.date_to):
            return False
        return True


def _valid_date(value: str) -> bool:
    parts = [int(p) for p in value.split("-")] + [1, 1]
    try:
        date(parts[0], parts[1], parts[2])
    except ValueError:
        return False
    return True


def _norm(text: str) -> str:
    return to_simplified(fold_width(text)).lower().strip()


def _grams(text: str, n: int = 5) -> set[str]:
    t = re.sub(r"\s+", "", text)
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))}


def near_duplicate(a: set[str], b: set[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> bool:
    """Character 5-gram Jaccard similarity above `threshold`."""
    if not a or not b:
        return False
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter) > threshold


@dataclass
class _Candidates:
    """Per-row raw scores and 1-based ranks from each retriever."""

    dense: dict[int, tuple[float, int]] = field(default_factory=dict)
    lexical: dict[int, tuple[float, int]] = field(default_factory=dict)
    lexical_upper: float = 0.0  # best possible BM25 score of the query


def fuse(c: _Candidates, settings: Settings) -> list[tuple[int, float]]:
    """(row, fused score) best first, by `settings.fusion` (see the module docstring)."""
    wd, wl = float(settings.dense_weight), float(settings.lexical_weight)
    rows = list(dict.fromkeys([*c.dense, *c.lexical]))
    fused: dict[int, float] = {}
    if settings.fusion == "rrf":
        k = float(settings.rrf_k)
        for r in rows:
            s = 0.0
            if r in c.dense:
                s += wd / (k + c.dense[r][1])
            if r in c.lexical:
                s += wl / (k + c.lexical[r][1])
            fused[r] = s
    elif settings.fusion == "convex":
        ds = [s for s, _ in c.dense.values()]
        lo, span = (min(ds), max(max(ds) - min(ds), DENSE_MIN_SPAN)) if ds else (0.0, 1.0)
        lmax = max((s for s, _ in c.lexical.values()), default=0.0)
        gate = min(1.0, lmax / c.lexical_upper / CONFIDENT_COVERAGE) if lmax > 0 and c.lexical_upper > 0 else 0.0
        for r in rows:
            dn = (c.dense[r][0] - lo) / span if r in c.dense else 0.0
            ln = c.lexical[r][0] / lmax * gate if r in c.lexical else 0.0
            fused[r] = wd * dn + wl * ln
    else:
        raise InputError(f"unknown fusion {settings.fusion!r}: use one of {', '.join(FUSIONS)}")
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))


@lru_cache(maxsize=1024)
def _gloss_groups(question: str) -> tuple[tuple[str, ...], ...]:
    """CC-CEDICT glosses of an English question's words (asked words, then capitalised ones), once per question:
    BM25 scores them and the name rerank counts them."""
    from rag.question import english_glosses

    return tuple(tuple(g) for g in english_glosses(question) + english_glosses(question, capitalized=True))


class Retriever:
    """Ranked passages for a question from an Index (rag.store), in hybrid, dense or lexical mode."""

    def __init__(self, index, embedder, settings: Settings | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings or index.settings

    # ------------------------------------------------------------ filters

    def allowed_rows(self, filters: Filters | None) -> np.ndarray | None:
        """Bool mask over index rows that pass `filters` (None = no filter)."""
        if filters is None or filters.empty:
            return None
        docs = self.index.documents
        order, row_doc = self.index.row_documents()
        ok = np.array([filters.accepts(docs.get(d, {}), d) for d in order], dtype=bool)
        return ok[row_doc] if len(row_doc) else np.zeros(0, dtype=bool)

    # ------------------------------------------------------------ retrieval

    def query_vector(self, question: str) -> np.ndarray:
        """The question's embedding (width-folded, simplified like the passages)."""
        return np.asarray(self.embedder.encode_queries([to_simplified(fold_width(question))]), dtype=np.float32)[0]

    def candidates(self, question: str, mode: str, n: int, allowed: np.ndarray | None,
                   qvec: np.ndarray | None = None) -> _Candidates:
        """Top-n rows (raw score, rank) from the dense and/or lexical side, only among `allowed` rows."""
        out = _Candidates()
        index = self.index
        if mode in ("dense", "hybrid") and index.vectors is not None and len(index.chunks):
            qvec = self.query_vector(question) if qvec is None else qvec
            allowed_vids = None if allowed is None else index.vids[allowed]
            vids, scores = index.vectors.search(qvec, n, allowed_vids)
            rank = 0
            for row, s in zip(index.rows_of_vids(vids), scores):
                if row is not None:  # unknown ids: vectors of a crashed write
                    rank += 1
                    out.dense[row] = (float(s), rank)
        if mode in ("lexical", "hybrid") and len(index.lexical):
            scores, out.lexical_upper = index.lexical.scores(self._lexical_query(question))
            for rank, (row, s) in enumerate(_top_k(scores, n, allowed), 1):
                out.lexical[row] = (s, rank)
        return out

    def _lexical_query(self, question: str) -> str | list[str]:
        """What BM25 scores: the question itself, or for a question without Han characters (English over Chinese
        text) the Chinese glosses of its words, when CC-CEDICT has any (literal English words match almost nothing)."""
        if han_count(question) or self.settings.cross_lingual_glosses <= 0:
            return question
        from rag.lexical import tokenize_query

        glosses = [w for g in _gloss_groups(question) for w in g[: self.settings.cross_lingual_glosses]]
        return tokenize_query(question) + glosses if glosses else question

    def retrieve(self, question: str, top_k: int | None = None, filters: Filters | None = None,
                 mode: str = "hybrid") -> list[Hit]:
        """The `top_k` best passages (default settings.top_k), duplicates and near-duplicates collapsed.

        `Hit.scores` holds the raw dense cosine / BM25 score and 1-based rank of each side that found the passage
        (`dense`, `dense_rank`, `lexical`, `lexical_rank`), and `lexical_coverage` (BM25 / best possible)."""
        if mode not in MODES:
            raise InputError(f"unknown retrieval mode {mode!r}: use one of {', '.join(MODES)}")
        if mode != "lexical" and self.embedder is None:
            raise RagError(f"{mode} retrieval needs an embedder (Retriever(index, get_embedder(settings)))")
        if not isinstance(question, str) or not question.strip():
            raise InputError("the question is empty")
        question = question.strip()[:MAX_QUERY_CHARS]
        k = int(top_k or self.settings.top_k)
        if k < 1:
            raise InputError("top_k must be at least 1")
        qvec = self.query_vector(question) if mode != "lexical" and self.index.chunks else None  # outside the lock
        with self.index.lock:
            if not self.index.chunks:
                return []
            allowed = self.allowed_rows(filters)
            if allowed is not None and not allowed.any():
                return []
            n = max(int(self.settings.candidates), 3 * k)
            cand = self.candidates(question, mode, n, allowed, qvec)
            if mode == "dense":
                ranked = [(r, s) for r, (s, _) in sorted(cand.dense.items(), key=lambda x: x[1][1])]
            elif mode == "lexical":
                ranked = [(r, s) for r, (s, _) in sorted(cand.lexical.items(), key=lambda x: x[1][1])]
            else:
                cross = not han_count(question)  # BM25 over literal English words says little about Chinese text:
                fusion = self.settings.cross_lingual_fusion if cross else self.settings.fusion  # fuse by rank
                ranked = fuse(cand, self.settings if fusion == self.settings.fusion
                              else dataclasses.replace(self.settings, fusion=fusion))
                names = pinyin_names(question) if cross else []
                if names:
                    ranked = self._prefer_named(question, ranked, names)
            return self._collapse(ranked, cand, k)

    def _prefer_named(self, question: str, ranked: list[tuple[int, float]], names: list[str]) -> list[tuple[int, float]]:
        """The first NAME_RERANK candidates reordered by how many of `names` their title + text spell, then by the share
        of the question's other words whose dictionary glosses they contain (held -> 举行); ties keep the fused order.
        Each name spelled adds the head's score range, the glosses at most half of it, so scores still fall with rank."""
        from rag.question import gloss_coverage

        head = ranked[:NAME_RERANK]
        if not head:
            return ranked
        groups = _gloss_groups(question)
        chunks = self.index.chunks
        step = head[0][1] - head[-1][1] + 1e-6
        scored = []
        for r, score in head:
            seed(chunks[r].text_simplified, chunks[r].tags)  # its words were tagged at ingest
            text = f"{chunks[r].title or ''}\n{chunks[r].text_simplified}"
            spelled = round(name_coverage(names, text) * len(names))
            glossed = gloss_coverage(groups, text)
            scored.append((r, score + spelled * step + GLOSS_SHARE * glossed * step))
        return sorted(scored, key=lambda x: -x[1]) + ranked[NAME_RERANK:]

    def _collapse(self, ranked: list[tuple[int, float]], cand: _Candidates, k: int) -> list[Hit]:
        """Keep the best of each group of identical or near-identical passages; first k."""
        hits: list[Hit] = []
        kept_texts: set[str] = set()
        kept_grams: list[set[str]] = []
        for row, score in ranked:
            chunk: Chunk = self.index.chunks[row]
            key = re.sub(r"\s+", "", chunk.text_simplified)
            if key in kept_texts:
                continue
            grams = _grams(key)
            if any(near_duplicate(grams, g) for g in kept_grams):
                continue
            kept_texts.add(key)
            kept_grams.append(grams)
            scores: dict[str, float] = {}
            if row in cand.dense:
                scores["dense"], scores["dense_rank"] = cand.dense[row][0], float(cand.dense[row][1])
            if row in cand.lexical:
                scores["lexical"], scores["lexical_rank"] = cand.lexical[row][0], float(cand.lexical[row][1])
                if cand.lexical_upper > 0:
                    scores["lexical_coverage"] = cand.lexical[row][0] / cand.lexical_upper
            hits.append(Hit(chunk=chunk, score=float(score), rank=len(hits) + 1, scores=scores))
            if len(hits) >= k:
                break
        return hits


# ---------------------------------------------------------------- llama-index adapter


def as_llama_retriever(retriever: Retriever, top_k: int | None = None, filters: Filters | None = None,
                       mode: str = "hybrid"):
    """A llama-index `BaseRetriever` over `retriever` (nodes are `Chunk.to_node()`), to compose with llama-index
    query engines, e.g. `RetrieverQueryEngine.from_args(as_llama_retriever(r), llm=...)`."""
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle

    class HybridRetriever(BaseRetriever):
        """Hybrid dense + BM25 retrieval over a rag index."""

        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            hits = retriever.retrieve(query_bundle.query_str, top_k=top_k, filters=filters, mode=mode)
            return [NodeWithScore(node=h.chunk.to_node(), score=h.score) for h in hits]

    return HybridRetriever()
