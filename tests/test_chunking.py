"""Sentence splitting and chunking: exact offsets, whole sentences, never inside a number."""
from __future__ import annotations

import pytest

from rag.chunking import chunk_document, chunk_spans, split_sentences
from rag.records import Document
from rag.script import to_simplified


def _sents(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def test_sentence_ends_and_closing_quotes():
    text = "他说：“我们签了59个项目！”记者问：真的吗？是的；还有后续……下一段\n新的一行"
    assert _sents(text) == ["他说：“我们签了59个项目！”", "记者问：真的吗？", "是的；", "还有后续……", "下一段", "新的一行"]


@pytest.mark.parametrize("number", ["8.5%", "11280万元", "4.5微米", "2024.11.2", "12-13", "1,280.5", "3.14159", "v2.0"])
def test_never_splits_inside_numbers(number):
    text = f"前面一句。数据是{number}，后面还有内容。最后一句"
    sents = _sents(text)
    assert any(number in s for s in sents), sents
    assert sents[1] == f"数据是{number}，后面还有内容。"


def test_ascii_punctuation_and_english():
    text = "Revenue rose to 8.5% in 2024. The plan works! 中文也行?对;好"
    assert _sents(text) == ["Revenue rose to 8.5% in 2024.", "The plan works!", "中文也行?", "对;", "好"]


def test_spans_are_offsets_and_whitespace_is_dropped():
    text = "  第一句。  \n\n   \n第二句！ "
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["第一句。", "第二句！"]
    assert split_sentences("   \n  ") == []
    assert split_sentences("") == []


def _doc(text: str, title: str = "标题") -> Document:
    return Document(doc_id="abc", title=title, text=text, text_simplified=to_simplified(text), date="2024-01-02",
                    source="来源", path="x.txt", script="simplified")


def test_chunks_are_exact_slices_of_whole_sentences():
    sents = [f"这是第{i}个句子，内容是关于科技成果转化的第{i}项说明。" for i in range(40)]
    text = "".join(sents[:20]) + "\n\n" + "".join(sents[20:])
    doc = _doc(text)
    chunks = chunk_document(doc, size=120, overlap=40)
    assert len(chunks) > 5
    starts = {a for a, _ in split_sentences(text)}
    ends = {b for _, b in split_sentences(text)}
    for n, c in enumerate(chunks):
        assert c.text == text[c.start:c.end]
        assert c.chunk_id == f"abc:{n}" and c.doc_id == "abc"
        assert c.title == "标题" and c.date == "2024-01-02" and c.source == "来源"
        assert c.start in starts and c.end in ends  # whole sentences only
        assert len(c.text) <= 120
    # every sentence is inside at least one chunk, intact
    for s in sents:
        assert any(s in c.text for c in chunks)
    # consecutive chunks overlap by whole sentences, at most ~overlap characters
    for a, b in zip(chunks, chunks[1:]):
        assert b.start <= a.end
        assert a.end - b.start <= 40


def test_long_sentence_split_at_commas_never_mid_number():
    clause = "签约总资金11280万元，"
    text = clause * 30 + "结束。"
    spans = chunk_spans(text, 50, 0)
    assert all(b - a <= 50 for a, b in spans)
    for a, b in spans:
        piece = text[a:b]
        assert piece.startswith("签约") or piece.startswith("结束")
    # a comma-less run of digits and characters is hard-cut, but not inside the number
    text2 = "甲" * 45 + "1234567890" + "乙" * 20
    spans2 = chunk_spans(text2, 50, 0)
    assert "".join(text2[a:b] for a, b in spans2) == text2
    assert any("1234567890" in text2[a:b] for a, b in spans2)


def test_traditional_chunk_gets_simplified_text():
    text = "現場共簽訂科技轉化合作協議8項。活動圓滿結束。"
    doc = Document(doc_id="t", title="", text=text, text_simplified=to_simplified(text), date=None, source=None,
                   path="t.txt", script="traditional")
    (chunk,) = chunk_document(doc, 300, 60)
    assert chunk.text == text
    assert chunk.text_simplified == "现场共签订科技转化合作协议8项。活动圆满结束。"


def test_to_node_keeps_offsets_and_source():
    doc = _doc("第一句。第二句。")
    node = chunk_document(doc, 300, 60)[0].to_node()
    assert node.text == "第一句。第二句。"
    assert node.start_char_idx == 0 and node.end_char_idx == 8
    assert node.metadata["title"] == "标题"
