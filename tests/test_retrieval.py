"""rag.retrieval: filters, fusion, duplicate collapsing, the llama-index adapter, and — with the real embedding model on
the five bundled articles — the gold article's passage ranked first for every dev question that has one (Chinese,
traditional and English), on FAISS and on Milvus (milvus-lite)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import chunk_document
from rag.errors import InputError
from rag.records import Document
from rag.retrieval import Filters, Retriever, as_llama_retriever, fuse, _Candidates
from rag.script import to_simplified
from rag.settings import Settings
from rag.store import Index, ingest_into_index
from fakes import HashEmbedder

DEV_QA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev_qa.jsonl"


def doc(key: str, text: str, date: str | None = None, source: str | None = None) -> Document:
    return Document(doc_id=hashlib.sha1(key.encode()).hexdigest()[:16], title=f"标题{key}", text=text,
                    text_simplified=to_simplified(text), date=date, source=source, path=f"/x/{key}.txt",
                    script="simplified")


ARTICLES = [
    doc("a", "7月27日至28日，西宁首届科技成果转移转化对接会在西宁举行。对接会共签署59个项目合作协议，签约总资金11280万元，"
             "64家企业和6家金融机构参会，来自高校和科研院所的专家介绍了科技成果。", "2024-07-28", "西宁晚报"),
    doc("b", "西安高新区研发投入占比提升至8.5%，先进制造业年均增长24.7%，在管基金产品215支。", "2024-11-02", "财新网"),
    doc("c", "中光学集团董事长李智超在火炬科技成果直通车南阳站活动上致辞，南阳市副市长杨曙光出席。", "2023-12-05", "澎湃新闻"),
    doc("d", "创新港路演大会于4月9日召开，每个专场有12-13个项目路演，陕西斯瑞新材料董事长王文斌发言。", None, "西安日报"),
]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    s = dataclasses.replace(Settings.from_env(), index_root=tmp_path_factory.mktemp("small"), index_name="i",
                            embedding_model="fake-bigram")
    index = Index.create(s.index_dir, s)
    dup = doc("a-copy", ARTICLES[0].text, "2024-07-29", "转载网")  # the same article reposted
    near = doc("a-near", ARTICLES[0].text.replace("对接会共签署", "本次对接会一共签署"), "2024-07-30", "另一网站")
    docs = ARTICLES + [dup, near]
    index.add(docs, [c for d in docs for c in chunk_document(d, s.chunk_size, s.chunk_overlap)], HashEmbedder(),
              progress=False)
    return Retriever(index, HashEmbedder(), s)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_filters_restrict_every_mode(small, mode):
    q = "西宁科技成果项目、高新区研发和董事长"  # has words from every article, so every mode can find each one
    ids = {d.doc_id: d for d in ARTICLES}
    hits = small.retrieve(q, top_k=10, mode=mode, filters=Filters(source="財新"))  # traditional spelling matches
    assert hits and {h.chunk.doc_id for h in hits} == {ARTICLES[1].doc_id}
    hits = small.retrieve(q, top_k=10, mode=mode, filters=Filters(date_from="2024-01-01", date_to="2024-07-28"))
    assert {h.chunk.doc_id for h in hits} == {ARTICLES[0].doc_id}
    hits = small.retrieve(q, top_k=10, mode=mode, filters=Filters(date_to="2023"))
    assert {h.chunk.doc_id for h in hits} <= {ARTICLES[2].doc_id}  # undated article d never passes a date filter
    hits = small.retrieve(q, top_k=10, mode=mode, filters=Filters(doc_ids=[ARTICLES[3].doc_id]))
    assert {h.chunk.doc_id for h in hits} == {ARTICLES[3].doc_id} and ARTICLES[3].doc_id in ids
    assert small.retrieve(q, top_k=10, mode=mode, filters=Filters(source="没有这个来源")) == []


def test_duplicates_and_near_duplicates_are_collapsed(small):
    hits = small.retrieve("西宁对接会签约总资金", top_k=6)
    texts = [h.chunk.text_simplified for h in hits]
    xining = [t for t in texts if "西宁" in t]
    assert len(xining) == 1  # the original, its verbatim repost and a near copy: one passage
    assert len(hits) == 4 and [h.rank for h in hits] == [1, 2, 3, 4]
    assert len({h.chunk.doc_id for h in hits}) == 4


def test_hit_scores_carry_raw_scores_and_ranks(small):
    hits = small.retrieve("南阳市副市长是谁", top_k=3)
    top = hits[0]
    assert top.chunk.doc_id == ARTICLES[2].doc_id
    assert {"dense", "dense_rank", "lexical", "lexical_rank", "lexical_coverage"} <= set(top.scores)
    assert 0 < top.scores["lexical_coverage"] <= 1 and top.scores["dense"] <= 1.0001
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_bad_input_is_a_clear_error(small):
    with pytest.raises(InputError, match="empty"):
        small.retrieve("   ")
    with pytest.raises(InputError, match="mode"):
        small.retrieve("西宁", mode="magic")
    with pytest.raises(InputError, match="date"):
        Filters(date_from="2024-13-01")
    with pytest.raises(InputError, match="date"):
        Filters(date_to="yesterday")
    assert small.retrieve("西宁" * 5000, top_k=2)  # a 10,000-character question still works


def test_fusion_rules():
    c = _Candidates(dense={1: (0.9, 1), 2: (0.8, 2), 3: (0.7, 3)}, lexical={3: (10.0, 1), 4: (2.0, 2)}, lexical_upper=10.0)
    s = dataclasses.replace(Settings(), dense_weight=1.0, lexical_weight=1.0)
    rrf = fuse(c, dataclasses.replace(s, fusion="rrf", rrf_k=60))
    assert rrf[0][0] == 3  # in both lists
    convex = dict(fuse(c, dataclasses.replace(s, fusion="convex")))
    assert convex[1] == pytest.approx(1.0) and convex[2] == pytest.approx(0.5)  # dense min-max
    assert convex[3] == pytest.approx(0.0 + 1.0) and convex[4] == pytest.approx(0.2)  # BM25 / best BM25
    # dense candidates within 0.02 of each other are not clearly separated: they count less than a full point
    flat = _Candidates(dense={1: (0.80, 1), 2: (0.78, 2)}, lexical={2: (5.0, 1)}, lexical_upper=10.0)
    assert dict(fuse(flat, dataclasses.replace(s, fusion="convex")))[1] == pytest.approx(0.02 / 0.08)
    assert fuse(flat, dataclasses.replace(s, fusion="convex"))[0][0] == 2
    # a lexical match that covers 5% of what the query could match (e.g. only a pinyin place name) is damped
    weak = _Candidates(dense=c.dense, lexical={3: (0.5, 1)}, lexical_upper=10.0)
    assert dict(fuse(weak, dataclasses.replace(s, fusion="convex")))[3] == pytest.approx(0.25)
    assert fuse(weak, dataclasses.replace(s, fusion="convex"))[0][0] == 1
    with pytest.raises(InputError):
        fuse(c, dataclasses.replace(s, fusion="nope"))


def test_llama_index_adapter(small):
    from llama_index.core.schema import NodeWithScore

    nodes = as_llama_retriever(small, top_k=2).retrieve("西安高新区研发投入占比")
    assert len(nodes) == 2 and isinstance(nodes[0], NodeWithScore)
    assert nodes[0].node.metadata["doc_id"] == ARTICLES[1].doc_id and "8.5%" in nodes[0].node.get_content()


# ---------------------------------------------------------------- the real model on the bundled articles


class Memo:
    """Remembers passage vectors so a second index (Milvus) reuses the first one's embeddings."""

    def __init__(self, inner) -> None:
        self.inner, self.memo = inner, {}
        self.model_id, self.dim = inner.model_id, inner.dim

    def encode_passages(self, texts, progress=False):
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.inner.encode_passages(todo)))
        return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)


