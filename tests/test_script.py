"""rag.script: script conversion, width folding, Chinese numerals."""
from rag.script import cn_numeral, detect_script, fold_width, measure_words, to_simplified


def test_cn_numeral_reads_counts_and_digit_strings():
    assert cn_numeral("五") == 5
    assert cn_numeral("十二") == 12
    assert cn_numeral("二十五") == 25
    assert cn_numeral("一百零八") == 108
    assert cn_numeral("三千") == 3000
    assert cn_numeral("二〇二四") == 2024  # a year read digit by digit


def test_cn_numeral_rejects_what_is_not_a_numeral():
    assert cn_numeral("") is None
    assert cn_numeral("五个") is None
    assert cn_numeral("12") is None


def test_fold_width_and_script():
    assert fold_width("１２３％ＡＢ") == "123%AB"
    assert fold_width("你好，世界。") == "你好，世界。"  # Chinese punctuation kept
    assert to_simplified("科技成果轉化") == "科技成果转化"
    assert detect_script("科技成果轉化對接會在西寧舉行") == "traditional"
    assert detect_script("科技成果转化对接会在西宁举行") == "simplified"


def test_measure_words_come_from_one_data_file_by_kind():
    w = measure_words()
    assert {"个", "项", "家", "份", "户", "株"} <= w.count and {"元", "倍", "吨"} <= w.unit and {"年", "月", "日"} <= w.date
    assert not (w.count & w.unit) and not (w.count & w.date) and not (w.unit & w.date)
    assert w.generic <= w.count and w.kind_of_thing <= w.count and "个" in w.generic and "家" in w.kind_of_thing


def test_names_time_takes_dates_times_and_relative_periods_not_vague_words():
    from rag.script import names_time

    for text in ("8月10日", "17时22分", "2023年底量产", "今年12月", "三季度", "當天", "on August 10", "in 2023", "22:30", "9：05"):
        assert names_time(text), text
    for text in ("海口近日举行的大会", "近期", "59个项目", "Bu Shijie", "the 20th", "1:1"):
        assert not names_time(text), text


def test_figure_roles_reads_what_a_figure_counts_over_and_not_units():
    from rag.script import figure_roles
    assert figure_roles("日均客流8.2万人次") == {"average": "日均"}
    assert figure_roles("累计运送乘客") == {"total": "累计"}
    assert figure_roles("企业从80家增加到了230家") == {"level": "增加到"}  # what it rose to, not a change
    assert figure_roles("参观人数达10万人") == {}  # 万人 after a numeral is a unit, not a per-10,000 rate
    assert figure_roles("每万人发明专利拥有量") == {"average": "每万人"}
    assert figure_roles("How many passengers per day on average") == {"average": "per day"}
    assert figure_roles("the newsroom is renewed") == {}  # English forms match whole words only
