"""rag.answerability: the learned probability that an extractive answer is right — on text not from the bundled or
dev articles."""
from __future__ import annotations

import json

import numpy as np

from rag.answerability import FEATURES, WEIGHTS_PATH, features, probability
from rag.answering import answer_extractive
from rag.evidence import gather
from rag.question import analyze
from rag.records import Chunk, Hit
from rag.script import to_simplified

TEXT = ("芜湖科技成果对接会在芜湖宜居国际博览中心举行。对接会现场共签约18个项目，签约金额达6.2亿元。"
        "本次对接会由芜湖市科技局主办，吸引了150家企业参加。")


def _extraction(question: str):
    ch = Chunk(chunk_id="w:0", doc_id="w", text=TEXT, text_simplified=to_simplified(TEXT), start=0, end=len(TEXT),
               title="芜湖科技成果对接会举行", date="2023-10-12")
    hits = [Hit(chunk=ch, score=1.0, rank=0, scores={"dense": 0.85})]
    q = analyze(question)
    ev = gather(q, hits, lambda d: ch.title + "\n" + ch.text_simplified)
    return q, answer_extractive(ev, min_score=0.0)[1]


def test_the_weights_file_has_a_weight_for_every_feature():
    data = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
    assert list(data["features"]) == list(FEATURES) and set(data["weights"]) == set(FEATURES)


def test_english_questions_get_their_own_copy_of_the_match_features():
    q, ex = _extraction("芜湖对接会签约了多少个项目？")
    row = dict(zip(FEATURES, features(q, ex)))
    assert len(row) == len(FEATURES) and all(row[f] == 0.0 for f in FEATURES if f.startswith("en_"))
    q, ex = _extraction("How many projects were signed at the Wuhu matchmaking fair?")
    row = dict(zip(FEATURES, features(q, ex)))
    assert row["en"] == 1.0 and all(row[f"en_{f}"] == row[f] for f in ("p", "local", "cov"))


def test_a_fitting_answer_is_more_likely_right_than_an_answer_to_something_unasked():
    q, ex = _extraction("芜湖对接会签约了多少个项目？")
    right = probability(q, ex)
    assert "18" in ex.span.text and 0.0 < right <= 1.0
    q2, ex2 = _extraction("芜湖对接会的一等奖奖金是多少？")  # no prize in the article
    assert probability(q2, ex2) < right
    assert np.isfinite(features(q2, ex2)).all()