def dev_questions() -> list[dict]:
    return [json.loads(line) for line in DEV_QA.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory, embedder):
    from rag.ingest import default_corpus

    memo = Memo(embedder)
    out = {}
    for store in ("faiss", "milvus"):
        root = tmp_path_factory.mktemp(f"seeds-{store}")
        s = dataclasses.replace(Settings.from_env(), index_root=root, index_name="seeds", store=store,
                                milvus_uri=str(root / "x.db") if store == "milvus" else "")
        ingest_into_index(default_corpus(), s, progress=False, embedder=memo)
        index = Index.open(s.index_dir, s)
        out[store] = (Retriever(index, embedder, s), s)
    prefix = {Path(m["path"]).name.split("_")[0]: d for d, m in out["faiss"][0].index.documents.items()}
    return out, prefix


def test_gold_article_ranks_first_for_every_dev_question(seeds):
    (retrievers, prefix) = seeds
    retriever = retrievers["faiss"][0]
    cases = [q for q in dev_questions() if q.get("doc")]
    assert any(q.get("lang") == "en" for q in cases) and len(cases) >= 15
    wrong = []
    for q in cases:
        top = retriever.retrieve(q["q"], top_k=5)[0]
        if top.chunk.doc_id != prefix[q["doc"]]:
            wrong.append((q["id"], q["q"], top.chunk.title))
    assert wrong == []


