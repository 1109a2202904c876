"""rag.asked: does an answer answer what was asked — on text that is not from the bundled or dev articles."""
from __future__ import annotations

from rag.asked import unasked
from rag.evidence import gather
from rag.question import analyze
from rag.reader import ExtractiveReader
from rag.records import Chunk, Hit
from rag.script import to_simplified
from rag.settings import Settings

CONTEST = ("9月5日，第三届“智汇杯”创新大赛新闻发布会在合肥举行。大赛设初赛、复赛和决赛三个环节，"
           "合肥市科技局副局长王明介绍，大赛决赛将于11月在合肥滨湖会展中心举行。")


def _check(question: str, answer: str, evidence: str = CONTEST, title: str = "“智汇杯”创新大赛发布会举行") -> str:
    return unasked(analyze(question), answer, evidence, title)


def test_each_check_names_what_the_answer_lacks():
    assert "no date or time" in _check("“智汇杯”创新大赛决赛是哪一天举行的？", "合肥滨湖会展中心")
    assert "决赛" in _check("“智汇杯”创新大赛的决赛在哪一天举行？", "9月5日")  # the press conference's date
    assert "局长" in _check("合肥市科技局局长是谁？", "王明")  # only the deputy is named
    assert "2030" in _check("合肥到2025年创新平台达到多少家？", "1800家", "到2025年创新平台1200家。2030年，创新平台1800家。")
    assert "count" in _check("大赛设了几个环节？", "增长12%")
    assert "only repeats" in _check("大赛决赛呢？", "决赛")
    dateline = "新华社合肥9月6日电（记者王明）第三届“智汇杯”创新大赛近日在合肥举行。"
    assert "dateline" in _check("“智汇杯”创新大赛是哪一天举行的？", "9月6日", dateline)  # the day the report was filed
    assert _check("“智汇杯”创新大赛是哪一天举行的？", "9月6日", dateline.replace("近日", "6日")) == ""
    assert "only a date" in _check("“智汇杯”创新大赛的决赛在哪个场馆举行？", "11月")
    assert "only a date" in _check("合肥“智汇杯”创新大赛的决赛在哪个场馆举行？", "将于11月在合肥举行")  # 合肥 is asked's own
    assert "amount of money" not in _check("大赛的报名费率是多少？", "3%", "大赛的报名费率为3%。")
    assert "unit of the asked measure" in _check("大赛的报名费率是多少？", "500万元", "大赛总奖金500万元。")  # 率: a rate
    assert "only a count" in _check("大赛签约金额最大的项目是哪个？", "现场签约项目11个", "现场签约项目11个，签约金额8亿元。")


def test_answers_to_what_was_asked_pass():
    assert _check("“智汇杯”创新大赛的决赛在什么时候举行？", "11月") == ""
    assert _check("合肥市科技局副局长是谁？", "王明") == ""
    assert _check("合肥到2025年创新平台达到多少家？", "1200家", "到2025年创新平台1200家。2030年，创新平台1800家。") == ""
    assert _check("大赛设了几个环节？", "三个环节") == ""
    assert _check("“智汇杯”创新大赛的决赛在哪个场馆举行？", "合肥滨湖会展中心") == ""
    assert _check("合肥“智汇杯”创新大赛的决赛由哪家单位承办？", "合肥市科技局") == ""  # no date: a name of asked words
    assert _check("大赛的报名费率是多少？", "3%", "大赛的报名费率为3%。") == ""
    assert _check("大赛在哪些城市设立了分赛区？", "北京、上海等五座城市", "大赛在北京、上海等五座城市设立了分赛区。") == ""
    assert _check("“智汇杯”大赛有没有决赛？", "是的，设决赛") == ""  # yes/no answers may repeat the question
    assert _check("“智汇杯”大赛的报名人数是增加还是减少了？", "减少") == ""  # so may the option an either-or picks


