"""Train the sentence ranker of `rag.evidence` and write `rag/data/sentence_ranker.json`.

    python -m rag.train_ranker            # ~1-3 min on 2 cores (retrieval over the news eval index included)

Data recipe (all from `../shared`, the development sets):
- CMRC2018 trial (simplified) and DRCD dev (traditional): each question with its own paragraph as the only passage;
  a sentence is positive when it holds the answer's start (`answer_start`). A sample of `--squad` questions per set.
- The news dev set `eval/dev_news_qa.jsonl`: each answerable question is retrieved over the news evaluation index
  (`rag.evaluation.news_index`: its 40 articles, the held-out set's articles, 300 other news articles and the bundled
  five) exactly as the assistant retrieves; a sentence is positive when it comes from the gold article and holds one of
  the `answer_any` strings. English questions train the `en` weights, the rest the `zh` weights.
Model: L2-regularised logistic regression (scikit-learn), one weight per `rag.evidence.FEATURES` entry.
Figures: the script prints top-1 sentence accuracy (the best-ranked sentence is a positive one) per split, for the
learned weights and for the weights it started from, with questions split 80/20 by a fixed seed (the 20% never train).
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
from pathlib import Path

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
    ap.add_argument("--squad", type=int, default=1200, help="questions sampled per SQuAD-format set")
    ap.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = ap.parse_args(argv)
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
        sw = np.concatenate([np.full(len(y), 1.0 / len(y)) for _, y in train])  # each question counts once
        model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000)
        model.fit(X, Y, sample_weight=sw * len(train))
        w = model.coef_[0]
        weights[lang] = {f: round(float(v), 4) for f, v in zip(FEATURES, w)}
        w0 = np.array([old["weights"][lang][f] for f in FEATURES]) if old and lang in old["weights"] else None
        for split in sorted({n for n, _, _ in groups}):
            g = [(x, y) for n, x, y in groups if n == split]
            line = f"{lang} {split:<14} n={len(g):>5}  top-1 learned {_top1(g, w):.3f}"
            if w0 is not None:
                line += f"  previous {_top1(g, w0):.3f}"
            report.append(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"features": list(FEATURES), "weights": weights,
                                    "trained_by": "python -m rag.train_ranker", "report": report},
                                   ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print("\n".join(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
