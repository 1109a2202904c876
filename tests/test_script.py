"""rag.script: script conversion, width folding, Chinese numerals."""
from rag.script import cn_numeral, detect_script, fold_width, to_simplified


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