def _extractive(text: str, title: str):
    """The extractive reader over one article (`text`), any answerability: a question -> its Answer."""
    ch = Chunk(chunk_id="c:0", doc_id="c", text=text, text_simplified=to_simplified(text), start=0, end=len(text),
               title=title, date="2023-09-06")
    hits = [Hit(chunk=ch, score=1.0, rank=0, scores={"dense": 0.85})]
    reader = ExtractiveReader(Settings(answerable_threshold=0.0))
    return lambda question: reader.read(gather(analyze(question), hits, lambda d: ch.title + "\n" + ch.text_simplified))


def test_the_extractive_reader_declines_an_answer_about_another_event():
    read = _extractive("9月5日，第三届“智汇杯”创新大赛新闻发布会在合肥举行。大赛设初赛、复赛和决赛三个环节。",  # no final's date
                       "“智汇杯”创新大赛发布会举行")
    assert "9月5日" in read("“智汇杯”创新大赛新闻发布会是哪一天举行的？").text  # the press conference's own date
    ans = read("“智汇杯”创新大赛的决赛在哪一天举行？")
    assert not ans.found and any("决赛" in n for n in ans.notes)  # not the press conference's date


def test_a_figure_for_another_part_of_the_year_is_no_answer():
    """全年 asked, 上半年 stated before the figure: declined; the part asked (第二季度, read as 第2季度) is an answer."""
    half = "长沙市上半年完成技术合同成交额114.34亿元，同比增长20%。"
    assert "上半年" in _check("长沙市2022年全年技术合同成交额是多少亿元？", "114.34亿元[1]", half, "长沙")
    assert "上半年" in _check("How much was Changsha's technology contract turnover in the full year 2022?",
                           "11.434 billion yuan (114.34亿元) [1]", half, "长沙")
    assert _check("长沙市上半年技术合同成交额是多少亿元？", "114.34亿元[1]", half, "长沙") == ""
    quarter = "某公司上半年净亏损52亿元，其中第二季度净亏损23亿元。"
    assert "上半年" in _check("某公司第二季度净亏损多少？", "52亿元[1]", quarter, "x")
    assert _check("某公司第二季度净亏损多少？", "23亿元[1]", quarter, "x") == ""
    assert _check("某公司净亏损多少？", "52亿元[1]", quarter, "x") == ""  # no part of the year asked


def test_a_figure_that_counts_over_something_else_is_no_answer():
    """rag/data/figure_roles.txt: 累计 asked, 日均 stated; 平均每天 asked, a total stated; 涨了多少 asked, the level stated."""
    metro = "地铁5号线开通首月，日均客流8.2万人次，累计运送乘客254万人次。"
    assert "日均" in _check("地铁5号线首月累计载客多少人次？", "8.2万人次[1]", metro, "x")
    assert _check("地铁5号线首月累计载客多少人次？", "254万人次[1]", metro, "x") == ""
    assert "per day" in _check("How many passengers did Line 5 carry per day in its first month?", "2.54 million (254万人次) [1]",
                               metro, "x")
    assert _check("地铁5号线首月平均每天载客多少人次？", "8.2万人次[1]", metro, "x") == ""
    loans = "全省绿色贷款余额1.8万亿元，同比增长23.5%。"
    assert "涨" in _check("全省绿色贷款余额涨了多少？", "1.8万亿元[1]", loans, "x")
    assert _check("全省绿色贷款余额涨了多少？", "23.5%[1]", loans, "x") == ""
    assert _check("全省绿色贷款余额是多少？", "1.8万亿元[1]", loans, "x") == ""  # no role asked: any figure may answer
    rules = "新版办法共5章40条，其中有12条属于新增。"  # the role may follow the figure in its clause
    assert _check("新版办法里新增的条款有几条？", "12条[1]", rules, "x") == ""
    grew = "园区企业从80家增加到了230家。"  # what a figure rose to is not a rise
    assert _check("园区企业增加到了多少家？", "230家[1]", grew, "x") == ""
    assert "started" in _check("园区企业增加到了多少家？", "80家[1]", grew, "x")  # where it rose from


