"""The chat's interface texts (ui/texts.py): both languages complete, values filled in, unknown languages fall back."""
from __future__ import annotations

import re

from ui.texts import LANGS, TEXTS, tr


def test_both_languages_have_every_text_with_the_same_placeholders() -> None:
    assert set(LANGS) == set(TEXTS)
    keys = set(TEXTS["zh"])
    for lang in LANGS:
        assert set(TEXTS[lang]) == keys, lang
    for key in keys:
        zh, en = (set(re.findall(r"\{(\w+)", TEXTS[lang][key])) for lang in ("zh", "en"))
        assert zh == en, key
    assert not [k for k in keys if re.search(r"[\u4e00-\u9fff]", TEXTS["en"][k])]  # no Chinese in the English texts


def test_tr_fills_values_and_falls_back_to_chinese() -> None:
    assert tr("en", "undated", n=3, total=5) == "3 of 5 articles have no date: a date filter leaves them out."
    assert tr("fr", "ask") == tr("zh", "ask") == "提问"
    assert tr("zh", "confidence", c=0.754) == "置信度 0.75"
