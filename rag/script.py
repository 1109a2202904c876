"""Chinese script and width helpers: traditional <-> simplified (OpenCC), script detection, full/half-width folding."""
from __future__ import annotations

import operator
import re
import unicodedata
from functools import lru_cache

import opencc


@lru_cache(maxsize=None)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Traditional -> simplified (OpenCC `t2s`); simplified text passes through unchanged."""
    return _converter("t2s").convert(text) if text else text


def to_traditional(text: str) -> str:
    """Simplified -> traditional (OpenCC `s2t`), for answering a traditional-script question in its own script."""
    return _converter("s2t").convert(text) if text else text


_HAN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")


def han_count(text: str) -> int:
    return len(_HAN.findall(text))


def detect_script(text: str, simplified: str | None = None) -> str:
    """'traditional' if converting to simplified changes a noticeable share of the Han characters, else 'simplified'.

    Text with no Han characters is reported as 'simplified' (callers check `han_count` for language).
    `simplified` may pass `to_simplified(text)` when the caller has it already (saves a conversion).
    """
    simp = to_simplified(text) if simplified is None else simplified
    if simp == text:
        return "simplified"  # nothing to convert (also covers text without Han characters)
    n = han_count(text)
    if n == 0:
        return "simplified"
    changed = sum(map(operator.ne, text, simp))
    # a single shared character (e.g. 著, 乾) can flip; require a few, relative to length
    return "traditional" if changed >= max(1, round(0.02 * n)) and changed / n >= 0.01 else "simplified"


def fold_width(text: str) -> str:
    """Full-width ASCII letters, digits and the ideographic space -> half-width (NFKC on those only).

    Chinese punctuation (，。：；！？) is kept: it marks sentence boundaries and is what users expect to see.
    """
    return text.translate(_FOLD)


_FOLD = {o: unicodedata.normalize("NFKC", chr(o))
         for o in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B), *map(ord, "％＋－．／＠＃＆")]}
_FOLD[0x3000] = " "
