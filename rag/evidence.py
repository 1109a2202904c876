"""Evidence for the readers: the retrieved passages' sentences ranked for the question, the question's key entities
checked against each document, and the compact evidence an LLM reads.

- **Sentence ranking** is a logistic model over question-sentence features (`features`): IDF-weighted term coverage,
  character-bigram recall, title/passage coverage, retrieval rank and dense score, whether the sentence holds the kind
  of span the question asks for, entity coverage. Weights live in `rag/data/sentence_ranker.json`, written by
  `python -m rag.train` (its docstring has the data recipe and the measured figures).
- **Entity consistency**: the places, organisations, people, quoted names and codes a question names
  (`key_entities`) must all be named by a document before any of its sentences may answer. A question about 合肥 is
  never answered from an article that does not name 合肥.
- **Compact evidence** (`snippets`): the best sentences with a neighbour on each side, numbered, with their title and
  date, within a character budget (what the LLM reader reads instead of whole chunks).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rag.lexical import name_coverage, pinyin_names
from rag.question import Question, cedict, gloss_coverage
from rag.records import Hit
from rag.script import cn_numeral, han_count, measure_words, to_simplified, word_list
from rag.tagging import jieba_modules, pos_tokens, seed, seed_sentence

WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "sentence_ranker.json"

_ENTITY_TAGS = {"ns", "nt", "nr", "nrfg", "nrt"}
INJECTION_PATH = Path(__file__).resolve().parent / "data" / "injection_patterns.txt"
_QUOTED = re.compile(r"[《“\"「『]([^》”\"」』]{2,30})[》”\"」』]")
YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_CODE = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]+\d{2,}|\d{2,}[A-Z]+)(?![A-Za-z0-9])")  # train, model, product codes
# a product or model named by a Latin word and its number (Redmi 12, AWE2024; not a year after a space: OPPO 2023)
_MODEL = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,}(?:\s(?!(?:19|20)\d{2}(?!\d))\d+|\d+)[A-Za-z]*(?![A-Za-z0-9])")
_PLACE_SUFFIX = re.compile(r"(?<=..)(?:省|市|区|县|镇|自治区)$")
_NUMBER = re.compile(r"\d|[一二三四五六七八九十两百千万亿]+[" + "".join(sorted(measure_words().count | {"元", "倍"})) + "]")
_DATE = re.compile(r"\d{1,2}\s*月|\d{1,2}\s*[日号]|(?:19|20)\d{2}\s*年|\d{4}[-/.]\d{1,2}|[上下]午|\d{1,2}[时:：]\d{2}")
_BIGRAM_SKIP = set("多少几哪谁什么怎样吗呢是的了在和与及")

FEATURES = ("bias", "cov", "cov_asked", "ctx", "bigram", "title", "prior", "dense", "typed", "titleish", "length",
            "entities", "consistent", "heuristic")


@dataclass
class Sentence:
    """A sentence of a retrieved passage: `passage[start:end] == text`; `simp` is its simplified form."""

    hit: int  # index into the hits
    start: int
    end: int
    text: str
    simp: str
    aligned: bool
    score: float = 0.0  # ranker probability that this sentence answers the question
    x: np.ndarray | None = None  # its features (FEATURES order)
    lex: float = 0.0  # the extractive reader's own term-match scores (rag.answering.score_sentences)
    ctx: float = 0.0


@dataclass
class Snippet:
    """One numbered piece of compact evidence: sentences `[start, end)` of hit `hit`'s passage."""

    number: int
    hit: int
    start: int
    end: int
    text: str
    sentences: list[tuple[int, int]] = field(default_factory=list)  # the ranked sentences inside [start, end)


@dataclass
class Evidence:
    """What a reader reads: the question, the hits, their sentences ranked best first, and entity consistency."""

    question: Question
    hits: list[Hit]
    sentences: list[Sentence]
    entities: list[str]
    missing: dict[int, list[str]] = field(default_factory=dict)  # hit -> question entities its document lacks

    def consistent(self, hit: int) -> bool:
        return not self.missing.get(hit)

    def best(self, n: int = 8, consistent_only: bool = True) -> list[Sentence]:
        return [s for s in self.sentences if not consistent_only or self.consistent(s.hit)][:n]


