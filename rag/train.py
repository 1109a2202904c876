"""Train the learned parts of the readers: the sentence ranker (`rag.evidence`, `rag/data/sentence_ranker.json`) and
then the answerability model (`rag.answerability`, `rag/data/answerability.json`).

    python -m rag.train            # ~3-5 min on 2 cores (retrieval over the news eval index included)

Data recipe (all from `../shared`, the development sets):
- CMRC2018 trial (simplified) and DRCD dev (traditional): each question with its own paragraph as the only passage;
  a sentence is positive when it holds the answer's start (`answer_start`). A sample of `--squad` questions per set.
- The news dev set `eval/dev_news_qa.jsonl`: each answerable question is retrieved over the news evaluation index
  (`rag.evaluation.news_index`: its 40 articles, the held-out set's articles, 300 other news articles and the bundled
  five) exactly as the assistant retrieves; a sentence is positive when it comes from the gold article and holds one of
  the `answer_any` strings. English questions train the `en` weights, the rest the `zh` weights.
Model: L2-regularised logistic regression (scikit-learn), one weight per `rag.evidence.FEATURES` entry.
Answerability data: every question of the dev sets (`eval/dev_news_qa.jsonl`, `eval/dev_qa.jsonl` and the
`tests/data/seeds_qa_*.jsonl` sets, never the held-out news set) answered by the extractive reader with the new
ranker; label 1 when the answer is right (found and containing an `answer_any` string), 0 when it is wrong or the
question is unanswerable. The script prints 5-fold cross-validated accuracy of the found/not-found decision at the
chosen threshold beside always answering.
Figures: the script prints top-1 sentence accuracy (the best-ranked sentence is a positive one) per split, for the
learned weights and for the weights it started from, with questions split 80/20 by a fixed seed (the 20% never train).
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from rag.evidence import FEATURES, WEIGHTS_PATH, collect_sentences, features, key_entities, names_entity
from rag.question import analyze
from rag.records import Chunk, Hit
from rag.script import to_simplified
from rag.settings import Settings

SEED = 7


def _squad_groups(path: Path, limit: int, rng: random.Random) -> list[tuple[str, list[Hit], list[bool]]]:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as f:
        data = json.load(f)
    items = []
    for art in data["data"]:
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                if qa.get("answers"):
                    items.append((qa["question"], para["context"], int(qa["answers"][0]["answer_start"]),
                                  art.get("title") or ""))
    rng.shuffle(items)
    out = []
    for question, context, start, title in items[:limit]:
        chunk = Chunk(chunk_id="p:0", doc_id="p", text=context, text_simplified=to_simplified(context), start=0,
                      end=len(context), title=title)
        hits = [Hit(chunk=chunk, score=1.0, rank=0, scores={"dense": 0.85})]
        out.append((question, hits, [start]))
    return out


def _rows(question: str, hits: list[Hit], is_pos) -> tuple[np.ndarray, np.ndarray, str] | None:
    from rag.errors import InputError

    try:
        q = analyze(question)
    except InputError:  # a data-set question with no words
        return None
    sents = collect_sentences(hits)
    if not sents:
        return None
    ents = key_entities(q)
    missing = {}
    for i, h in enumerate(hits):
        text = to_simplified(h.chunk.title or "") + "\n" + h.chunk.text_simplified
        lack = [e for e in ents if not names_entity(e, text)]
        if lack:
            missing[i] = lack
    y = np.array([is_pos(hits[s.hit], s) for s in sents], dtype=np.int64)
    if not y.any():
        return None
    return features(q, hits, sents, ents, missing), y, ("en" if q.language == "en" else "zh")


def _news_groups(settings: Settings) -> list[tuple[str, list[Hit], object]]:
    from rag.assistant import Assistant
    from rag.evaluation import load_dev_qa, news_index, SHARED_DIR

    dev = SHARED_DIR / "eval" / "dev_news_qa.jsonl"
    folder, ids = news_index([dev], settings)
    bot = Assistant.open(folder, settings)
    out = []
    for case in load_dev_qa(dev):
        if not case.doc:
            continue
        q = analyze(case.question)
        query = q.standalone if q.language == "en" else q.simplified
        hits = bot.retriever.retrieve(query, top_k=settings.answer_passages)
        gold = ids.get(case.doc)
        answers = [to_simplified(a) for a in case.answer_any]
        out.append((case.question, hits, (gold, answers)))
    return out


def _top1(groups: list[tuple[np.ndarray, np.ndarray]], w: np.ndarray) -> float:
    if not groups:
        return float("nan")
    return sum(int(y[int(np.argmax(x @ w))]) for x, y in groups) / len(groups)


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression

    from rag.evaluation import CMRC_PATH, DRCD_PATH

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--squad", type=int, default=600, help="questions sampled per SQuAD-format set (600: the committed weights)")
    ap.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    ap.add_argument("--answerability-only", action="store_true", help="keep the ranker; retrain answerability")
    args = ap.parse_args(argv)
    if args.answerability_only:
        train_answerability(Settings.from_env())
        return 0
    rng = random.Random(SEED)
    settings = Settings.from_env()
    data: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {"zh": [], "en": []}  # (split, X, y)

    def add(name: str, question: str, hits: list[Hit], is_pos) -> None:
        r = _rows(question, hits, is_pos)
        if r is not None:
            split = "test" if rng.random() < 0.2 else "train"
            data[r[2]].append((f"{name}:{split}", r[0], r[1]))

    for path in (CMRC_PATH, DRCD_PATH):
        for question, hits, (start,) in _squad_groups(path, args.squad, rng):
            add(path.name.split(".")[0].split("_")[0], question, hits, lambda h, s, a=start: s.start <= a < s.end)
    for question, hits, (gold, answers) in _news_groups(settings):
        add("news", question, hits,
            lambda h, s, g=gold, ans=answers: h.chunk.doc_id == g and any(a in s.simp for a in ans))

    old = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else None
    weights: dict[str, dict[str, float]] = {}
    report: list[str] = []
    for lang, groups in data.items():
        train = [(x, y) for n, x, y in groups if n.endswith(":train")]
        if not train:
            continue
        X = np.vstack([x for x, _ in train])
        Y = np.concatenate([y for _, y in train])
        # each question counts once; a news question (the product's own kind of text) three times
        sw = np.concatenate([np.full(len(y), (3.0 if n.startswith("news") else 1.0) / len(y))
                             for (n, _, y) in [g for g in groups if g[0].endswith(":train")]])
        model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000)
        model.fit(X, Y, sample_weight=sw * len(train))
        w = model.coef_[0]
        weights[lang] = {f: round(float(v), 4) for f, v in zip(FEATURES, w)}
        w0 = np.array([old["weights"][lang].get(f, 0.0) for f in FEATURES]) if old and lang in old["weights"] else None
        for split in sorted({n for n, _, _ in groups}):
            g = [(x, y) for n, x, y in groups if n == split]
            line = f"{lang} {split:<14} n={len(g):>5}  top-1 learned {_top1(g, w):.3f}"
            if w0 is not None:
                line += f"  previous {_top1(g, w0):.3f}"
            report.append(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"features": list(FEATURES), "weights": weights,
                                    "trained_by": "python -m rag.train", "report": report},
                                   ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("\n".join(report))
    print(f"wrote {args.out}")
    import rag.evidence

    rag.evidence._weights.cache_clear()
    train_answerability(settings)
    return 0


def _answer_rows(settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    from rag.answerability import features as a_features
    from rag.assistant import Assistant
    from rag.evaluation import DEV_QA_PATH, SHARED_DIR, answer_matches, load_dev_qa, news_index
    from rag.answering import answer_extractive
    from rag.evidence import gather
    from rag.settings import PROJECT_ROOT

    sets = [(SHARED_DIR / "eval" / "dev_news_qa.jsonl", True), (DEV_QA_PATH, False)]
    sets += [(p, False) for p in sorted((PROJECT_ROOT / "tests" / "data").glob("seeds_qa_*.jsonl"))]
    X, Y = [], []
    bots: dict[bool, Any] = {}
    for path, news in sets:
        if news not in bots:
            if news:
                folder, _ = news_index([path], settings, progress=False)
                bots[news] = Assistant.open(folder, settings)
            else:
                bots[news] = Assistant.default(settings, progress=False)
        bot = bots[news]
        for case in load_dev_qa(path):
            q, hits, _ = bot._prepare(case.question, None, None, None)
            ev = gather(q, hits, bot._doc_text)
            ans, ex = answer_extractive(ev, min_score=0.0)
            if ex.span is None:
                continue
            right = case.doc is not None and answer_matches(ans.text, case.answer_any)
            X.append(a_features(q, ex))
            Y.append(int(right))
    return np.vstack(X), np.asarray(Y)


def train_answerability(settings: Settings, out: Path | None = None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from rag.answerability import FEATURES as A_FEATURES, WEIGHTS_PATH as A_PATH

    X, Y = _answer_rows(settings)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    probs = np.zeros(len(Y))
    for tr, te in cv.split(X, Y):
        m = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000).fit(X[tr], Y[tr])
        probs[te] = m.predict_proba(X[te])[:, 1]
    lines = [f"answerability: {len(Y)} answers with a span, {int(Y.sum())} right; always answering is right "
             f"{Y.mean():.3f} of the time"]
    for t in (0.3, 0.4, 0.5, 0.6):
        keep = probs >= t
        lines.append(f"  threshold {t}: 5-fold CV decision accuracy {np.mean(keep == Y.astype(bool)):.3f}, "
                     f"right answers kept {keep[Y == 1].mean():.3f}, wrong ones declined {(~keep[Y == 0]).mean():.3f}")
    m = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000).fit(X, Y)
    (out or A_PATH).write_text(json.dumps({"features": list(A_FEATURES),
                                           "weights": {f: round(float(v), 4) for f, v in zip(A_FEATURES, m.coef_[0])},
                                           "trained_by": "python -m rag.train", "report": lines},
                                          ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
