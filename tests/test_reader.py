"""rag.reader: which reader runs and how they fall back; the extractive reader over entity-consistent evidence."""
from __future__ import annotations

import pytest

from rag.errors import InputError
from rag.evidence import gather
from rag.question import analyze
from rag.reader import ExtractiveReader, read_stream, resolve_mode
from rag.records import Answer, Chunk, Hit
from rag.script import to_simplified
from rag.settings import Settings

HEFEI = ("合肥科技成果对接会在滨湖国际会展中心举行。本次对接会由合肥市科技局主办，吸引了120家企业参加。"
         "对接会现场共签约12个项目，签约金额达3.5亿元。")
XINING = "西宁科技成果对接会闭幕。对接会上共签署59个项目合作协议，签约总资金11280万元。"


def _evidence(question: str):
    hits = []
    for i, (doc, text, title) in enumerate((("xin", XINING, "西宁对接会闭幕"), ("hef", HEFEI, "合肥对接会举行"))):
        hits.append(Hit(Chunk(f"{doc}:0", doc, text, to_simplified(text), 0, len(text), title=title), 1.0 / (1 + i), i,
                        {"dense": 0.85}))
    texts = {h.chunk.doc_id: h.chunk.title + "\n" + h.chunk.text for h in hits}
    return gather(analyze(question), hits, lambda d: texts[d])


class Scripted:
    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def chat(self, messages, max_tokens=64, stream=False):
        return iter([self.reply]) if stream else self.reply


def test_resolve_mode():
    s = Settings(answer_mode="extractive")
    assert resolve_mode(None, s) == "extractive" and resolve_mode("LLM", s) == "llm"
    assert resolve_mode("auto", Settings(llm_url="http://127.0.0.1:9/v1")) == "llm"  # an endpoint is configured
    with pytest.raises(InputError):
        resolve_mode("telepathy", s)


def test_extractive_reader_answers_from_the_document_that_names_the_place():
    ans = ExtractiveReader(Settings(answerable_threshold=0.0)).read(_evidence("合肥对接会签了多少个项目？"))
    assert ans.found and "12个" in ans.text and "59" not in ans.text
    assert ans.citations[0].doc_id == "hef"


def test_a_place_no_document_names_is_not_found():
    ans = ExtractiveReader(Settings(answerable_threshold=0.0)).read(_evidence("武汉对接会签了多少个项目？"))
    assert not ans.found and ans.related


def test_an_answer_of_another_quantity_is_not_found():
    from rag.answering import wrong_quantity

    q = analyze("合肥对接会签约了几个项目？")
    assert wrong_quantity(q, "签约金额达3.5亿元 [1]") == "count" and wrong_quantity(q, "同比增长12% [1]") == "count"
    assert wrong_quantity(q, "现场共签约12个项目 [1]") == ""
    money = analyze("合肥对接会签约金额是多少亿元？")
    assert wrong_quantity(money, "同比增长7.6%") == "money" and wrong_quantity(money, "签约金额达3.5亿元") == ""
    english = analyze("How many households benefited from the renovation?")  # "how many" counts, in English too
    assert wrong_quantity(english, "595万元[1]") == "count" and wrong_quantity(english, "22768户[1]") == ""
    assert wrong_quantity(analyze("How many yuan were signed?"), "3亿元") == ""  # an amount, asked with "how many"
    invest = analyze("苏州轨道交通11号线的总投资是多少亿元？")  # a length or a count does not answer an amount
    assert wrong_quantity(invest, "41.25公里[1]") == "money" and wrong_quantity(invest, "银奖70个[1]") == "money"
    assert wrong_quantity(invest, "总投资约409亿元[1]") == "" and wrong_quantity(invest, "约3亿美元[1]") == ""
    tonnage = analyze("2019年至2022年北部湾港综合吞吐能力增长到了多少亿吨？")  # 亿 of tonnes, not of yuan
    assert wrong_quantity(tonnage, "增长到3.15亿吨[1]") == ""
    assert wrong_quantity(analyze("合肥对接会签约金额是多少亿？"), "签约12个项目[1]") == "money"
    prize = analyze("How much prize money does the winner of the Hefei contest receive?")
    assert wrong_quantity(prize, "银奖70个") == "money" and wrong_quantity(prize, "奖金100万元") == ""
    assert wrong_quantity(analyze("How many fund products does Xi'an High-tech Zone manage?"), "215支") == ""
    award = analyze("芜湖创新大赛一等奖的奖金是多少？")  # a money attribute (rag/data/money_words.txt), no 多少元
    assert wrong_quantity(award, "一等奖2名[1]") == "money" and wrong_quantity(award, "奖金35万人民币[1]") == ""
    trees = analyze("How many trees is the Wuhu plant's yearly CO2 cut equal to?")  # a count, not a tonnage
    assert wrong_quantity(trees, "减排二氧化碳88万吨[1]") == "count" and wrong_quantity(trees, "相当于植树750万棵[1]") == ""
    tonnes = analyze("How many tonnes of CO2 does the Wuhu plant cut each year?")  # rag/data/units_en.txt
    assert tonnes.quantity == "measure" and wrong_quantity(tonnes, "减排二氧化碳88万吨[1]") == ""
    stations = analyze("How many stations does Suzhou Metro Line 11 have?")  # the question's own 11 is no count
    assert wrong_quantity(stations, "苏州轨道交通11号线全长41.25公里[1]") == "count"
    assert wrong_quantity(stations, "苏州轨道交通11号线设站28座[1]") == ""
    speed = analyze("宁波地铁8号线列车的最高时速是多少？")  # 公里 measures speeds too, but 全长 says this one is a length
    assert wrong_quantity(speed, "宁波地铁8号线全长23公里[1]") == "measure"
    assert wrong_quantity(speed, "最高运行时速80公里[1]") == ""
    households = analyze("辽中区改造老旧小区惠及多少户居民？")  # any measure word of a count asks for a count
    assert wrong_quantity(households, "惠及居民占比达52% [1]") == "count" and wrong_quantity(households, "惠及22768户 [1]") == ""
    ans = ExtractiveReader(Settings(answerable_threshold=0.0)).read(_evidence("合肥对接会有多少家企业占比超过一半？"))
    assert ans.found == ("家" in ans.text)  # whatever the span, a count question never gets a bare share