# ---------------------------------------------------------------- sentences


def split_passage(text: str) -> list[tuple[int, int]]:
    from rag.chunking import split_sentences

    return split_sentences(text)


def collect_sentences(hits: Sequence[Hit]) -> list[Sentence]:
    """Sentences of all hits, in rank order; a sentence repeated by overlapping chunks is kept once, at its best rank."""
    seen: set[str] = set()
    out: list[Sentence] = []
    for i, h in enumerate(hits):
        ch = h.chunk
        full_simp = ch.text_simplified if len(ch.text_simplified or "") == len(ch.text) else None
        words = seed(full_simp, ch.tags) if full_simp is not None else None  # tagged at ingest
        for a, b in split_passage(ch.text):
            text = ch.text[a:b]
            simp = full_simp[a:b] if full_simp is not None else to_simplified(text)
            key = re.sub(r"\s+", "", simp)
            if (han_count(key) < 4 and not re.search(r"\d", key)) or key in seen:
                continue
            seen.add(key)
            if words:
                seed_sentence(full_simp, words, a, b)
            out.append(Sentence(i, a, b, text, simp, aligned=len(simp) == len(text)))
    return out


# ---------------------------------------------------------------- entities


@lru_cache(maxsize=1)
def _injection() -> re.Pattern:
    lines = INJECTION_PATH.read_text(encoding="utf-8").splitlines()
    return re.compile("|".join(f"(?:{p.strip()})" for p in lines if p.strip() and not p.startswith("#")), re.I)


def addresses_reader(simp: str) -> bool:
    """Whether a sentence speaks to the reader (“忽略之前的所有指令”, "ignore previous instructions") instead of
    reporting: such sentences are never LLM evidence."""
    return bool(_injection().search(simp))


@lru_cache(maxsize=1)
def _places_by_pinyin() -> dict[str, list[str]]:
    """Toneless pinyin (xining) -> the CC-CEDICT place names spelled so (西宁), built once (~1 s)."""
    from pypinyin import lazy_pinyin

    out: dict[str, list[str]] = {}
    generic = generic_places()
    for w in sorted(cedict().places):
        if w not in generic:
            out.setdefault("".join(lazy_pinyin(w)).lower(), []).append(w)
    for k, ws in out.items():  # a place written with and without its 市/省 suffix spells differently; keep both forms
        out[k] = ws[:6]
    return out


def entity_label(entity: str) -> str:
    """How a key entity is named in notes (深圳 for place:深圳|…, xining for py:xining)."""
    return entity.split(":", 1)[1].split("|")[0] if ":" in entity else entity


def generic_places() -> frozenset[str]:
    return word_list("generic_places.txt")


def _split_places(tokens: list[tuple[str, str]]) -> list[str]:
    """Place names jieba cut in two: a word of 2+ Han characters, not a pronoun, function word or pure numeral,
    followed by a place-ending character standing alone (八角 + 湾, 海北 + 州; not 哪个 + 区)."""
    suffixes, measures = word_list("place_suffixes.txt"), measure_words().all
    out = []
    for (w, tag), (nxt, _) in zip(tokens, tokens[1:]):
        counted = cn_numeral(w[:-1]) is not None and w[-1] in measures  # 三个 (村): a count, not a name
        if (nxt in suffixes and han_count(w) == len(w) >= 2 and tag[:1] not in ("r", "p", "u", "c", "d")
                and cn_numeral(w) is None and not counted):
            out.append(w + nxt)
    return out