def test_milvus_store_returns_the_same_top_hit_as_faiss(seeds):
    (retrievers, _) = seeds
    faiss_r, milvus_r = retrievers["faiss"][0], retrievers["milvus"][0]
    assert milvus_r.index.stats()["store"] == "milvus" and (milvus_r.index.folder.parent / "x.db").exists()
    for i, q in enumerate(dev_questions()):
        for mode in ("dense", "hybrid") if i % 4 == 0 else ("dense",):
            a, b = faiss_r.retrieve(q["q"], top_k=3, mode=mode), milvus_r.retrieve(q["q"], top_k=3, mode=mode)
            assert a[0].chunk.chunk_id == b[0].chunk.chunk_id
            assert a[0].scores["dense"] == pytest.approx(b[0].scores["dense"], abs=1e-4)
    doc = faiss_r.index.chunks[0].doc_id  # filters go through Milvus too
    hits = milvus_r.retrieve("西宁对接会签了多少个项目？", top_k=3, mode="dense", filters=Filters(doc_ids=[doc]))
    assert hits and {h.chunk.doc_id for h in hits} == {doc}


def test_cli_search_prints_ranked_passages(seeds, capsys):
    from rag.cli import main

    (retrievers, prefix) = seeds
    s = retrievers["faiss"][1]
    assert main(["search", "How many projects were signed in Xining?", "--index", str(s.index_dir), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["doc_id"] == prefix["002"] and rows[0]["rank"] == 1 and "dense" in rows[0]["scores"]
    assert main(["search", "西宁对接会签了多少个项目？", "--index", str(s.index_dir), "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] ") and "[2] " in out and "dense" in out and "lexical" in out
    assert main(["search", "西宁", "--index", str(s.index_dir), "--since", "2030-01-01"]) == 0
    assert "no passage found" in capsys.readouterr().out


def test_english_question_prefers_passages_spelling_its_names(tmp_path):
    s = dataclasses.replace(Settings(), index_root=tmp_path, index_name="names", top_k=3)
    index = Index.create(s.index_dir, s)
    docs = [doc("xian", "西安高新区研发投入占比提升至8.5%，先进制造业年均增长24.7%。"),
            doc("tech", "IT之家消息，Tech 星球报道，High Zone App 的 share 与 spending rise 再创新高，先进 AI 功能上线。"),
            doc("xianjin", "先进制造业研发投入占比持续提升，高新技术企业数量增长。")]
    index.add(docs, [c for d in docs for c in chunk_document(d, s.chunk_size, s.chunk_overlap)], HashEmbedder(),
              progress=False)
    r = Retriever(index, HashEmbedder(), s)
    q = "How much did Xi'an High-tech Zone's R&D spending share rise to?"
    assert r.retrieve(q, mode="lexical")[0].chunk.doc_id == docs[1].doc_id  # literal English words alone mislead
    hits = r.retrieve(q)
    assert hits[0].chunk.doc_id == docs[0].doc_id  # 西安 spells Xi'an; 先进 (xianjin) does not
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert r.retrieve("西安高新区研发投入占比", top_k=1)[0].chunk.doc_id == docs[0].doc_id
    # fused by rank (cross_lingual_fusion="rrf": scores ~ 1/(60+rank)); a Chinese question by convex scores (~1-2)
    assert hits[0].score < 0.2 and r.retrieve("西安高新区研发投入占比", top_k=1)[0].score > 0.5
    convex = Retriever(index, HashEmbedder(), dataclasses.replace(s, cross_lingual_fusion="convex"))
    assert convex.retrieve(q, top_k=1)[0].score > 0.5


def test_english_questions_reach_chinese_text_through_dictionary_glosses(small):
    """BM25 over literal English words scores nothing in Chinese text; over the words' CC-CEDICT glosses it finds
    the passage (a fake, meaningless embedder, so the lexical side alone decides)."""
    q = "How many project cooperation agreements were signed?"
    assert small._lexical_query("西宁对接会签了多少个项目？") == "西宁对接会签了多少个项目？"
    tokens = small._lexical_query(q)
    assert isinstance(tokens, list) and "项目" in tokens
    hits = small.retrieve(q, top_k=1, mode="lexical")
    assert hits and "59个项目合作协议" in hits[0].chunk.text
    off = Retriever(small.index, small.embedder, dataclasses.replace(small.settings, cross_lingual_glosses=0))
    assert not off.retrieve(q, top_k=1, mode="lexical")  # without the glosses, nothing matches
