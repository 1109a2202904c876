"""Tests for rag.evaluation: metrics, dataset loaders, answer scoring, the embedding cache and a small end-to-end run."""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rag import evaluation as ev
from rag.errors import InputError
from rag.records import Answer, Citation
from rag.settings import Settings

# ---------------------------------------------------------------- metrics


def test_first_gold_rank_is_one_based_and_none_when_absent():
    assert ev.first_gold_rank(["a", "b", "c"], "a") == 1
    assert ev.first_gold_rank(["a", "b", "c", "b"], "b") == 2
    assert ev.first_gold_rank(["a", "b", "c"], {"x", "c"}) == 3
    assert ev.first_gold_rank(["a", "b"], "z") is None
    assert ev.first_gold_rank([], "a") is None


def test_recall_and_mrr_on_hand_made_ranks():
    # four questions: gold at rank 1, 3, 12 and not retrieved
    m = ev.retrieval_metrics([1, 3, 12, None])
    assert m["R@1"] == pytest.approx(1 / 4)
    assert m["R@5"] == pytest.approx(2 / 4)
    assert m["R@20"] == pytest.approx(3 / 4)
    # rank 12 is outside MRR@10 and counts 0
    assert m["MRR@10"] == pytest.approx((1 + 1 / 3) / 4)


def test_metrics_from_rankings_end_to_end():
    rankings = [["p1", "p2"], ["p9", "p8", "p3"], ["p5"]]
    golds = ["p1", "p3", "p4"]
    ranks = [ev.first_gold_rank(r, g) for r, g in zip(rankings, golds)]
    assert ranks == [1, 3, None]
    m = ev.retrieval_metrics(ranks, ks=(1, 3), mrr_at=2)
    assert m == {"R@1": pytest.approx(1 / 3), "R@3": pytest.approx(2 / 3), "MRR@2": pytest.approx(1 / 3)}


def test_metrics_of_no_questions_are_nan():
    assert all(math.isnan(v) for v in ev.retrieval_metrics([]).values())


def test_percentile():
    assert ev.percentile([10, 20, 30, 40, 50], 50) == 30
    assert ev.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert math.isnan(ev.percentile([], 50))


# ---------------------------------------------------------------- loaders

SQUAD = {
    "version": "test",
    "data": [
        {"title": "西宁", "paragraphs": [
            {"context": "西宁对接会共签署59个项目合作协议。", "qas": [
                {"id": "q1", "question": "西宁签了多少个项目？", "answers": [{"text": "59", "answer_start": 7}]},
                {"id": "q2", "question": "西寧簽了多少個項目？", "answers": [{"text": "59", "answer_start": 7}]}]},
            {"context": "   ", "qas": [{"id": "skip", "question": "空段落？", "answers": []}]},
        ]},
        {"title": "南阳", "paragraphs": [
            {"context": "南阳站签约8个项目。", "qas": [{"id": "q3", "question": "南阳站签了几项？", "answers": []}]},
            {"context": "中光学集团董事长李智超致辞。", "qas": []},
        ]},
    ],
}


def _write_squad(tmp_path: Path, gz: bool) -> Path:
    path = tmp_path / ("tiny.squad.json.gz" if gz else "tiny.json")
    data = json.dumps(SQUAD, ensure_ascii=False).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_load_squad_pools_paragraphs_and_gold_is_own_paragraph(tmp_path, gz):
    rset = ev.load_squad(_write_squad(tmp_path, gz))
    assert rset.name == "tiny"
    # the blank paragraph is dropped; the paragraph without questions stays in the corpus
    assert [p.text for p in rset.passages] == ["西宁对接会共签署59个项目合作协议。", "南阳站签约8个项目。", "中光学集团董事长李智超致辞。"]
    by_id = {p.pid: p for p in rset.passages}
    assert [c.qid for c in rset.cases] == ["q1", "q2", "q3"]
    assert by_id[rset.cases[0].gold].text.startswith("西宁")
    assert rset.cases[0].gold == rset.cases[1].gold
    assert by_id[rset.cases[2].gold].title == "南阳"