def key_entities(q: Question) -> list[str]:
    """What a document must name to answer `q`: the places, organisations and people of a Chinese question (jieba
    tags ns/nt/nr except on words CC-CEDICT reads only as common nouns, places jieba cut before a lone place ending
    (八角 + 湾), and the CC-CEDICT place names among its words, minus `generic_places`), its quoted names (《…》, “…”),
    model names (Redmi 12) in a Chinese question, and codes (D6159, G5509) in any question. (Years are required too, by `gather`, through `key_years`.)
    English questions: the words that spell a CC-CEDICT place name in pinyin ("Shenzhen" -> 深圳), as
    `place:深圳|…|shenzhen` (any of the places spelled so, or a word of the document spelled so); other English names only rank (their Chinese spelling is uncertain)."""
    out: list[str] = []
    if q.language == "en":
        spelled = _places_by_pinyin()
        for name in pinyin_names(q.standalone):
            if name in spelled:  # the places spelled so, or any word of the document spelled so (苏颂 for Susong)
                out.append("place:" + "|".join([*spelled[name], name]))
    else:
        simp = q.simplified or to_simplified(q.standalone)
        for m in _QUOTED.finditer(simp):  # a quoted name; its parts when spaces or dots split it (筑梦前海 益企向未来)
            out += [p for p in re.split(r"[\s·•・—-]+", m.group(1)) if han_count(p) >= 2] or [m.group(1)]
        generic = generic_places()
        dictionary = cedict()
        places = dictionary.places
        tokens = pos_tokens(simp)
        for w, tag in tokens:  # jieba's name tags, but not on a word CC-CEDICT knows only as a common
            if (tag in _ENTITY_TAGS and han_count(w) >= 2 and han_count(w) == len(w) and w not in generic
                    and w not in dictionary.common):  # noun (jieba tags 无人驾驶 nr and 城市 ns)
                out.append(w)
        out += [w for w in _split_places(tokens)  # 北部湾 + 港: the place already stands for it
                if w not in generic and not any(w in e or w.startswith(e) for e in out)]
        jieba, _ = jieba_modules()
        for w in jieba.lcut_for_search(simp):  # places jieba does not tag (合肥 is tagged n), found in CC-CEDICT
            if w in places and w not in generic and not any(w in e for e in out):
                out.append(w)
        out += [m for m in _MODEL.findall(q.standalone) if not _CODE.fullmatch(m)]
    out += _CODE.findall(q.standalone)
    return list(dict.fromkeys(out))


def key_years(q: Question) -> list[str]:
    """The years a question names (2022 in 重庆2022年全年…, in "the whole of 2022"), as `year:2022`: a document that
    names neither the year nor was dated in it speaks of another time."""
    return [f"year:{y}" for y in dict.fromkeys(YEAR_RE.findall(q.standalone))]


def names_entity(entity: str, doc_simp: str) -> bool:
    """Whether a document's simplified text names `entity`: as written, a place without its 市/省/区 suffix, or an
    abbreviation whose characters appear in order within a short span (中国科大 in 中国科学技术大学)."""
    if entity.startswith("py:"):
        return name_coverage([entity[3:]], doc_simp) >= 1.0
    if entity.startswith("year:"):
        return re.search(r"(?<!\d)" + entity[5:] + r"(?!\d)", doc_simp) is not None
    if entity.startswith("place:"):
        return any(name_coverage([p], doc_simp) >= 1.0 if p.isascii() else p in doc_simp for p in entity[6:].split("|"))
    if entity in doc_simp:
        return True
    if entity.isascii():  # a model name, however it is spaced or cased (Redmi 12, redmi12)
        return re.sub(r"\s+", "", entity).lower() in re.sub(r"\s+", "", doc_simp).lower()
    bare = _PLACE_SUFFIX.sub("", entity)
    if bare != entity and bare in doc_simp:
        return True
    if han_count(entity) >= 3:
        rx = re.compile(".{0,3}".join(map(re.escape, entity)))
        return any(len(m.group(0)) <= 3 * len(entity) for m in rx.finditer(doc_simp))
    return False


# ---------------------------------------------------------------- features and ranking


@lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    return {lang: np.asarray([w[f] for f in FEATURES], dtype=np.float64) for lang, w in data["weights"].items()}


