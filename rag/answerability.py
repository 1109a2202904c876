"""Answerability: the probability that the extractive answer is right, from a logistic model over evidence features.

The features (FEATURES) describe how well the chosen sentence matches the question (its ranker probability and the
ranker's own term, bigram and entity features), how clearly it beats the next sentence, how well the typed span fits,
and the question's kind and language (the match features once more for English questions, whose evidence is matched
through glosses and pinyin, so that their weights are learned apart). Documents that do not name the question's key
entities never reach this point (`rag.evidence`). Weights: `rag/data/answerability.json`, written by `python -m rag.train` (data recipe and
cross-validated figures in its docstring); the decision threshold is `Settings.answerable_threshold`.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.evidence import FEATURES as SENTENCE_FEATURES
from rag.question import Question

WEIGHTS_PATH = Path(__file__).resolve().parent / "data" / "answerability.json"
_KINDS = ("number", "who", "when", "where", "what", "list", "yesno")
_EN_SCALED = ("p", "p_top", "margin", "local", "cov", "cov_asked", "ctx", "bigram")  # weighed apart for English
FEATURES = ("bias", "p", "p_top", "margin", "local", "cov", "cov_asked", "ctx", "bigram", "entities", "has_entities",
            "en", "counted", "focus", "clause_asked", *[f"kind_{k}" for k in _KINDS], *[f"en_{f}" for f in _EN_SCALED])


def features(q: Question, ex: Any) -> np.ndarray:
    """One row of FEATURES for an extraction (`rag.answering.Extraction`) that found a span."""
    s = ex.span.sentence
    ranked = ex.sentences
    p_top = ranked[0].score if ranked else 0.0
    p2 = next((r.score for r in ranked if r is not s), 0.0)
    x = s.x if s.x is not None else np.zeros(len(SENTENCE_FEATURES))
    f = dict(zip(SENTENCE_FEATURES, x))
    from rag.answering import _clause_bounds, _focus_terms, coverage

    # the asked attribute stated with the answer: a figure tied to the counted thing (by its noun, measure word or
    # verb), and the question's focus terms in the sentence (奖金 asked, only 签约总资金 given)
    counted = 1.0 if ex.span.counts in ("noun", "measure", "verb") else 0.0
    focus_terms = _focus_terms(q) if q.language != "en" else []
    focus = coverage(focus_terms, s.simp) if focus_terms else 0.5
    row = [1.0, s.score, p_top, s.score - p2, max(-1.0, min(2.0, ex.span.local)), f["cov"], f["cov_asked"], f["ctx"],
           f["bigram"], f["entities"], 1.0 if f["entities"] != 0.5 else 0.0, 1.0 if q.language == "en" else 0.0,
           counted, focus, _clause_asked(q, ex, _clause_bounds, coverage)]
    row += [1.0 if q.kind == k else 0.0 for k in _KINDS]
    named = dict(zip(FEATURES, row))  # English evidence is matched through glosses and pinyin: its scores mean less
    row += [named[f] if q.language == "en" else 0.0 for f in _EN_SCALED]
    return np.asarray(row, dtype=np.float64)


def _clause_asked(q: Question, ex: Any, bounds: Any, coverage: Any) -> float:
    """Coverage of the question's terms in the clause around the span and the clause before it: what the question
    says about the answer (获得投资) must be said about the span, not only somewhere in its sentence."""
    if q.language == "en" or not q.terms:
        return 0.5
    s = ex.span.sentence
    lo, hi = bounds(s.simp, ex.span.a, ex.span.b)
    plo, _ = bounds(s.simp, lo - 1, lo - 1) if lo > 0 else (lo, lo)
    return coverage(q.terms, s.simp[plo:hi])


@lru_cache(maxsize=1)
def _weights() -> np.ndarray | None:
    if not WEIGHTS_PATH.exists():
        return None
    data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    return np.asarray([data["weights"].get(f, 0.0) for f in FEATURES], dtype=np.float64)


def probability(q: Question, ex: Any) -> float:
    """P(the extractive answer is right); the sentence's ranker probability when no model has been trained."""
    w = _weights()
    if ex.span is None:
        return 0.0
    if w is None or len(w) != len(FEATURES):  # untrained (or trained on other features): the ranker's probability
        return float(ex.span.sentence.score)
    return float(1.0 / (1.0 + np.exp(-(features(q, ex) @ w))))