def test_load_squad_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(InputError, match="SQuAD"):
        ev.load_squad(bad)
    with pytest.raises(InputError, match="not found"):
        ev.load_squad(tmp_path / "missing.json")


def test_load_dev_sets(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id":"d1","q":"谁？","doc":"002","answer_any":["张三"],"kind":"who"}\n\n'
                  '{"id":"d2","q":"How much?","doc":null,"answer_any":[],"kind":"unanswerable","lang":"en"}\n', encoding="utf-8")
    cases = ev.load_dev_qa(qa)
    assert [(c.qid, c.doc, c.kind, c.lang) for c in cases] == [("d1", "002", "who", "zh"), ("d2", None, "unanswerable", "en")]
    rset = ev.dev_qa_retrieval_set(qa)
    assert [c.gold for c in rset.cases] == ["002"]  # unanswerable questions have no gold passage

    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"id":"c1","turns":[{"q":"签了多少个项目？","answer_any":["59"]},{"q":"资金呢？","answer_any":["11280万"]}]}\n',
                    encoding="utf-8")
    (conv,) = ev.load_dev_chat(chat)
    assert [(t.qid, t.kind, t.turn, t.conversation) for t in conv] == [("c1.1", "chat-first", 1, "c1"),
                                                                       ("c1.2", "follow-up", 2, "c1")]


def test_shared_dev_sets_load():
    cases = ev.load_dev_qa(ev.DEV_QA_PATH)
    assert len(cases) >= 20 and any(c.doc is None for c in cases)
    assert all(len(conv) >= 2 for conv in ev.load_dev_chat(ev.DEV_CHAT_PATH))


def test_subsample_is_deterministic_and_ordered():
    items = list(range(100))
    a = ev.subsample(items, 10)
    assert a == ev.subsample(items, 10) and a == sorted(a) and len(set(a)) == 10
    assert ev.subsample(items, None) == items and ev.subsample(items, 500) == items
    with pytest.raises(InputError):
        ev.subsample(items, 0)


def test_parse_variant():
    assert ev.parse_variant("rrf_k=20, lexical_weight=0.5") == {"rrf_k": 20, "lexical_weight": 0.5}
    assert ev.variant_label({"rrf_k": 20}) == "hybrid[rrf_k=20]"
    with pytest.raises(InputError):
        ev.parse_variant("no_such_field=1")
    with pytest.raises(InputError):
        ev.parse_variant("rrf_k=abc")


def test_seed_doc_ids_maps_file_prefix_to_doc_id():
    docs = [{"doc_id": "aaa", "path": "/x/rag/corpus/002_b8d84e0229f2334e.txt"}, {"doc_id": "bbb", "path": "news.jsonl#3"}]
    assert ev.seed_doc_ids(docs)["002"] == "aaa"


# ---------------------------------------------------------------- answer scoring


def _cit(n: int, doc_id: str) -> Citation:
    return Citation(number=n, doc_id=doc_id, chunk_id=f"{doc_id}:0", title="t", date=None, source=None, passage="p")


def _answer(text: str, found: bool = True, docs: tuple[str, ...] = ()) -> Answer:
    return Answer(text=text, question="q", standalone_question="q", found=found,
                  citations=[_cit(i + 1, d) for i, d in enumerate(docs)])


def test_answer_matches_raw_and_after_t2s():
    assert ev.answer_matches("共签署59个项目合作协议 [1]", ["59"])
    assert ev.answer_matches("承辦單位為南陽市科技局 [1]", ["南阳市科技局"])  # traditional answer, simplified gold
    assert ev.answer_matches("承办单位为南阳市科技局", ["南陽市科技局"])  # and the other way round
    assert ev.answer_matches("共５９个", ["59"])  # full-width digits folded
    assert not ev.answer_matches("共签署64家企业", ["59"])
    assert not ev.answer_matches("anything", [])