def test_a_measured_attribute_is_answered_only_in_its_own_units():
    from rag.answering import wrong_quantity

    speed = analyze("合肥地铁8号线列车的最高运行时速是多少？")  # rag/data/measured_attributes.txt: 时速 -> 公里/小时 …
    assert wrong_quantity(speed, "日均客流9.7万人次[1]") == "measure" and wrong_quantity(speed, "全线设站28座") == "measure"
    assert wrong_quantity(speed, "最高时速100公里/小时[1]") == "" and wrong_quantity(speed, "提速20%") == ""
    area = analyze("合肥高新区规划面积是多少？")
    assert wrong_quantity(area, "入驻企业120家") == "measure"
    assert wrong_quantity(area, "规划面积128平方公里") == "" and wrong_quantity(area, "1200亩") == ""
    assert wrong_quantity(analyze("合肥对接会签约了多少个项目？"), "12个") == ""  # no measured attribute asked
    km = analyze("这款电动车充满电能跑多少公里？")  # a unit named after 多少 asks a figure in it (or its equivalents)
    assert wrong_quantity(km, "充电15分钟[1]") == "measure"
    assert wrong_quantity(km, "续航达700km[1]") == "" and wrong_quantity(km, "能跑600公里[1]") == ""
    assert wrong_quantity(analyze("这列火车有几节车厢？"), "16节[1]") == ""  # 节 also counts: no unit asked


def test_llm_mode_yields_a_preliminary_answer_then_the_grounded_one():
    ev = _evidence("合肥对接会签了多少个项目？")
    reader = ExtractiveReader(Settings(answerable_threshold=0.0))
    out = list(read_stream(ev, "llm", reader, lambda: (Scripted("现场共签约12个项目[1]"), None)))
    answers = [p for p in out if isinstance(p, Answer)]
    assert answers[0].final is False and answers[0].mode == "extractive"
    assert answers[-1].final and answers[-1].mode == "llm" and "12个项目" in answers[-1].text
    assert out.index(answers[0]) < out.index(answers[-1])


def test_yes_no_questions_are_read_by_the_extractive_reader_in_llm_mode():
    asked = []

    def get_llm():
        asked.append(1)
        return Scripted("是[1]"), None

    ev = _evidence("合肥对接会是由合肥市科技局主办的吗？")
    pieces = list(read_stream(ev, "llm", ExtractiveReader(Settings(answerable_threshold=0.0)), get_llm))
    final = pieces[-1]
    assert isinstance(final, Answer) and final.final and final.mode == "extractive" and not asked
    assert any("extractive reader" in n for n in final.notes)


def test_llm_unavailable_leaves_the_extractive_answer_with_a_note():
    ev = _evidence("合肥对接会签了多少个项目？")
    reader = ExtractiveReader(Settings(answerable_threshold=0.0))
    out = list(read_stream(ev, "llm", reader, lambda: (None, "no model here.")))
    final = [p for p in out if isinstance(p, Answer) and p.final][-1]
    assert final.mode == "extractive" and "12个" in final.text and "no model here." in final.notes


def test_an_ungrounded_llm_draft_is_declined_with_a_note():
    ev = _evidence("合肥对接会签了多少个项目？")
    reader = ExtractiveReader(Settings(answerable_threshold=0.0))
    out = list(read_stream(ev, "llm", reader, lambda: (Scripted("共签署59个项目合作协议[1]"), None)))
    final = out[-1]
    assert isinstance(final, Answer) and not final.found and "59" not in final.text
    assert any("not grounded" in n for n in final.notes)


def test_assistant_never_quotes_another_citys_figure(tmp_path, embedder):
    """The browser failure of issue 11: an uploaded 合肥 article beside the bundled Xining one."""
    from rag.assistant import Assistant
    from rag.settings import CORPUS_DIR

    (tmp_path / "hefei.txt").write_text("合肥科技成果对接会举行\n" + HEFEI, encoding="utf-8")
    seed = next(CORPUS_DIR.glob("002_*.txt"))
    bot = Assistant.from_paths([tmp_path / "hefei.txt", seed], index_dir=tmp_path / "idx",
                               settings=Settings.from_env(answer_mode="extractive"))
    a = bot.ask("合肥对接会签了多少个项目？")
    assert "59" not in a.text
    assert a.found and "12" in a.text and a.citations[0].title.startswith("合肥")
    assert "59" in bot.ask("西宁对接会签了多少个项目？").text