@lru_cache(maxsize=50_000)
def _bigrams(text: str) -> frozenset[str]:
    return frozenset(text[i:i + 2] for i in range(len(text) - 1)
                     if han_count(text[i:i + 2]) == 2 and not (set(text[i:i + 2]) & _BIGRAM_SKIP))


def _typed(q: Question, simp: str) -> float:
    """Whether the sentence holds the kind of span the question asks for."""
    if q.kind == "number":
        return 1.0 if _NUMBER.search(simp) else 0.0
    if q.kind == "when":
        return 1.0 if _DATE.search(simp) else 0.0
    if q.kind in ("who", "where"):
        want = {"nr", "nrfg", "nrt"} if q.kind == "who" else {"ns"}
        if q.kind == "who":
            want |= {"nt"}
        return 1.0 if any(t in want for _, t in pos_tokens(simp)) else 0.0
    return 0.5


def features(q: Question, hits: Sequence[Hit], sents: Sequence[Sentence], entities: Sequence[str],
             missing: dict[int, list[str]]) -> np.ndarray:
    """One row of FEATURES per sentence."""
    from rag.answering import coverage, score_sentences  # the extractive reader's term coverage and sentence score

    score_sentences(q, hits, list(sents))  # its hand-built score (terms, passage, rank) as one more feature

    en = q.language == "en"
    names = pinyin_names(q.standalone) if en else []
    groups = list(q.glosses) + list(q.topic_glosses)
    qbig = _bigrams(q.simplified) if not en else frozenset()
    zh_ents = [e for e in entities if not e.startswith("py:")]
    ctx_cache: dict[int, tuple[str, str]] = {}
    rows = np.zeros((len(sents), len(FEATURES)), dtype=np.float64)
    for r, s in enumerate(sents):
        h = hits[s.hit]
        if s.hit not in ctx_cache:
            title = to_simplified(h.chunk.title or "")
            ctx_cache[s.hit] = (title, title + "\n" + (h.chunk.text_simplified or to_simplified(h.chunk.text)))
        title, ctx = ctx_cache[s.hit]
        if en:
            cov = gloss_coverage(groups, s.simp) if groups else 0.0
            asked = name_coverage(names, s.simp) if names else cov
            ctx_cov = 0.5 * (gloss_coverage(groups, ctx) if groups else 0.0) + 0.5 * (
                name_coverage(names, ctx) if names else 1.0)
            big = cov
            tcov = gloss_coverage(groups, title) if groups and title else 0.0
        else:
            asked_terms = [w for w in q.terms if w not in title] or q.terms
            cov = coverage(q.terms, s.simp)
            asked = coverage(asked_terms, s.simp)
            ctx_cov = coverage(q.terms, ctx)
            big = len(qbig & _bigrams(s.simp)) / len(qbig) if qbig else 0.0
            tcov = coverage(q.terms, title) if title else 0.0
        titleish = 1.0 if title and (s.simp.strip() in title or (s.start == 0 and title[:8] in s.simp[:20])) else 0.0
        ent = (sum(1 for e in zh_ents if e in s.simp) / len(zh_ents)) if zh_ents else 0.5
        rows[r] = (1.0, cov, asked, ctx_cov, big, tcov, 1.0 / (1 + s.hit), float(h.scores.get("dense", 0.0)),
                   _typed(q, s.simp), titleish, math.log1p(len(s.simp)) / 5.0, ent,
                   0.0 if missing.get(s.hit) else 1.0, s.score)
    return rows


def rank(q: Question, hits: Sequence[Hit], sents: list[Sentence], entities: Sequence[str],
         missing: dict[int, list[str]]) -> list[Sentence]:
    """The sentences scored by the ranker (probability), best first."""
    if not sents:
        return []
    x = features(q, hits, sents, entities, missing)
    w = _weights()["en" if q.language == "en" else "zh"]
    p = 1.0 / (1.0 + np.exp(-(x @ w)))
    for s, row, score in zip(sents, x, p):
        s.x, s.score = row, float(score)
    return sorted(sents, key=lambda s: (-s.score, s.hit, s.start))


