"""rag.lexical: jieba tokens of simplified text, pinyin bridging for English names, BM25 via bm25s, persistence."""
from __future__ import annotations

import numpy as np
import pytest

from rag.errors import IndexError_
from rag.lexical import LexicalIndex, _bm25_matrix, tokenize, tokenize_query, top_k

TEXTS = [
    "西宁首届科技成果转移转化对接会共签署59个项目合作协议，签约总资金11280万元。",
    "西安高新区研发投入占比提升至8.5%，先进制造业年均增长24.7%。",
    "中光学集团董事长李智超在南阳站活动上致辞。",
    "陕西斯瑞新材料股份有限公司董事长王文斌介绍了公司的技术成果。",
]


def test_chinese_text_gives_words_without_punctuation_or_stopwords():
    toks = tokenize("西宁首届科技成果转移转化对接会的项目，签约了！")
    assert "西宁" in toks and "科技成果" in toks and "项目" in toks
    assert not any(t in ("，", "！", "的", "了", " ") for t in toks)
    assert "py:xining" in toks  # pinyin of a Han word as an extra token


def test_traditional_and_full_width_text_tokenize_like_simplified():
    assert tokenize("國家硬科技創新示範區") == tokenize("国家硬科技创新示范区")
    assert "ai" in tokenize("ＡＩ技术") and "5g" in tokenize("５Ｇ网络")


def test_english_words_that_spell_pinyin_reach_han_words():
    q = tokenize_query("How many projects were signed in Xining?")
    assert "py:xining" in q and "how" not in q  # English stopwords dropped
    assert "py:xian" in tokenize_query("Xi'an High-tech Zone's R&D")  # apostrophes: Xi'an -> xian, Zone's -> zone
    q = tokenize_query("Who is the chairman of Zhongguangxue Group?")
    assert {"py:zhongguangxue", "py:guangxue", "py:zhongguang"} <= set(q)
    assert not any(t.startswith("py:") and "chair" in t for t in q)  # "chairman" is not pinyin


def test_names_jieba_splits_still_get_their_pinyin():
    toks = tokenize("中光学集团董事长李智超")
    assert "中" in toks and "光学" in toks  # jieba splits the company name...
    assert "py:zhongguangxue" in toks  # ...its adjacent words still give the whole name's pinyin
    optics = ["光学镜头和光学玻璃的光学性能测试", "光学仪器光学设计"] * 3
    index = LexicalIndex().build(optics + TEXTS)
    assert index.search("Zhongguangxue Group chairman", 3)[0][0] == len(optics) + 2


def test_english_question_finds_the_chinese_passage_only_through_pinyin():
    index = LexicalIndex().build(TEXTS)
    assert index.search("How many projects were signed in Xining?", 3)[0][0] == 0
    assert index.search("Who is the chairman of Zhongguangxue Group?", 3)[0][0] == 2
    assert index.search("R&D spending share in Xi'an", 3)[0][0] == 1
    # without the pinyin bridge the same English question matches nothing
    assert index.search(tokenize_query("How many projects were signed in Xining?", pinyin=False), 3) == []


def test_scores_equal_the_bm25s_library():
    import bm25s

    rng = np.random.default_rng(0)
    rows = [(rng.zipf(1.5, size=rng.integers(1, 40)) % 200).astype(np.int32) for _ in range(300)]
    ours, _ = _bm25_matrix(rows, 200, 1.2, 0.75)
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index([[f"w{i}" for i in r] for r in rows], show_progress=False)
    for q in ([1, 5, 77], [3], [150, 2, 2]):
        assert np.allclose(ours.get_scores(q), ref.get_scores([f"w{i}" for i in q]), atol=1e-5)


def test_coverage_bound_and_unknown_words():
    index = LexicalIndex().build(TEXTS)
    scores, upper = index.scores("西宁对接会签了多少个项目")
    assert scores.max() > 0 and scores.max() <= upper + 1e-6
    _, upper_more = index.scores("西宁对接会签了多少个项目 火星探测器")  # unknown words raise the bound
    assert upper_more > upper