def test_score_answer_accuracy_and_citation_precision():
    case = ev.QACase(qid="d1", question="签了多少个项目？", doc="002", answer_any=["59"], kind="number")
    good = ev.score_answer(case, _answer("共签署59个项目 [1][2]", docs=("gold", "other")), "gold")
    assert good.correct and good.cited == 2 and good.cited_gold == 1
    wrong = ev.score_answer(case, _answer("64家企业 [1]", docs=("gold",)), "gold")
    assert not wrong.correct and wrong.cited_gold == 1
    # a "not found" that happens to mention the number is still a miss, and its related passages are not citations
    refused = ev.score_answer(case, _answer("没有找到；相关：59", found=False), "gold")
    assert not refused.correct and refused.cited == 0


def test_score_answer_not_found():
    case = ev.QACase(qid="d18", question="花了多少宣传费？", doc=None, answer_any=[], kind="unanswerable")
    assert ev.score_answer(case, _answer("资料中没有提到", found=False), None).correct
    guessed = ev.score_answer(case, _answer("花了100万元 [1]", docs=("x",)), None)
    assert not guessed.correct and guessed.cited == 0  # no gold article: citations are not counted


def test_summarize_qa_per_kind_and_overall():
    num = ev.QACase(qid="1", question="a", doc="002", answer_any=["59"], kind="number")
    who = ev.QACase(qid="2", question="b", doc="001", answer_any=["张"], kind="who")
    una = ev.QACase(qid="3", question="c", doc=None, answer_any=[], kind="unanswerable")
    outs = [
        ev.score_answer(num, _answer("59 [1][2]", docs=("g2", "g2")), "g2", latency_ms=10),
        ev.score_answer(who, _answer("李 [1]", docs=("x",)), "g1", latency_ms=30),
        ev.score_answer(una, _answer("没有", found=False), None, latency_ms=20),
    ]
    t = ev.summarize_qa(outs)
    assert t["number"]["accuracy"] == 1.0 and t["number"]["citation_precision"] == 1.0
    assert t["who"]["accuracy"] == 0.0 and t["who"]["citation_precision"] == 0.0
    assert t["unanswerable"]["not_found_accuracy"] == 1.0 and math.isnan(t["unanswerable"]["accuracy"])
    o = t["overall"]
    assert o["n"] == 3 and o["accuracy"] == 0.5 and o["not_found_accuracy"] == 1.0
    assert o["citation_precision"] == pytest.approx(2 / 3)  # micro-average over the three citations
    assert o["p50_ms"] == 20
    text = ev.format_qa_table([ev.QAResult(mode="extractive", outcomes=outs, table=t)])
    assert "overall" in text and "failures (1)" in text and "expected one of ['张']" in text


class _FakeAssistant:
    """Answers from a table; records the history it was given."""

    def __init__(self):
        self.histories = []

    def documents(self):
        return [{"doc_id": "G2", "path": "corpus/002_x.txt"}]

    def ask(self, question, history=None, filters=None, mode=None, top_k=None):
        self.histories.append(history)
        if "宣传费" in question:
            return _answer("没有找到", found=False)
        if "资金" in question:
            return _answer("11280万元 [1]", docs=("G2",))
        return _answer("59个项目 [1]", docs=("G2",))


def test_run_qa_passes_history_turn_by_turn():
    fake = _FakeAssistant()
    qa = [ev.QACase(qid="d1", question="签了多少？", doc="002", answer_any=["59"], kind="number"),
          ev.QACase(qid="d2", question="宣传费？", doc=None, answer_any=[], kind="unanswerable")]
    chat = [[ev.QACase(qid="c.1", question="签了多少？", doc=None, answer_any=["59"], kind="chat-first", turn=1),
             ev.QACase(qid="c.2", question="资金呢？", doc=None, answer_any=["11280万"], kind="follow-up", turn=2)]]
    outs = ev.run_qa(fake, qa, chat, "extractive", progress=False)
    assert [o.correct for o in outs] == [True, True, True, True]
    assert outs[0].cited_gold == 1  # "002" mapped to G2 through the document path
    assert fake.histories[:3] == [None, None, None]
    assert fake.histories[3] == [("签了多少？", "59个项目 [1]")]


