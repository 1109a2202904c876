"""Chinese script and width helpers: traditional <-> simplified (OpenCC), script detection, full/half-width folding."""
from __future__ import annotations

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


def han_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")


def detect_script(text: str) -> str:
    """'traditional' if converting to simplified changes a noticeable share of the Han characters, else 'simplified'.

    Text with no Han characters is reported as 'simplified' (callers check `han_count` for language).
    """
    n = han_count(text)
    if n == 0:
        return "simplified"
    simp = to_simplified(text)
    changed = sum(1 for a, b in zip(text, simp) if a != b)
    # a single shared character (e.g. 著, 乾) can flip; require a few, relative to length
    return "traditional" if changed >= max(1, round(0.02 * n)) and changed / n >= 0.01 else "simplified"


def fold_width(text: str) -> str:
    """Full-width ASCII letters, digits and the ideographic space -> half-width (NFKC on those only).

    Chinese punctuation (，。：；！？) is kept: it marks sentence boundaries and is what users expect to see.
    """
    out = []
    for ch in text:
        o = ord(ch)
        if 0xFF10 <= o <= 0xFF19 or 0xFF21 <= o <= 0xFF3A or 0xFF41 <= o <= 0xFF5A or ch in "％＋－．／＠＃＆":
            out.append(unicodedata.normalize("NFKC", ch))
        elif o == 0x3000:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)