def test_allowed_rows_and_add_remove_keep_rows_aligned():
    index = LexicalIndex().build(TEXTS)
    assert [r for r, _ in index.search("董事长", 5)] and {r for r, _ in index.search("董事长", 5)} == {2, 3}
    assert [r for r, _ in index.search("董事长", 5, allowed_rows=np.array([3]))] == [3]
    mask = np.array([True, True, True, False])
    assert [r for r, _ in index.search("董事长", 5, allowed_rows=mask)] == [2]
    index.remove([0, 2])
    assert len(index) == 2
    assert index.search("董事长", 5)[0][0] == 1  # old row 3 is now row 1
    index.add(["南阳市副市长杨曙光出席活动"])
    assert index.search("南阳副市长", 5)[0][0] == 2


def test_save_load_round_trip(tmp_path):
    index = LexicalIndex().build(TEXTS)
    index.save(tmp_path / "lex")
    again = LexicalIndex.load(tmp_path / "lex")
    for q in ("西宁项目", "Xining", "董事长李智超"):
        assert again.search(q, 4) == index.search(q, 4)
    again.add(["新增的一段文字关于西宁"])  # still incremental after loading
    assert len(again) == 5 and {r for r, _ in again.search("西宁", 5)} == {0, 4}


def test_damaged_files_raise_index_error(tmp_path):
    LexicalIndex().build(TEXTS).save(tmp_path / "lex")
    (tmp_path / "lex" / "bm25.npz").write_bytes(b"garbage")
    with pytest.raises(IndexError_, match="damaged"):
        LexicalIndex.load(tmp_path / "lex")
    with pytest.raises(IndexError_):
        LexicalIndex.load(tmp_path / "missing")


def test_top_k_orders_and_skips_zero():
    s = np.array([0.0, 2.0, 5.0, 0.5, 0.0], dtype=np.float32)
    assert top_k(s, 3) == [(2, 5.0), (1, 2.0), (3, 0.5)]
    assert top_k(s, 10) == [(2, 5.0), (1, 2.0), (3, 0.5)]
    assert top_k(s, 2, np.array([1, 3])) == [(1, 2.0), (3, 0.5)]


def test_pinyin_names_and_conventional_romanizations():
    from rag.lexical import name_coverage, pinyin_names

    assert pinyin_names("Who is the chairman of Shaanxi Sirui New Materials?") == ["shanxi", "sirui"]
    assert pinyin_names("How much did Xi'an High-tech Zone's R&D share rise?") == ["xian"]
    # an English word that spells pinyin is no name; short name syllables (Wen, Zhang) stay names
    assert pinyin_names("How many Chinese Academy of Sciences labs signed in Xi'an?") == ["xian"]
    assert pinyin_names("Did Wen Jiabao meet Zhang Xiaorong?") == ["wen", "jiabao", "zhang", "xiaorong"]
    assert name_coverage(["xian"], "西安高新区") == 1.0 and name_coverage(["xian"], "先进制造业") == 0.0
    assert "py:shanxi" in tokenize_query("Shaanxi Sirui")


def test_a_removed_rows_terms_leave_the_vocabulary(tmp_path):
    texts = ["西宁对接会签署合作协议", "南阳站签约科技项目", "青海高原牦牛乳业发展"]
    idx = LexicalIndex().build(texts)
    assert "牦牛" in idx.vocab
    idx.remove([2])
    assert "牦牛" not in idx.vocab and set(idx.vocab) == set(LexicalIndex().build(texts[:2]).vocab)
    fresh = LexicalIndex().build(texts[:2])
    for q in ("西宁签署协议", "牦牛乳业", "南阳科技"):
        a, ua = idx.scores(q)
        b, ub = fresh.scores(q)
        assert np.allclose(a, b) and ua == pytest.approx(ub)
    idx.save(tmp_path / "lex")
    assert "牦牛" not in LexicalIndex.load(tmp_path / "lex").vocab
    idx.add(["牦牛回来了"])  # ids stay consistent after compaction
    assert idx.search("牦牛", 3)[0][0] == 2