def test_a_figure_of_another_item_of_a_respectively_list_is_swapped_for_the_one_asked():
    """分别: the items before it are told apart by their ends, the items after it by their starts."""
    from rag.asked import respective
    shares = "一季度，全省享受减免的企业中，小微企业所占的户数和金额分别为88.5%和41.2%。"
    assert respective(analyze("享受减免的小微企业金额占比是多少？"), "88.5%[1]", shares) == ("88.5%", "41.2%")
    assert respective(analyze("享受减免的小微企业户数占比是多少？"), "88.5%[1]", shares) is None
    emissions = "目前钢铁行业分别占我国和全球工业碳排放总量的15%和7%。"
    assert respective(analyze("钢铁行业占全球工业碳排放总量的多少？"), "15%[1]", emissions) == ("15%", "7%")
    assert respective(analyze("钢铁行业占我国工业碳排放总量的多少？"), "15%[1]", emissions) is None
    cities = "杭州市、宁波市分别有126家、87家企业入选。"
    assert respective(analyze("宁波市有多少家企业入选？"), "126家[1]", cities) == ("126家", "87家")
    assert respective(analyze("入选企业有多少家？"), "126家[1]", cities) is None  # no item named: nothing to swap


def test_a_figure_from_a_clause_about_something_else_gives_way_to_the_clause_asked_about():
    from rag.asked import better_clause
    trains = "K1234次列车全程运行5小时12分，8时05分从长沙南站始发，8时40分经停株洲西站，到达桂林站时间为13时17分。"
    assert better_clause(analyze("K1234次列车几点从长沙南站始发？"), "8时40分[1]", trains, 0.3) == ("8时40分", "8时05分")
    assert better_clause(analyze("K1234次列车几点从长沙南站始发？"), "8时05分[1]", trains, 0.3) is None
    loans = "截至6月末，制造业中长期贷款余额3.1万亿元，同比增长30.2%；普惠小微企业贷款余额1.7万亿元，同比增长22.4%。"
    assert better_clause(analyze("普惠小微企业贷款余额是多少？"), "3.1万亿元[1]", loans, 0.3) == ("3.1万亿元", "1.7万亿元")
    assert better_clause(analyze("贷款余额是多少？"), "3.1万亿元[1]", loans, 0.3) is None  # no clause says more
    parts = "自2019年以来，全省获批上市的专利产品共350个，其中滨江区有41个。"
    assert better_clause(analyze("自2019年以来滨江区有多少个专利产品获批上市？"), "41个[1]", parts, 0.3) is None  # 滨江区 stays
    years = "基地连续8年获评最高等级。2022年，基地产值增长12%，考评等级连续位居全省第一。"
    assert better_clause(analyze("基地在考评中已经连续多少年拿到最高等级？"), "连续8年[1]", years, 0.3) is None  # no year picked


def test_a_figure_of_another_year_period_or_role_gives_way_only_to_one_stated_for_what_was_asked():
    from rag.asked import other_figure
    plan = [("到2027年，全市省级以上孵化器达到80家，众创空间120家。到2035年，省级以上孵化器达到150家。", "孵化器规划")]
    q = analyze("到2027年全市省级以上孵化器要达到多少家？")
    assert other_figure(q, "150家[1]", plan, "year") == ("150家", "全市省级以上孵化器达到80家", 0)
    assert other_figure(q, "150家[1]", plan, "period") is None  # no part of the year asked: nothing stated for it
    vague = [("全市孵化器三年共达到80家。到2035年，省级以上孵化器达到150家。", "孵化器规划")]
    assert other_figure(q, "150家[1]", vague, "year") is None  # 80家 is not stated for 2027
    rates = [("去年全市专利授权量1.2万件，同比增长35%；近五年，专利授权量年均增长18%。", "专利")]
    q = analyze("近五年全市专利授权量平均每年增长多少？")
    assert other_figure(q, "35%[1]", rates, "role") == ("35%", "专利授权量年均增长18%", 0)
    two = [("近五年，发明专利授权量年均增长18%，实用新型专利授权量年均增长12%。", "专利")]
    assert other_figure(q, "35%[1]", two, "role") is None  # two figures say as much: no pick
    assert other_figure(analyze("How much did patents grow per year on average?"), "35%[1]", rates, "role") is None


