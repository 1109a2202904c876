"""Question analysis: normalisation, language/script, type, focus, and follow-up rewriting (no model needed)."""
from __future__ import annotations

import pytest

from rag.errors import InputError
from rag.question import analyze, condense, detect_kind, detect_language, normalize, number_focus


@pytest.mark.parametrize(
    "question, kind",
    [
        ("西宁对接会签了多少个项目？", "number"),
        ("西宁对接会有几家金融机构参会？", "number"),
        ("西安居副省级城市第几位？", "number"),
        ("西宁市长是谁？", "who"),
        ("会议由哪位领导主持？", "who"),
        ("西宁对接会是几月几日举行的？", "when"),
        ("创新港路演大会在哪一天召开？", "when"),
        ("國家硬科技創新示范區建設會議在哪裡舉辦？", "where"),
        ("南阳站活动的承办单位有哪些？", "list"),
        ("西宁对接会是否有金融机构参会？", "yesno"),
        ("对接会邀请了院士吗？", "yesno"),
        ("硬科技是什么意思？", "what"),
        ("How many projects were signed in Xining?", "number"),
        ("What percentage of spending goes to R&D?", "number"),
        ("Who is the chairman of Zhongguangxue Group?", "who"),
        ("When was the Xining conference held?", "when"),
        ("Where was the conference held?", "where"),
        ("Which universities took part?", "list"),
        ("Did any banks attend the Xining conference?", "yesno"),
        ("What is hard technology?", "what"),
        ("What is the fund size managed by the zone?", "number"),
        ("What was the total investment?", "number"),
        # the noun a which/what question asks for (rag/data/asked_nouns_en.txt), not only its first word
        ("On what date did the Lanzhou fair open?", "when"),
        ("At what time does the G1234 train leave Kunming?", "when"),
        ("Which port will get a new container terminal?", "where"),
        ("In which development zone of Wuxi is the base?", "where"),
        ("Which vice mayor of Jinan opened the expo?", "who"),
        ("Which Zhejiang University device won the award?", "what"),  # a capitalised name is not the noun asked
        ("Which company built the plant?", "what"),  # one organisation: its sentence, not a list
        ("Which cities host the branch contests?", "list"),
        ("大赛在哪些城市设立了分赛区？", "list"),  # plural places, as "which cities"
        ("大赛在哪个城市举办？", "where"),
        ("膨胀机是由哪几家单位共同研发的？", "list"),
        ("共有几家单位参与研发？", "number"),
        ("What three fields does the lab study?", "list"),
        ("What was the outstanding balance of green loans?", "number"),
        ("What was Ningbo Metro Line 3's average daily ridership?", "number"),  # a long name before the noun
        ("What is the official website through which firms register?", "what"),  # a later which is a relative
    ],
)
def test_question_kind(question, kind):
    assert detect_kind(question) == kind


def test_language_and_script():
    assert detect_language("西宁市长是谁？") == "zh-Hans"
    assert detect_language("國家硬科技創新示范區建設會議在哪裡舉辦？") == "zh-Hant"
    assert detect_language("Who is the mayor of Xining?") == "en"
    assert detect_language("Who is the chairman of 中光学集团?") == "en"


def test_normalize_empty_and_long():
    for bad in ("", "   ", "\n\t", "\x1b[0m"):
        with pytest.raises(InputError, match="empty"):
            normalize(bad)
    text, notes = normalize("西宁" * 5000)  # 10,000 characters
    assert len(text) == 500 and notes and "10,000" in notes[0]
    text, _ = normalize("  ＷＨＯ　is  the mayor？ ")  # full-width letters / ideographic space folded
    assert text == "WHO is the mayor？"


def test_analyze_long_question_is_cut_not_rejected():
    q = analyze("西宁对接会签了多少个项目？" + "啊" * 10_000)
    assert len(q.normalized) == 500 and q.kind == "number" and q.notes


