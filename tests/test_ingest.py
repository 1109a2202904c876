"""End to end on the five bundled seed articles, bad files mixed in, the report, and the CLI (`--no-index`)."""
from __future__ import annotations

import gzip
import json
import re

import pytest

from rag.cli import main
from rag.ingest import default_corpus, format_report, ingest_paths, iter_ingest, summarize
from rag.settings import Settings

GLOSS = re.compile(r"[(（]\s*[a-zA-Zü]*[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ][a-zA-Zü]*\s*[)）]|[(（][a-z]+[1-5][)）]")
SHARD = re.compile(r"[?\ufffd][;!,:]|[?\ufffd][a-zāáǎàēéěèīíǐìōóǒòūúǔù]+\)")
PHONE = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|400[-\s]?\d{3,4}[-\s]?\d{3,4}|0\d{2,3}-\d{7,8})(?!\d)")
BOILERPLATE = ["免责声明", "免責聲明", "郑重声明", "鄭重聲明", "版权声明", "版權聲明", "本文为澎湃号作者", "仅代表该作者",
               "热点资讯", "熱點資訊", "24小時", "周排行", "月排行", "扫一扫", "二维码", "微信", "原标题", "字體:大",
               "【打印】", "收藏本頁", "浏览次数", "发布日期", "正文内容", "核心提示", "cidr@"]

# sentences of substance that must come through cleaning whole, each inside one chunk
KEY_SENTENCES = [
    "28日举行的对接会闭幕式上,通过“现场+云”签约方式,一系列科技成果深度“联姻”,共签署59个项目合作协议,签约总资金11280万元,"
    "西宁地区64家企业和科研机构在光伏、锂电、铝镁合金和生物医药等重点领域达成合作。",
    "正如西宁市委副书记、市长张晓容所言,近年来,西宁市始终坚持以新时代中国特色社会主义思想为指导,深入实施创新驱动发展战略,"
    "聚焦推动高质量发展,结合独特的资源禀赋和产业特征,以培育发展生态、循环、数字、飞地“四种经济形态”为引领,加快产业转型升级,"
    "全市产业向绿色化、智能化方向加速推进,西宁正式迈入国家创新型城市行列。",
    "来自青海国家高新技术产业开发区企业、大通北川省级高新区企业及团队经过激烈角逐,76个项目最终有12个项目脱颖而出荣获奖项,"
    "其中一等奖2名、二等奖4名、三等奖6名。",
    "科研成果的落地转化,是科技创新直接服务于产业高质量发展的必由之路。",
    "无疑,科技成果的高效转移转化是实现创新能力产出最大化的最佳途径。",
    "活動現場,來自華南理工大學、武漢理工大學、北京理工大學、北京航空航天大學、西安交通大學等一批省內外高校院所帶著優質科技成果"
    "到南陽進行現場發布,與南陽市本地科技企業進行了面對面的對接交流,現場共簽訂科技轉化合作協議8項。",
    "本次活動由科技部火炬中心、河南省科技廳、南陽市人民政府、深圳證券交易所主辦,南陽市科技局、南陽高新技術產業開發區承辦。",
    "9月25日,2023年度火炬科技成果直通車(南陽站)活動在南陽市成功舉辦。",
    "作為“硬科技”策源地、全國首個硬科技創新示范區,自創建以來,西安高新區經濟發展邁上新臺階,戰略性新興產業年均增速17.7%,"
    "先進制造業年均增長24.7%,經濟總量三年凈增近千億,全社會的研發投入占比從6%提升到了8.5%,連續三年入圍全國高質量發展“百強園區”前十;",
    "11月1日下午,2024硬科技創新大會西安高新區系列活動——國家硬科技創新示范區建設會議在西安高新國際會議中心舉辦。",
    "在科技部发布的《国家创新型城市创新能力报告》中,西安居副省级城市第6位,西部第1位。",
    "●“5”为5场平行论坛,包括国家硬科技创新示范区建设论坛、外国专家座谈会、2023光子产业暨硬科技成果转化论坛等。",
    "届时相关部委领导、国际组织负责人、知名科学家、国内外知名企业家、投资家等嘉宾齐聚西安,聚力打造一场集学术交流、会议会展、"
    "科技招商、产业融通、国际合作等为一体的科技盛宴。",
    "大会突出“硬科技·新质生产力”的主题,旨在把握新一轮科技革命和产业变革,加快形成新质生产力,增强发展新动能,"
    "为打造新动能强劲的创新名城作出更大贡献。",
    "4月9日，创新港首届关键卡脖子技术转化研讨会暨项目路演大会召开。",
    "大会吸引了来自省内外高校、科研院所、金融机构、科技企业等逾2000余人参与，所有会场座无虚席。",
]


@pytest.fixture(scope="module")
def seeds():
    return ingest_paths(default_corpus(), Settings(), progress=False)


def test_all_seeds_ingest(seeds):
    assert len(seeds.documents) == 5 and not seeds.failed
    assert all(r.ok and r.chunks > 0 and r.encoding == "utf-8" for r in seeds.reports)


def test_no_dirt_in_any_chunk(seeds):
    assert seeds.chunks
    for chunk in seeds.chunks:
        text = chunk.text
        assert "9博体育" not in text and "蕞" not in text
        assert not GLOSS.search(text), GLOSS.search(text)
        assert not SHARD.search(text) and "?" not in text.replace("优势?无疑", "")
        assert not PHONE.search(text), PHONE.search(text)
        for marker in BOILERPLATE:
            assert marker not in text, (marker, chunk.chunk_id)
        assert not text.lstrip().startswith("-")


