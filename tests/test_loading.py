"""Loading real files: encodings (each written in that encoding), formats, gzip, folders/globs, and bad files."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag.errors import InputError
from rag.loading import LoadFailure, decode_bytes, iter_load, load_file
from rag.records import RawDocument

SIMP = "西宁首届科技成果转移转化对接会闭幕，共签署59个项目合作协议，签约总资金11280万元。\n企业和科研机构达成合作。"
TRAD = "國家硬科技創新示范區建設會議在西安高新區舉辦，現場共簽訂科技轉化合作協議8項。\n全社會研發投入占比提升至8.5%。"


def _one(path: Path) -> RawDocument:
    items = list(load_file(path))
    assert len(items) == 1, items
    assert isinstance(items[0], RawDocument), items[0]
    return items[0]


@pytest.mark.parametrize(
    "text,encoding,expected",
    [
        (SIMP, "utf-8", "utf-8"),
        (SIMP, "utf-8-sig", "utf-8"),
        (SIMP, "gb18030", "gb18030"),
        (SIMP, "gbk", "gb18030"),  # GBK files are read with its superset GB18030
        (SIMP, "gb2312", "gb18030"),
        (TRAD, "big5", "big5"),
        (TRAD, "gb18030", "gb18030"),  # traditional characters written in GB18030
        (SIMP, "utf-16", "utf-16"),  # with BOM
        (TRAD, "utf-16", "utf-16"),
    ],
)
def test_encodings_are_detected(tmp_path, text, encoding, expected):
    path = tmp_path / f"article_{encoding}.txt"
    path.write_bytes(text.encode(encoding))
    raw = _one(path)
    assert raw.text == text
    assert raw.encoding == expected
    assert raw.fmt == "txt"


def test_short_gbk_is_not_mistaken_for_big5(tmp_path):
    path = tmp_path / "short.txt"
    path.write_bytes("科技成果".encode("gbk"))
    assert _one(path).text == "科技成果"


def test_utf8_is_preferred_when_it_decodes():
    text, enc = decode_bytes("签约总资金11280万元".encode("utf-8"))
    assert enc == "utf-8" and text == "签约总资金11280万元"


def test_utf8_with_a_corrupt_byte_stays_utf8(tmp_path):
    path = tmp_path / "damaged.txt"
    data = (SIMP * 6).encode("utf-8")
    cut = len(SIMP[:20].encode("utf-8"))
    path.write_bytes(data[:cut] + b"\xff" + data[cut:])
    raw = _one(path)
    assert raw.encoding == "utf-8" and raw.text.replace("\ufffd", "") == SIMP * 6


def test_gzip_is_read_directly(tmp_path):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(SIMP.encode("gb18030")))
    raw = _one(path)
    assert raw.text == SIMP and raw.encoding == "gb18030"


def test_html_main_text_and_metadata(tmp_path):
    html = """<html><head><title>西宁对接会闭幕 - 新闻网</title><meta name="date" content="2024-07-29">
    <meta property="og:site_name" content="西宁新闻网"></head><body>
    <nav><a href="/">首页</a> <a href="/a">国内</a> <a href="/b">国际</a></nav>
    <article><h1>西宁对接会闭幕</h1><p>28日举行的对接会闭幕式上，共签署59个项目合作协议，签约总资金11280万元。</p>
    <p>西宁地区64家企业和科研机构在光伏、锂电、铝镁合金和生物医药等重点领域达成合作，推动产学研用深度融合。</p>
    <p>对接会邀请到省内外10名知名院士和专家学者，为西宁市产业发展问诊把脉、建言献策。</p></article>
    <footer>版权所有 © 2024 新闻网</footer><script>var x = "不应出现";</script></body></html>"""
    path = tmp_path / "page.html"
    path.write_bytes(html.encode("gb18030"))
    raw = _one(path)
    assert raw.fmt == "html" and raw.encoding == "gb18030"
    assert "共签署59个项目合作协议" in raw.text
    assert "var x" not in raw.text and "<p>" not in raw.text
    assert raw.fields["title"] == "西宁对接会闭幕"
    assert raw.fields["date"] == "2024-07-29"


def test_markdown(tmp_path):
    path = tmp_path / "note.md"
    path.write_text("# 对接会闭幕\n\n共签署**59个**项目，详见[报道](http://x.cn)。\n", encoding="utf-8")
    raw = _one(path)
    assert raw.fields["title"] == "对接会闭幕"
    assert "共签署59个项目，详见报道。" in raw.text


def test_json_object_and_list(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"id": "a1", "title": "标题", "date": "2024-11-02", "source": "财新网", "url": "http://x",
                               "text": SIMP, "tags": ["科技"]}, ensure_ascii=False), encoding="utf-8")
    raw = _one(one)
    assert raw.text == SIMP and raw.fmt == "json"
    assert raw.fields == {"id": "a1", "title": "标题", "date": "2024-11-02", "source": "财新网", "url": "http://x",
                          "tags": ["科技"]}
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"content": "第一篇文章的内容。"}, {"body": "第二篇。"}, {"title": "没有正文"}],
                               ensure_ascii=False), encoding="utf-8")
    items = list(load_file(many))
    assert [type(i) for i in items] == [RawDocument, RawDocument, LoadFailure]
    assert items[0].text == "第一篇文章的内容。" and items[0].path.endswith("many.json#1")
    assert "no non-empty 'text' field" in items[2].reason


def test_jsonl_streams_and_reports_bad_lines(tmp_path):
    lines = [json.dumps({"id": f"n{i}", "text": f"第{i}篇文章。", "extra": i}, ensure_ascii=False) for i in range(5)]
    lines.insert(2, "{not json")
    lines.insert(4, "")
    lines.append(json.dumps(["not", "an", "object"]))
    path = tmp_path / "news.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    items = list(load_file(path))
    docs = [i for i in items if isinstance(i, RawDocument)]
    bad = [i for i in items if isinstance(i, LoadFailure)]
    assert [d.text for d in docs] == [f"第{i}篇文章。" for i in range(5)]
    assert docs[0].fields == {"id": "n0", "extra": 0} and docs[0].path.endswith("news.jsonl.gz#1")
    assert len(bad) == 2
    assert bad[0].path.endswith("#3") and "not valid JSON" in bad[0].reason
    assert "expected a JSON object" in bad[1].reason


def test_jsonl_in_gb18030(tmp_path):
    path = tmp_path / "gb.jsonl"
    path.write_bytes((json.dumps({"text": SIMP}, ensure_ascii=False) + "\n").encode("gb18030"))
    (raw,) = list(load_file(path))
    assert raw.text == SIMP and raw.encoding == "gb18030"


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("empty.txt", b"", "empty file"),
        ("blank.txt", b"  \n\t\n", "empty file"),
        ("binary.txt", bytes(range(256)) * 4, "binary file"),
        ("undecodable.txt", bytes([0x80 + (i * 37) % 128 for i in range(2000)]), "unknown encoding"),
        ("broken.json", b'{"text": "abc"', "not valid JSON"),
        ("empty.jsonl", b"", "empty file"),
        ("picture.png", b"\x89PNG\r\n", "unsupported file type"),
        ("bad.txt.gz", b"this is not gzip data", "cannot read file"),
    ],
)
def test_bad_files_fail_with_a_reason(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    items = list(load_file(path))
    assert len(items) == 1 and isinstance(items[0], LoadFailure)
    assert reason in items[0].reason


def test_decode_bytes_raises_input_error():
    with pytest.raises(InputError, match="binary"):
        decode_bytes(b"abc\x00def")


def test_folders_globs_and_missing_paths(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "a.txt").write_text("甲文章。", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("乙文章。", encoding="utf-8")
    (tmp_path / "sub" / "deeper" / "c.txt").write_bytes("丙文章。".encode("gb18030"))
    (tmp_path / "sub" / "ignored.csv").write_text("x,y", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.txt").write_text("丁文章。", encoding="utf-8")
    texts = sorted(i.text for i in iter_load([tmp_path]) if isinstance(i, RawDocument))
    assert texts == sorted(["甲文章。", "乙文章。", "丙文章。"])
    globbed = [i for i in iter_load([str(tmp_path / "**" / "*.txt")])]
    assert sorted(i.text for i in globbed if isinstance(i, RawDocument)) == sorted(["甲文章。", "丙文章。"])
    items = list(iter_load([tmp_path / "nope.txt", str(tmp_path / "*.xyz"), tmp_path / "a.txt"]))
    assert isinstance(items[0], LoadFailure) and "no such file" in items[0].reason
    assert isinstance(items[1], LoadFailure) and "no file matches" in items[1].reason
    assert isinstance(items[2], RawDocument) and items[2].text == "甲文章。"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_detected(tmp_path, encoding):
    text = "西宁首届科技成果转移转化对接会闭幕，共签署59个项目合作协议。\nThe 2nd line has ASCII.\n"
    p = tmp_path / "no_bom.txt"
    p.write_bytes(text.encode(encoding))  # no byte-order mark
    docs = [d for d in iter_load([p]) if isinstance(d, RawDocument)]
    assert len(docs) == 1 and docs[0].text.startswith("西宁首届") and docs[0].encoding == encoding
    jl = tmp_path / "no_bom.jsonl"
    jl.write_bytes((json.dumps({"title": "对接会", "text": text}, ensure_ascii=False) + "\n").encode(encoding))
    rows = [d for d in iter_load([jl]) if isinstance(d, RawDocument)]
    assert len(rows) == 1 and "59个项目" in rows[0].text


def test_broken_utf16_without_bom_says_so():
    data = "西宁对接会 ok\n".encode("utf-16-le") + b"\x01\xd8A\x00"  # an unpaired surrogate
    with pytest.raises(InputError, match="UTF-16 without a byte-order mark"):
        decode_bytes(data)