def test_number_focus_names_the_counted_thing():
    assert number_focus("西宁对接会签了多少个项目")[:2] == ("个", "项目")
    assert number_focus("西宁对接会有几家金融机构参会")[:2] == ("家", "金融机构")
    assert number_focus("在管基金产品有多少支")[0] == "支"
    assert number_focus("西安居副省级城市第几位")[2] is True
    assert number_focus("新政策涵盖了几个方面的内容")[:2] == ("个", "方面")  # a stop word elsewhere, counted here
    # 多大 / 多长 ask for a figure too: the attribute before them is what is asked (an amount of money here)
    assert number_focus("这次博览会达成的合作，合同总额有多大")[1] == "合同总额"
    assert number_focus("新建的跨海大桥主桥有多长")[1] == "跨海大桥主桥"
    # a unit and 的 between the question word and the noun: the noun is what is asked (an amount of 政府补贴)
    assert number_focus("该区获得了多少亿元的政府补贴")[1] == "政府补贴"
    assert analyze("新政策涵盖了几个方面的内容？").counted == "方面"
    q = analyze("西宁对接会的主办方一共花了多少宣传费？")
    assert q.counted == "宣传费"


def test_counting_verb():
    from rag.question import counting_verb

    assert counting_verb("南阳站签了多少个项目") == "签"
    assert counting_verb("南阳站一共签订了几个项目") == "签订"
    assert counting_verb("创新港路演大会有多少个项目获得了投资") == ""  # 有 only links
    assert analyze("How many projects were signed?").verb == ""


def test_followup_chain_rewrites_from_history():
    h: list[tuple[str, str]] = []
    first = analyze("西宁对接会签了多少个项目？", h)
    assert not first.rewritten and first.topic == "西宁对接会"
    h.append(("西宁对接会签了多少个项目？", "共签署59个项目合作协议 [1]"))
    second = analyze("签约总资金呢？", h)
    assert second.rewritten and second.kind == "number"
    assert "西宁对接会" in second.standalone and "签约总资金" in second.standalone
    h.append(("签约总资金呢？", "签约总资金11280万元 [1]"))
    third = analyze("那南阳站签了几项？", h)  # has its own topic: stands alone, connective dropped
    assert third.standalone == "南阳站签了几项？"
    h.append(("那南阳站签了几项？", "8项 [1]"))
    assert condense("那西安呢？", h) == "西安签了几项？"  # entity substitution keeps the asked part


def test_a_followup_asking_another_attribute_keeps_the_place_and_a_full_one_stands_alone():
    h = [("截至今年6月底，合肥有效发明专利量有多少？", "5万件")]  # the topic is a time phrase; the place follows it
    assert analyze("每万人发明专利拥有量呢？", history=h).standalone == "截至今年6月底，合肥每万人发明专利拥有量有多少？"
    h.append(("每万人发明专利拥有量呢？", "30件"))
    assert analyze("那芜湖高新区截至2023年3月的有效发明专利量呢？", history=h).standalone == \
        "芜湖高新区截至2023年3月的有效发明专利量是多少？"  # names its own place and attribute
    h = [("合肥提出到2025年各类创新平台要达到多少家？", "1200家"), ("那2030年呢？", "1800家")]
    assert analyze("科技型企业呢？", history=h).standalone == "合肥提出到2030年科技型企业是多少？"  # the year swapped last
    # the counted thing after 多少个 is not swapped for an amount
    assert analyze("签约金额呢？", history=[("合肥对接会签约了多少个项目？", "12个")]).standalone == "合肥对接会签约金额是多少？"


def test_followup_pronoun_and_gradio_history():
    hist = [{"role": "user", "content": "西安高新区的研发投入占比是多少？"},
            {"role": "assistant", "content": "全社会的研发投入占比从6%提升到了8.5% [1]"}]
    assert condense("它聚集了多少研发人员？", hist) == "西安高新区聚集了多少研发人员？"
    assert condense("其在管基金产品有多少支？", hist).startswith("西安高新区")
    # a question with its own topic is left alone
    assert condense("创新港路演大会在哪一天召开？", hist) == "创新港路演大会在哪一天召开？"
    # no history: unchanged
    assert condense("签约总资金呢？", None) == "签约总资金呢？"
    # 那场 / 那个 (that …) go whole, not 那 alone
    assert condense("那场在武汉开的对接会签了多少个项目？", hist) == "在武汉开的对接会签了多少个项目？"