def gather(q: Question, hits: Sequence[Hit], doc_text: Callable[[str], str]) -> Evidence:
    """Rank the hits' sentences for `q` and check each hit's document against the question's key entities.
    `doc_text(doc_id)` gives a document's simplified text (title included)."""
    entities = key_entities(q)
    required = entities + key_years(q)  # a year the question names is required too, but does not rank sentences
    missing: dict[int, list[str]] = {}
    by_doc: dict[str, list[str]] = {}
    for i, h in enumerate(hits):
        d = h.chunk.doc_id
        if d not in by_doc:
            text = doc_text(d) or (to_simplified(h.chunk.title or "") + "\n" + (h.chunk.text_simplified or ""))
            by_doc[d] = [e for e in required if not names_entity(e, f"{text}\n{h.chunk.date or ''}")]
        if by_doc[d]:
            missing[i] = by_doc[d]
    sents = collect_sentences(hits)
    return Evidence(q, list(hits), rank(q, hits, sents, entities, missing), required, missing)


def snippets(ev: Evidence, max_sentences: int = 4, budget: int = 320, max_snippets: int = 4,
             relative: float = 0.2, start: int = 0) -> list[Snippet]:
    """Compact evidence: the best consistent sentences (those scoring at least `relative` x the best), each widened by
    a neighbour on each side while the budget (characters of sentence text) allows, merged per passage, ranked.
    `start` skips that many of the best sentences (the next window of evidence, for a second look)."""
    ranked = [s for s in ev.best(3 * max_sentences + start) if not addresses_reader(s.simp)]
    best = ranked[start:start + max_sentences]
    best = [s for s in best if s.score >= relative * best[0].score] if best else best
    if not best:
        return []
    per_hit: dict[int, list[tuple[int, int]]] = {}
    order: list[int] = []
    used = 0
    for s in best:
        if used + (s.end - s.start) > budget and order:
            break
        if s.hit not in per_hit:
            if len(order) >= max_snippets:
                continue
            per_hit[s.hit] = []
            order.append(s.hit)
        per_hit[s.hit].append((s.start, s.end))
        used += s.end - s.start
    out: list[Snippet] = []
    for hit in order:
        text = ev.hits[hit].chunk.text
        spans = split_passage(text)
        chosen = sorted(per_hit[hit])
        idx = {i for i, (a, b) in enumerate(spans) if any(a < e and s < b for s, e in chosen)}
        for i in sorted(idx):  # one neighbour on each side, while the budget allows
            for j in (i - 1, i + 1):
                if (0 <= j < len(spans) and j not in idx and used + (spans[j][1] - spans[j][0]) <= budget
                        and not addresses_reader(to_simplified(text[spans[j][0]:spans[j][1]]))):
                    idx.add(j)
                    used += spans[j][1] - spans[j][0]
        runs: list[list[int]] = []
        for i in sorted(idx):
            if runs and i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            a, b = spans[run[0]][0], spans[run[-1]][1]
            out.append(Snippet(len(out) + 1, hit, a, b, text[a:b], [sp for sp in chosen if a <= sp[0] < b]))
    return out


def doc_texts(index: Any) -> Callable[[str], str]:
    """`doc_text(doc_id)` over an index: the simplified title and chunk texts of the document (cached per index)."""
    cache: dict[str, str] = {}
    rows: dict[str, list[int]] | None = None

    def doc_text(doc_id: str) -> str:
        nonlocal rows
        if doc_id in cache:
            return cache[doc_id]
        if rows is None:
            rows = {}
            for i, c in enumerate(index.chunks):
                rows.setdefault(c.doc_id, []).append(i)
        chunks = [index.chunks[i] for i in rows.get(doc_id, [])]
        title = to_simplified(chunks[0].title or "") if chunks else ""
        text = title + "\n" + "\n".join(c.text_simplified or to_simplified(c.text) for c in chunks)
        if len(cache) > 4096:
            cache.clear()
        cache[doc_id] = text
        return text

    return doc_text