def test_evaluate_qa_reads_single_and_chat_sets(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id":"d1","q":"签了多少？","doc":"002","answer_any":["59"],"kind":"number"}\n'
                  '{"id":"d2","q":"宣传费是多少？","doc":null,"answer_any":[],"kind":"unanswerable"}\n'
                  '{"id":"d3","q":"西寧簽了多少？","doc":"002","answer_any":["64"],"kind":"number"}\n', encoding="utf-8")
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"id":"c1","turns":[{"q":"签了多少？","answer_any":["59"]},{"q":"资金呢？","answer_any":["11280万"]}]}\n',
                    encoding="utf-8")
    (res,) = ev.evaluate_qa([qa, chat], assistant=_FakeAssistant(), progress=False)
    t = res.table
    assert t["overall"]["n"] == 5 and t["follow-up"]["n"] == 1 and t["traditional"]["n"] == 1
    assert t["number"]["accuracy"] == 0.5  # d3 expects 64, the fake answers 59
    assert t["unanswerable"]["not_found_accuracy"] == 1.0
    assert [o.case.qid for o in res.failures()] == ["d3"]
    assert "d3 [number] 西寧簽了多少？" in ev.format_qa_table([res])


# ---------------------------------------------------------------- embedding cache


class _CountingEmbedder:
    model_id = "fake/model"
    dim = 4

    def __init__(self):
        self.calls = 0

    def _vec(self, texts):
        self.calls += len(texts)
        v = np.array([[len(t), t.count("a"), 1.0, sum(map(ord, t)) % 7] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode_passages(self, texts, progress=False):
        return self._vec(texts)

    def encode_queries(self, texts):
        return self._vec(["q" + t for t in texts])


def test_cached_embedder_reuses_vectors_across_runs(tmp_path):
    inner = _CountingEmbedder()
    settings = Settings()
    c1 = ev.CachedEmbedder(inner, tmp_path, "tiny", settings)
    v1 = c1.encode_passages(["aa", "b", "aa"])
    q1 = c1.encode_queries(["aa"])
    assert inner.calls == 3  # "aa" once as a passage, "b", and "aa" as a query (different prompt, different vector)
    assert np.allclose(v1, inner._vec(["aa", "b", "aa"])) and not np.allclose(q1[0], v1[0])
    c1.save()
    assert c1.path.name.startswith("tiny-model-") and c1.path.suffix == ".npy"

    inner2 = _CountingEmbedder()
    c2 = ev.CachedEmbedder(inner2, tmp_path, "tiny", settings)
    assert np.allclose(c2.encode_passages(["b", "aa"]), v1[[1, 0]])
    assert np.allclose(c2.encode_queries(["aa"]), q1)
    assert inner2.calls == 0 and c2.reused == 3
    c2.encode_passages(["new"])
    assert inner2.calls == 1 and c2.dim == 4 and c2.model_id == "fake/model"


def test_cached_embedder_ignores_a_damaged_cache(tmp_path):
    inner = _CountingEmbedder()
    c = ev.CachedEmbedder(inner, tmp_path, "tiny", Settings())
    c.encode_passages(["x"])
    c.save()
    c.path.write_bytes(b"garbage")
    again = ev.CachedEmbedder(_CountingEmbedder(), tmp_path, "tiny", Settings())
    assert again.encode_passages(["x"]).shape == (1, 4) and again.computed == 1


def test_cached_embedder_keeps_finished_blocks_when_a_long_run_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "SAVE_EVERY", 2)

    class FailsOnThirdBlock(_CountingEmbedder):
        def encode_passages(self, texts, progress=False):
            if self.calls >= 4:
                raise KeyboardInterrupt
            return self._vec(texts)

    c = ev.CachedEmbedder(FailsOnThirdBlock(), tmp_path, "tiny", Settings())
    with pytest.raises(KeyboardInterrupt):
        c.encode_passages(["a", "b", "c", "d", "e", "f"])
    inner = _CountingEmbedder()
    again = ev.CachedEmbedder(inner, tmp_path, "tiny", Settings())
    again.encode_passages(["a", "b", "c", "d", "e", "f"])
    assert again.reused == 4 and inner.calls == 2  # the first two blocks were on disk


# ---------------------------------------------------------------- end to end on a tiny corpus

TINY = {
    "data": [
        {"title": "对接会", "paragraphs": [
            {"context": "西宁市首届科技成果转移转化对接会共签署59个项目合作协议，签约总资金11280万元。", "qas": [
                {"id": "t1", "question": "西宁对接会签署了多少个项目合作协议？", "answers": []}]},
            {"context": "南阳站活动由南阳市科技局承办，中光学集团董事长李智超出席并致辞。", "qas": [
                {"id": "t2", "question": "南阳站活动由哪个单位承办？", "answers": []}]},
        ]},
        {"title": "大会", "paragraphs": [
            {"context": "2023全球硬科技创新大会在西安举行，设置5场平行论坛，发布多项硬科技成果。", "qas": [
                {"id": "t3", "question": "全球硬科技创新大会设置了几场平行论坛？", "answers": []}]},
            {"context": "陕西斯瑞新材料股份有限公司董事长王文斌介绍了公司的铜合金材料。", "qas": [
                {"id": "t4", "question": "斯瑞新材料的董事长是谁？", "answers": []}]},
        ]},
    ]
}


def _tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_squad.json"
    path.write_text(json.dumps(TINY, ensure_ascii=False), encoding="utf-8")
    return path


def test_evaluate_retrieval_lexical_end_to_end(tmp_path):
    settings = Settings(cache_dir=tmp_path / "cache", index_root=tmp_path / "index")
    r = ev.evaluate_retrieval(_tiny(tmp_path), settings, modes=("lexical",), progress=False, show_misses=5)
    assert (r.dataset, r.questions, r.documents, r.chunks) == ("tiny_squad", 4, 4, 4)
    assert list(r.rows) == ["lexical"]
    assert r.rows["lexical"]["R@1"] == 1.0 and r.rows["lexical"]["MRR@10"] == 1.0
    assert not r.misses["lexical"]
    assert not (tmp_path / "cache" / "eval").exists()  # lexical only: nothing embedded, nothing cached
    table = ev.format_retrieval_table(r)
    assert "tiny_squad: 4 questions" in table and "lexical" in table


def test_evaluate_retrieval_all_modes_with_the_real_model(tmp_path, embedder):
    settings = Settings(cache_dir=tmp_path / "cache", index_root=tmp_path / "index")
    r = ev.evaluate_retrieval(_tiny(tmp_path), settings, embedder=embedder, progress=False,
                              variants=[{"fusion": "rrf", "rrf_k": 10}])
    assert list(r.rows) == ["lexical", "dense", "hybrid", "hybrid[fusion=rrf,rrf_k=10]"]
    for label, m in r.rows.items():
        assert m["R@5"] == 1.0, label  # four passages: every mode ranks the gold within the first five
        assert m["R@1"] >= 0.75, label
    assert any(n.startswith("embeddings:") and ", 8 computed" in n for n in r.notes)  # 4 passages + 4 questions
    # a second run reads every passage and query vector from the cache
    again = ev.evaluate_retrieval(_tiny(tmp_path), settings, embedder=embedder, progress=False)
    assert any(n.startswith("embeddings:") and ", 0 computed" in n for n in again.notes)
    assert again.rows["dense"] == r.rows["dense"]