def test_a_count_names_what_it_counts_by_the_counted_noun_s_head():
    fairs = "大赛已在长三角9个地市举办15场对接活动。"
    assert _check("大赛已经在多少个城市举办过？", "9个地市", fairs) == ""  # a 地市 is a 市
    assert "城市" in _check("大赛已经在多少个城市举办过？", "15场", fairs)  # 15 counts 活动, beside the 地市


def test_the_extractive_reader_declines_a_count_of_another_thing():
    read = _extractive("8月5日，沪苏浙皖劳务协作招聘会在南京举行，来自4省市的200余家企业现场提供就业岗位11244个。",
                       "沪苏浙皖劳务协作招聘会举行")
    assert "11244" in read("沪苏浙皖劳务协作招聘会现场提供了多少个就业岗位？").text
    ans = read("沪苏浙皖劳务协作招聘会现场有多少名求职者达成了就业意向？")
    assert not ans.found and any("求职者" in n for n in ans.notes)


def test_a_count_of_another_thing_gives_way_to_the_count_of_the_thing_asked():
    from rag.asked import other_figure
    fairs = [("大赛已在长三角9个地市举办15场对接活动，吸引企业300余家。", "对接活动")]
    q = analyze("大赛已经在多少个城市举办过？")
    assert other_figure(q, "15场[1]", fairs, "counted") == ("15场", "大赛已在长三角9个地市举办15场对接活动", 0)
    assert other_figure(q, "15场[1]", [("大赛已举办15场对接活动，吸引企业300余家。", "对接活动")], "counted") is None


def test_a_figure_stated_for_the_opposite_of_what_was_asked_is_no_answer():
    hotels = "二季度，某连锁酒店集团新开业酒店45家，关闭门店3家；上半年出口增长12%。"
    assert "开业" in _check("该集团二季度新关闭了多少家酒店？", "新开业酒店45家", "二季度，该集团新开业酒店45家。")
    assert _check("该集团二季度关闭了多少家门店？", "关闭门店3家", hotels) == ""
    assert "出口" in _check("上半年进口增长了多少？", "12%", hotels)
    assert _check("上半年出口增长了多少？", "12%", hotels) == ""
    assert _check("上半年进出口是增长还是下降了？", "增长12%", hotels) == ""  # an either-or question picks one


def test_a_question_asking_for_names_is_not_answered_without_one():
    lawsuit = "某市科技局起诉两家企业，两家企业分别于2018年、2019年承担科技发展计划项目，分别为华兴材料公司和启明电子公司。"
    assert "name" in _check("某市科技局起诉的两家企业分别叫什么名字？", "两家企业分别于2018年、2019年承担科技发展计划项目",
                            lawsuit)
    assert _check("某市科技局起诉的两家企业分别叫什么名字？", "华兴材料公司和启明电子公司", lawsuit) == ""
    assert _check("该产品的名称是什么？", "“呼吸式捕蚊机”", "团队研发的“呼吸式捕蚊机”进入中试。") == ""


def test_a_kind_of_money_asked_is_said_of_the_figure():
    """一等奖奖金 asked: the total prize (总奖金高达800万元) is no answer; a sentence saying the same figure is that money
    (another sentence may state it first: 盈利约20亿元 before 股东应占利润…约20亿元) is."""
    prize = "杭州“西湖杯”创业大赛由杭州市政府主办，总奖金高达800万元。一等奖选手可获得奖金50万元。"
    assert "一等奖奖金" in _check("杭州“西湖杯”创业大赛的一等奖奖金是多少？", "800万元", prize)
    assert _check("杭州“西湖杯”创业大赛的一等奖奖金是多少？", "50万元", prize) == ""
    report = "某地铁公司上半年盈利约20亿元。公司总收入约120亿元，股东应占利润约20亿元。"
    assert _check("某地铁公司上半年股东应占利润是多少？", "约20亿元", report) == ""
