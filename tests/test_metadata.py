"""Titles, publish dates (never invented), sources, script and content-hash ids."""
from __future__ import annotations

import pytest

from rag.cleaning import clean_text
from rag.ingest import default_corpus
from rag.metadata import doc_id_for, extract_metadata, fallback_title, parse_date, split_title


@pytest.mark.parametrize(
    "value,expected",
    [
        ("日期：2024-04-11 14:37", "2024-04-11"),
        ("2024/11/2 22:31:36", "2024-11-02"),
        ("2024年11月2日", "2024-11-02"),
        ("2024.11.2", "2024-11-02"),
        ("20241102", "2024-11-02"),
        ("2024-11-02T08:00:00+08:00", "2024-11-02"),
        ("9月25日", None),  # no year: an event date, not a publish date
        ("7月27至28日", None),
        ("2023年度", None),
        ("2024-02-30", None),  # not a real day
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value, expected):
    assert parse_date(value) == expected


def test_title_from_first_headline_line():
    title, body = split_title("燃创新之火 打造科创先行区\n正文第一段，内容在这里。")
    assert title == "燃创新之火 打造科创先行区" and body == "正文第一段，内容在这里。"
    # a first line that is a sentence, or the only line, is not a headline
    assert split_title("第一段写到这里结束。\n第二段。")[0] is None
    assert split_title("只有一行的文章")[0] is None


def test_fallback_title_is_the_first_sentence():
    assert fallback_title("9月25日,火炬直通车活动在南阳举办。活动以成果转化为主题。") == "9月25日,火炬直通车活动在南阳举办"
    long = "这是一个非常长的第一句" * 10 + "。"
    assert len(fallback_title(long)) <= 49 and fallback_title(long).endswith("…")


def test_fields_beat_text_and_dates_are_not_guessed():
    meta, body = extract_metadata("正文第一段，9月25日活动举行。", {"title": "给定标题", "source": "某报", "url": "http://x"})
    assert (meta.title, meta.source, meta.url, meta.date) == ("给定标题", "某报", "http://x", None)
    assert body == "正文第一段，9月25日活动举行。"
    meta, _ = extract_metadata("正文。", {}, {"date": "2024/3/5 10:00", "source": "科技日报", "author": "王小明"})
    assert meta.date == "2024-03-05" and meta.source == "科技日报" and meta.extra["header_author"] == "王小明"


def test_script_detection():
    assert extract_metadata("國家硬科技創新示範區建設會議在西安舉辦。", {})[0].script == "traditional"
    assert extract_metadata("国家硬科技创新示范区建设会议在西安举办。", {})[0].script == "simplified"


def test_doc_id_is_a_stable_content_hash():
    assert doc_id_for("abc") == doc_id_for("abc") != doc_id_for("abd")
    assert len(doc_id_for("文本")) == 16 and int(doc_id_for("文本"), 16) >= 0


def _seed(prefix: str) -> str:
    (path,) = [p for p in default_corpus() if p.name.startswith(prefix)]
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "prefix,title,date,source,script",
    [
        ("000", "【128校庆】创新港首届关键卡脖子技术转化研讨会暨项目路演大会召开", "2024-04-11", None, "simplified"),
        ("001", "國家硬科技創新示范區建設會議在西安高新區舉辦", "2024-11-02", "財新網", "traditional"),
        ("002", "【科技创新】燃创新之火打造青海科创先行区——写在西宁首届科技成果转移转化对接会闭幕之际", None, None,
         "simplified"),
        ("003", "2023全球硬科技创新大会来了!", None, None, "simplified"),
        ("004", "9月25日,2023年度火炬科技成果直通車(南陽站)活動在南陽市成功舉辦", None, None, "traditional"),
    ],
)
def test_seed_metadata(prefix, title, date, source, script):
    cleaned = clean_text(_seed(prefix))
    meta, body = extract_metadata(cleaned.text, {}, cleaned.fields)
    assert meta.title == title
    assert meta.date == date
    assert meta.source == source
    assert meta.script == script
    if prefix == "004":  # no headline: the first sentence names the article and stays in the body
        assert body.startswith(title + "。")
    else:  # a headline line (or header field) is the title, not body text
        assert body and not body.startswith(title)
