"""Chinese script and width helpers: traditional <-> simplified (OpenCC), script detection, full/half-width folding,
Chinese numerals, the measure words that follow a figure (`rag/data/measure_words.txt`) and what makes a phrase a
date or time (`rag/data/time_words.txt`)."""
from __future__ import annotations

import operator
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

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


_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}


def cn_numeral(text: str) -> int | None:
    """A Chinese numeral below 10,000 as an int (五 -> 5, 十二 -> 12, 一百零八 -> 108; digit by digit: 二〇二四 -> 2024);
    None if it is not one."""
    if not text:
        return None
    if all(ch in _CN_DIGIT for ch in text):
        return int("".join(str(_CN_DIGIT[ch]) for ch in text))
    total, digit = 0, None
    for ch in text:
        if ch in _CN_DIGIT:
            digit = _CN_DIGIT[ch]
        elif ch in _CN_UNIT:
            total += (1 if digit is None else digit) * _CN_UNIT[ch]
            digit = None
        else:
            return None
    return total + (digit or 0)


DATA_DIR = Path(__file__).resolve().parent / "data"
MEASURE_WORDS_PATH = DATA_DIR / "measure_words.txt"


@lru_cache(maxsize=None)
def labelled_words(name: str) -> dict[str, tuple[str, ...]]:
    """label -> words of a `word label` list in `rag/data/` (the label is the line's last field, so a word may hold a
    space: "prize money en"; # starts a comment)."""
    out: dict[str, list[str]] = {}
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].rsplit(None, 1)
        if len(parts) == 2:
            out.setdefault(parts[1], []).append(parts[0])
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=None)
def keyed_lists(name: str) -> dict[str, tuple[str, ...]]:
    """first word -> the other words of each `key word...` line of a list in `rag/data/` (# starts a comment)."""
    out: dict[str, tuple[str, ...]] = {}
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            out[words[0]] = tuple(words[1:])
    return out


def alternation(words: Sequence[str]) -> str:
    """A regex alternation of `words`, escaped, longest first (so 季度 is tried before 季)."""
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


@lru_cache(maxsize=None)
def word_list(name: str) -> frozenset[str]:
    """The words of a one-word-per-line list in `rag/data/` (lines starting with # are comments)."""
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


@dataclass(frozen=True)
class MeasureWords:
    """The measure words of `rag/data/measure_words.txt`, by kind (single characters; currencies are words)."""

    count: frozenset[str]  # a count of things: 个, 项, 家, 份
    unit: frozenset[str]  # a unit of measure: 倍, 元, 吨
    date: frozenset[str]  # a calendar unit: 年, 月, 日, 号
    generic: frozenset[str]  # counts too generic to say what was counted: 个, 种, 次
    kind_of_thing: frozenset[str]  # counts that say what kind of thing was counted: 家 (organisations), 名 (people)
    currency: frozenset[str] = frozenset()  # currencies other than 元 (words): 美元, 港元

    @property
    def all(self) -> frozenset[str]:
        """The single-character measure words (counts, units, calendar units)."""
        return self.count | self.unit | self.date


@lru_cache(maxsize=1)
def measure_words() -> MeasureWords:
    kinds = ("count", "unit", "date", "generic", "class", "currency")
    sets: dict[str, set[str]] = {k: set() for k in kinds}
    for line in MEASURE_WORDS_PATH.read_text(encoding="utf-8").splitlines():
        word, *labels = line.split("#", 1)[0].split() or [""]
        for label in labels:
            sets[label].add(word)
    return MeasureWords(*(frozenset(sets[k]) for k in kinds))


@lru_cache(maxsize=1)
def time_pattern() -> re.Pattern[str]:
    """A date or time expression (`rag/data/time_words.txt`; a year alone counts)."""
    words = labelled_words("time_words.txt")
    return re.compile(r"(?:\d|[零〇一二三四五六七八九十两])\s*(?:" + alternation(words["after"]) + ")|"
                      + alternation(words["word"]) + r"|(?<!\d)(?:19|20)\d\d(?!\d)"  # a year alone (in 2023)
                      + r"|(?<!\d)[0-2]?\d[:：][0-5]\d(?!\d)", re.I)  # a clock time (22:30)


@lru_cache(maxsize=1)
def _figure_roles() -> tuple[re.Pattern[str], dict[str, str]]:
    """The forms of `rag/data/figure_roles.txt` as one pattern (longest first; English forms as whole words)."""
    label = {w.lower(): lab for lab, ws in labelled_words("figure_roles.txt").items() for w in ws}
    forms = sorted(label, key=len, reverse=True)
    return re.compile("|".join(rf"(?<![a-z]){re.escape(w)}(?![a-z])" if w.isascii() else re.escape(w)
                               for w in forms), re.I), label


def figure_roles(text: str) -> dict[str, str]:
    """What the figures `text` speaks of count over (`rag/data/figure_roles.txt`): role -> the form written (累计 ->
    total, 日均 -> average, 新增 -> new, 增长 -> change, 增长到 -> level: what it rose or fell to, no change). A form
    right after a numeral is a unit (10万人次)."""
    pattern, label = _figure_roles()
    out: dict[str, str] = {}
    for m in pattern.finditer(text):
        role = label[m.group().lower()]
        if m.start() and re.match(r"[\d零〇一二三四五六七八九十百千两.少几]", text[m.start() - 1]):
            continue  # after a numeral (or 多少, 几) it is a unit (10万人次, 3天), not what a figure counts over
        out.setdefault(role, m.group())
    return out


def names_time(text: str) -> bool:
    """Whether the text states a date or time (8月10日, 17时22分, 2023年底, 今年, August 10, 2023): what a "when"
    answer must hold."""
    return bool(time_pattern().search(to_simplified(fold_width(text))))