@pytest.mark.parametrize("sentence", KEY_SENTENCES)
def test_key_sentence_intact_in_one_chunk(seeds, sentence):
    assert any(sentence in c.text for c in seeds.chunks), sentence


def test_titles_dates_scripts(seeds):
    by_prefix = {d.path.rsplit("/", 1)[-1][:3]: d for d in seeds.documents}
    assert all(d.title for d in seeds.documents)
    assert by_prefix["000"].date == "2024-04-11" and by_prefix["001"].date == "2024-11-02"
    assert by_prefix["002"].date is None and by_prefix["003"].date is None and by_prefix["004"].date is None
    assert by_prefix["001"].script == by_prefix["004"].script == "traditional"
    assert "國家硬科技創新示范區" in by_prefix["001"].text and "南陽市" in by_prefix["004"].text  # own script kept
    assert "国家硬科技创新示范区" in by_prefix["001"].text_simplified and "南阳市" in by_prefix["004"].text_simplified
    assert by_prefix["001"].source == "財新網"
    for d in seeds.documents:
        assert len(d.doc_id) == 16
        assert d.cleaning and set(d.cleaning) >= {"encoding", "glosses", "boilerplate", "spam_tokens", "variants"}
    assert by_prefix["003"].cleaning["spam_tokens"] > 0 and by_prefix["002"].cleaning["variants"] > 0
    assert by_prefix["004"].cleaning["glosses"] > 0 and by_prefix["004"].cleaning["encoding"] > 0


def test_chunks_point_into_documents(seeds):
    docs = {d.doc_id: d for d in seeds.documents}
    for c in seeds.chunks:
        d = docs[c.doc_id]
        assert d.text[c.start:c.end] == c.text
        assert c.title == d.title and c.date == d.date
        assert len(c.text) <= Settings().chunk_size


def test_byte_shift_in_seed_is_rebuilt(seeds):
    text = next(d.text for d in seeds.documents if d.path.endswith(".txt") and "南陽" in d.text)
    assert "舉辦。活動以" in text
    assert "錨定“兩個確保”" in text


def test_bad_files_are_reported_and_others_still_go_in(tmp_path):
    (tmp_path / "good.txt").write_bytes("全市技术合同成交额突破百亿元。\n其中高校贡献过半。".encode("gb18030"))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)))
    (tmp_path / "lines.jsonl").write_text('{"text": "第一篇。"}\n{broken\n{"text": "第一篇。"}\n', encoding="utf-8")
    result = ingest_paths([tmp_path, tmp_path / "missing.txt"], progress=False)
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in result.reports}
    assert by_name["good.txt"].ok and by_name["good.txt"].encoding == "gb18030"
    assert not by_name["empty.txt"].ok and "empty" in by_name["empty.txt"].error
    assert not by_name["binary.txt"].ok and "binary" in by_name["binary.txt"].error
    assert not by_name["lines.jsonl#2"].ok and "not valid JSON" in by_name["lines.jsonl#2"].error
    assert by_name["lines.jsonl#3"].status == "skipped" and "same text" in by_name["lines.jsonl#3"].error
    assert not by_name["missing.txt"].ok
    assert len(result.documents) == 2
    report = format_report(result.reports)
    assert "FAILED" in report and "binary" in report and "2 article(s) read (added 2), 4 failed, 1 duplicate(s)" in report


def test_iter_ingest_streams_gzip_jsonl_with_limit(tmp_path):
    path = tmp_path / "news.jsonl.gz"
    rows = [{"id": f"n{i}", "text": f"2023-08-0{1 + i % 9} 10:00，正文：第{i}条新闻，科技成果转化进展顺利。"} for i in range(120)]
    path.write_bytes(gzip.compress("\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()))
    out = list(iter_ingest([path], progress=False, limit=100))
    assert len(out) == 100
    doc, chunks, report = out[5]
    assert doc.text == "第5条新闻，科技成果转化进展顺利。" and doc.date == "2023-08-06" and doc.metadata["id"] == "n5"
    assert report.removed["header"] > 0 and chunks[0].chunk_id == f"{doc.doc_id}:0"
    assert summarize([r for _, _, r in out])["articles"] == 100


def test_progress_bar_on_stderr_only_for_large_inputs(tmp_path, capsys):
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"第{i}条新闻。"}, ensure_ascii=False) for i in range(80)),
                    encoding="utf-8")
    list(iter_ingest([path], progress=True, limit=30))
    assert "article" not in capsys.readouterr().err  # small run, not a TTY: no bar
    list(iter_ingest([path], progress=True))
    captured = capsys.readouterr()
    assert "ingest" in captured.err and "article" in captured.err and captured.out == ""


def test_cli_no_index_report_and_exit_codes(tmp_path, capsys):
    assert main(["ingest", "--no-index"]) == 0
    out = capsys.readouterr().out
    assert "5 article(s) read (added 5), 0 failed" in out and "2024-11-02" in out and "spam_tokens" in out
    assert main(["ingest", "--no-index", "--json", str(default_corpus()[0])]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["articles"] == 1 and data["reports"][0]["date"] == "2024-04-11"
    (tmp_path / "empty.txt").write_bytes(b"")
    assert main(["ingest", "--no-index", str(tmp_path / "empty.txt")]) == 1
    assert "FAILED" in capsys.readouterr().out