def test_pronoun_stands_for_the_whole_quoted_event_name():
    # the topic keeps a quoted name and what follows it: 它 is the competition, not the city that holds it
    h = [("杭州“西湖杯”智能制造创业大赛的总奖金是多少？", "800万元")]
    assert condense("它由哪个部门承办？", h) == "杭州“西湖杯”智能制造创业大赛由哪个部门承办？"
    h = [("第三届《智造未来》创新大赛吸引了多少个项目？", "300个")]
    assert condense("它在哪里举行？", h) == "第三届《智造未来》创新大赛在哪里举行？"


def test_which_noun_is_what_a_which_question_asks_a_name_of():
    from rag.question import which_endings

    assert analyze("这批票据由哪家银行担任主承销商？").which == "银行"
    assert analyze("列车从哪个车站始发？").which == "车站" and "站" in which_endings("车站")
    assert analyze("论坛由哪所高校承办？").which == "高校" and "大学" in which_endings("高校")  # listed in the data file
    assert analyze("哪个最大？").which == "" and analyze("哪位专家发言？").which == ""  # no noun; a person is a who
    # English: the noun after which/what, when the data file says what its names end in (capitalised words skipped)
    assert analyze("Which port will get a new bulk terminal?").which == "port" and which_endings("port") == ("港",)
    assert analyze("Which Chengdu University product is used?").which == ""


def test_english_followups():
    h = [("How many projects were signed in Xining?", "59")]
    assert condense("What about Nanyang?", h) == "How many projects were signed in Nanyang?"
    assert "Xining" in condense("Who organised it?", h)
    line = [("How long is Wuhan Metro Line 7?", "47.9 km")]
    assert condense("How many stations does it have?", line) == "How many stations does Wuhan Metro Line 7 have?"
    assert condense("And what was its ridership in May?", line) == "What was Wuhan Metro Line 7's ridership in May?"
    chip = [("Who led the Fudan team that built the 30-qubit photonic chip?", "张三")]
    assert "Fudan" in condense("Which journal published the study?", chip)  # names nothing itself: about the last one
    assert condense("Which journal did Peking University publish in?", chip) == "Which journal did Peking University publish in?"


def test_english_words_reach_chinese_through_cedict_synonyms_and_irregular_forms():
    from rag.question import _en_lookup

    assert _en_lookup("enterprises")[0] == "企业"  # "company; firm; enterprise" is one CC-CEDICT sense
    assert "举行" in _en_lookup("held")[:3]  # held -> hold
    assert "产品" in _en_lookup("products")[:3]
    assert "港口" in _en_lookup("harbour") and "中心" in _en_lookup("centres")  # British spellings
    assert "组织" in _en_lookup("organisations")
    assert not set(_en_lookup("four")) & set(_en_lookup("for"))  # four is not for


def test_cedict_surnames():
    from rag.question import cedict

    names = cedict().surnames
    assert {"何", "杨", "王", "欧阳"} <= names and "表示" not in names


def test_control_characters_are_stripped_before_matching():
    text, _ = normalize("\x1b[31m西宁对接会签了多少个项目？\x1b[0m")
    assert text == "西宁对接会签了多少个项目？"
    assert normalize("西宁\x07对接会\x1b]0;title\x07签了多少个项目？")[0] == "西宁对接会签了多少个项目？"
    assert analyze("\x1b[1m西宁对接会签了多少个项目？").terms == analyze("西宁对接会签了多少个项目？").terms


@pytest.mark.parametrize("bad", ["？？", "😀😀😀", "!!!…", "👍 ❤️"])
def test_punctuation_or_emoji_only_question_has_no_words(bad):
    with pytest.raises(InputError, match="no words to search for"):
        normalize(bad)
