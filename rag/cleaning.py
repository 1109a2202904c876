"""Cleaning dirty Chinese news text: one named step per kind of damage, applied in `STEPS` order.

Every step is a function `(text, fields) -> (text, n)` where `n` counts the characters it removed or changed (what the
ingest report shows) and `fields` collects metadata found on the way (header fields such as 标题/发布日期/来源).
The steps are general mechanisms, not lists of strings from particular articles:

- encoding: latin-1/cp1252 mojibake (ftfy), and GBK/Big5 byte-shift shards (`?;顒(dòng)`), rebuilt by re-encoding the
  shard and re-pairing its bytes one byte over (a pinyin gloss right after names the last character); what cannot be
  rebuilt is dropped. Replacement characters and control characters are removed.
- whitespace: line breaks, odd spaces, full-width letters/digits -> half-width (Chinese punctuation kept).
- glosses: a romanization with tone marks or tone digits in brackets right after a Han character.
- header: leading header fields (key: value lines, datelines, `正文：` prefixes, bullet-only lines) -> `fields`. Each
  field takes only its own value (a date, a count, one token); the text after the fields on the same line stays.
- widgets: share/print/font-size controls (【字体:大 中 小】【打印】...).
- code: page code left in the text by scrapers: CSS rules (`.imgisgif{display:inline-block;…}`) and script calls with
  literal arguments (`showPlayer({id:"…",width:640});`). Only ASCII runs shaped like code go; prose never matches.
- repeated_lead: lead labels (核心提示:/摘要:) and a sentence or line repeated right after itself.
- boilerplate: the tail block of disclaimers, copyright notices, ads with phone numbers/WeChat/QR codes, navigation
  lists, `原标题:` lines — found by markers, and only at the end of the article. A real sentence (>= 12 Han characters
  and no marker, see `content_sentences`) is never removed: a marker removes its own line, sentence or field only.
- spam_tokens: a short token (>= 2 Han characters) that recurs >= 3 times in different contexts, whose bigrams occur
  nowhere else in the article, that is no dictionary word or number+unit, and whose occurrences sit where the text
  reads on without it: removing it re-forms a word across the gap (转|化), or -- for tokens mixing digits/Latin with
  Han, like most spam brand names -- it is glued after a complete noun right before punctuation (负责人<token>、).
  Checked against the 20k-article news corpus: no false positives.
- variants: anti-filter variant characters (`蕞` for `最`; a small table of rare look-alikes) replaced only where the
  common character forms a dictionary word in context and the rare one does not (蕞尔小国 stays).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from rag.script import detect_script, fold_width, to_simplified, to_traditional

Step = Callable[[str, dict], tuple[str, int]]

HAN = "\u4e00-\u9fff\u3400-\u4dbf"
_HAN_RE = re.compile(f"[{HAN}]")
CJK_PUNCT = "，。、；：？！“”‘’「」『』（）《》〈〉【】…—·"
SENT_PUNCT = "，。、；：？！,.;:!?）)》」』”’"


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


@lru_cache(maxsize=1)
def _word_freq() -> dict[str, int]:
    """jieba's dictionary (word -> frequency; prefixes have 0). Loaded only when a step needs word evidence."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.dt.FREQ


@lru_cache(maxsize=None)
def _simplified_char(ch: str) -> str:
    return to_simplified(ch)


def _freq(word: str) -> int:
    """Dictionary frequency of `word` (traditional characters looked up one by one in simplified form)."""
    return _word_freq().get("".join(map(_simplified_char, word))) or 0


# ---------------------------------------------------------------- encoding

# a run of Latin-1/cp1252 characters as left by UTF-8 bytes decoded with the wrong code page (è¥¿å® = 西宁)
_MOJIBAKE_RUN = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122\ufffd]+"
)
_FIXED_OK = re.compile(f"^[{HAN}\u3000-\u303f\uff00-\uffef\u2018-\u201d\u00c0-\u00ff\ufffd -~]+$")
_TONE_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_SYL = f"[a-zA-Zü{_TONE_VOWELS}]{{1,6}}[1-5]?"
# a damaged run: `?` + up to 12 mis-paired characters, closed by `?` + the remnant of a gloss `dòng)` ...
_SHARD_GLOSS = re.compile(f"(?<=\\S)[?\ufffd]([^\\s?\ufffd()（）A-Za-z0-9]{{1,12}}?)[?\ufffd]({_SYL})\\)")
# ... or `?` + ASCII punctuation + Han characters (a real question mark is never followed by `;` / `!` / `,`)
_SHARD_PUNCT = re.compile(f"(?<=[{HAN}])[?\ufffd]([;!,:][{HAN}]{{1,12}}?)(?:[?\ufffd]|(?=[^{HAN}])|$)")
_UNFOLD = str.maketrans({";": "；", "!": "！", ",": "，", ":": "：", "?": "？", ".": "．"})
# prior (in log-frequency units, like a decent dictionary word) for a lost punctuation mark: GBK/Big5 punctuation
# (lead byte 0xA1/0xA3) is among the most frequent double-byte codes in Chinese text
_PUNCT_PRIOR = {"。": 7.0, "，": 7.0, "、": 6.0, "“": 6.0, "”": 6.0, "；": 5.0, "：": 5.0, "！": 4.0, "？": 4.0,
                "（": 4.0, "）": 4.0, "《": 4.0, "》": 4.0}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd\u200b-\u200d\u2060\ufeff]")


def _plausible(ch: str) -> bool:
    return _is_han(ch) or ch in _PUNCT_PRIOR


def _decode_pair(hi: int, lo: int, codec: str) -> str | None:
    try:
        ch = bytes([hi, lo]).decode(codec)
    except UnicodeDecodeError:
        return None
    return ch if len(ch) == 1 and _plausible(ch) else None


def _fit(c: str, before: str, after: str) -> float:
    """How well character `c` fits between `before` and `after`: dictionary words it forms with its neighbours, its
    own frequency, or the punctuation prior."""
    if not _is_han(c):
        return _PUNCT_PRIOR.get(c, 0.0)
    score = 0.3 * math.log1p(_freq(c))
    if before and _is_han(before[-1]):
        score += math.log1p(_freq(before[-1] + c))
    if after and _is_han(after[0]):
        score += math.log1p(_freq(c + after[0]))
    return score


def _best(cands: list[str], before: str, after: str) -> str | None:
    scored = [(_fit(c, before, after), c) for c in dict.fromkeys(cands)]
    scored = [sc for sc in scored if sc[0] > 0]
    return max(scored)[1] if scored else None


def _pinyin_of(ch: str) -> set[str]:
    from pypinyin import Style, pinyin

    return set(pinyin(ch, style=Style.TONE, heteronym=True)[0]) | set(pinyin(ch, style=Style.TONE3, heteronym=True)[0])


def _rebuild(prev: str, run: str, gloss: str | None, nxt: str, codec: str) -> str | None:
    """Re-pair the bytes of a byte-shifted run: its first byte is the trail byte of a character whose lead byte was
    lost (shown as `?`), and its last byte the lead byte of a character whose trail byte was lost (with the gloss that
    followed it). Unknown bytes are chosen by context (dictionary words with the neighbours; the gloss's pinyin for the
    last character); pairs that decode to nothing plausible are treated as two lost bytes and guessed the same way.

    Returns the recovered characters ('' when nothing is recoverable) or None when the run is not from `codec`.
    """
    try:
        data = run.translate(_UNFOLD).encode(codec)
    except UnicodeEncodeError:
        return None
    body = data[1:]
    pairs = [_decode_pair(body[i], body[i + 1], codec) for i in range(0, len(body) - 1, 2)]
    firsts = [c for c in (_decode_pair(x, data[0], codec) for x in range(0x81, 0xFF)) if c]
    lasts: list[str] = []
    if len(body) % 2:  # last character: known lead byte + lost trail byte; the gloss names it
        lasts = [c for c in (_decode_pair(body[-1], y, codec) for y in range(0x40, 0xFF)) if c and _is_han(c)]
        if gloss:
            g = gloss.lower()
            lasts = [c for c in lasts if g in _pinyin_of(c)]
    if not pairs and firsts and lasts:  # two unknown characters side by side: choose them together (城|市, 也|是)
        pair = max(((f, l) for f in firsts for l in lasts),
                   key=lambda fl: _fit(fl[0], prev, fl[1]) + _fit(fl[1], fl[0], nxt))
        return "".join(c for c in pair if _fit(c, "", "") > 0)
    out: list[str] = []
    first = _best(firsts, prev, next((c for c in pairs if c), nxt))
    if first:
        out.append(first)
    for k, ch in enumerate(pairs):
        i = 2 * k
        if ch:
            out.append(ch)
            continue
        # two bytes lost here: a character led by body[i], then one ending in body[i+1]
        following = next((c for c in pairs[k + 1:] if c), nxt)
        before = out[-1] if out else prev
        lead = _best([c for c in (_decode_pair(body[i], y, codec) for y in range(0x40, 0xFF)) if c], before, "")
        if lead:
            out.append(lead)
        trail = _best([c for c in (_decode_pair(x, body[i + 1], codec) for x in range(0x81, 0xFF)) if c and _is_han(c)],
                      lead or before, following)
        if trail:
            out.append(trail)
    if lasts:
        last = _best(lasts, out[-1] if out else prev, nxt)
        if last:
            out.append(last)
    return "".join(out)


def _repair_shard(text: str, m: re.Match, gloss: str | None) -> str:
    prev = text[m.start() - 1] if m.start() else ""
    nxt = text[m.end()] if m.end() < len(text) else ""
    best = ""
    for codec in ("gbk", "big5"):
        rebuilt = _rebuild(prev, m.group(1), gloss, nxt, codec)
        if rebuilt is not None and len(rebuilt) > len(best):
            best = rebuilt
    return best


def repair_encoding(text: str, fields: dict) -> tuple[str, int]:
    """Mojibake (ftfy), GBK/Big5 byte-shift shards, replacement and control characters."""
    n = 0
    if _MOJIBAKE_RUN.search(text):
        import ftfy

        def fix(m: re.Match) -> str:
            nonlocal n
            fixed = ftfy.fix_encoding(m.group(0))
            # keep ftfy's answer only when it gives Chinese (or Latin-1 letters): `×“` is not Hebrew `ד`
            if fixed == m.group(0) or not _FIXED_OK.match(fixed):
                return m.group(0)
            n += len(m.group(0))
            return fixed

        text = _MOJIBAKE_RUN.sub(fix, text)
    for rx, has_gloss in ((_SHARD_GLOSS, True), (_SHARD_PUNCT, False)):
        if "?" in text or "\ufffd" in text:
            parts, last = [], 0
            for m in rx.finditer(text):
                parts.append(text[last:m.start()])
                parts.append(_repair_shard(text, m, m.group(2) if has_gloss else None))
                n += m.end() - m.start()
                last = m.end()
            if parts:
                text = "".join(parts) + text[last:]
    text, k = _CONTROL.subn("", text)
    return text, n + k


# ---------------------------------------------------------------- whitespace and width

_FULLWIDTH = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a％＋－．／＠＃＆\u3000]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_SPACE_RUN = re.compile(" +")
_CJK_PUNCT_SET = frozenset(CJK_PUNCT)
_LINE_EDGES = re.compile(r" *\n *")
_BLANKS = re.compile(r"\n{3,}")


def _cjk_space(m: re.Match) -> str:
    """A run of spaces next to Chinese punctuation, or between two Chinese characters, goes; others stay."""
    text = m.string
    a = text[m.start() - 1] if m.start() else ""
    b = text[m.end()] if m.end() < len(text) else ""
    if a in _CJK_PUNCT_SET or b in _CJK_PUNCT_SET or (a and b and (_is_han(a) or a in _CJK_PUNCT_SET)
                                                         and (_is_han(b) or b in _CJK_PUNCT_SET)):
        if a not in _CJK_PUNCT_SET and _FIELD_TAIL.search(text, max(0, m.start() - 45), m.start()):
            return " "  # the space that ends a field value (`编辑：王蜀周秦 作者：`) keeps the field apart from what follows
        return ""
    return m.group(0)


def normalize_whitespace(text: str, fields: dict) -> tuple[str, int]:
    """Unify line breaks and spaces, drop spaces between Chinese characters, fold full-width letters and digits."""
    before = len(text)
    changed = 0
    if _FULLWIDTH.search(text):
        folded = fold_width(text)
        changed = sum(1 for a, b in zip(text, folded) if a != b)
        text = folded
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\v", "\n")
    text = _SPACES.sub(" ", text)
    if " " in text:
        text = _SPACE_RUN.sub(_cjk_space, text)
    text = _LINE_EDGES.sub("\n", text)
    text = _BLANKS.sub("\n\n", text).strip()
    return text, changed + before - len(text)


# ---------------------------------------------------------------- pinyin glosses

_PINYIN_TONED = f"[a-zü]*[{_TONE_VOWELS}][a-zü{_TONE_VOWELS}]*|[a-züv]+[1-5]"  # lower case: (M2), (B2) are codes
_GLOSS = re.compile(f"(?<=[{HAN}])[(（] ?((?:{_PINYIN_TONED})(?:[ '-]?(?:{_PINYIN_TONED})){{0,3}}) ?[)）]")
_PINYIN_SYLLABLE = re.compile(
    r"(?:[bpmfdtnlgkhjqxrzcsyw]|zh|ch|sh)?"
    r"(?:iong|iang|uang|ueng|ong|ang|eng|ian|iao|uai|uan|üan|van|ing|ai|ei|ao|ou|an|en|er|ia|ie|iu|in|ua|uo|ui|un|üe|ve|ue|ün|vn"
    r"|a|o|e|i|u|ü|v)"
)
_TONE_STRIP = str.maketrans({c: b for b, group in (("a", "āáǎà"), ("e", "ēéěè"), ("i", "īíǐì"), ("o", "ōóǒò"),
                                                   ("u", "ūúǔù"), ("ü", "ǖǘǚǜ"), ("n", "ńňǹ"), ("m", "ḿ"))
                             for c in group})


def _is_pinyin(gloss: str) -> bool:
    """Every syllable of the gloss is a valid pinyin syllable (so `(café)` is not a gloss)."""
    for syl in re.split(r"[ '-]+", gloss.translate(_TONE_STRIP)):
        syl = syl.rstrip("12345")
        if not syl or not _PINYIN_SYLLABLE.fullmatch(syl):
            return False
    return True


def remove_glosses(text: str, fields: dict) -> tuple[str, int]:
    """Drop pinyin glosses glued after Han characters: 活動(dòng) -> 活動, 转化(zhuan3 hua4) -> 转化."""
    if "(" not in text and "（" not in text:
        return text, 0
    n = 0

    def drop(m: re.Match) -> str:
        nonlocal n
        if not _is_pinyin(m.group(1)):
            return m.group(0)
        n += len(m.group(0))
        return ""

    return _GLOSS.sub(drop, text), n


# ---------------------------------------------------------------- header fields

_KEYS = {
    "title": "标题|標題|题目|題目",
    "date": "发布日期|發布日期|發佈日期|发布时间|發布時間|發佈時間|发表时间|發表時間|更新时间|更新時間|日期|时间|時間",
    "source": "来源|來源|出处|出處|稿源|文章来源|文章來源",
    "author": "作者|记者|記者|责任编辑|責任編輯|编辑|編輯|责编|責編|审核|審核|校对|校對|摄影|攝影|通讯员|通訊員",
    "views": "浏览次数|瀏覽次數|阅读次数|閱讀次數|点击数|點擊數|点击量|點擊量|浏览|瀏覽|阅读|閱讀|点击|點擊",
    "body": "正文内容|正文內容|正文",
}
_KEY_OF = {k: name for name, alts in _KEYS.items() for k in alts.split("|")}
_KEY_ALT = "|".join(sorted(_KEY_OF, key=len, reverse=True))
_KEY_AT = re.compile(f"({_KEY_ALT})\\s*[:：]")
_FIELD_TAIL = re.compile(f"(?:{_KEY_ALT}|原标题|原標題)\\s*[:：]\\s*[^\\s:：，。；！？]{{1,30}}$")
_FIELD_START = re.compile(f"^[【\\[]?(?:{_KEY_ALT})\\s*[:：]")
DATE_RX = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)\s*[日号號]?")
_TIME_RX = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_BULLET_ONLY = re.compile(r"^[-–—*•·|_=~>#]+$")
_BODY_PREFIX = re.compile(r"^[\s，,]*[0-9年月日号/.:\-\s]{0,25}[\s，,]*正文(?:内容|內容)?\s*[:：]\s*")  # 7-24 20:27，正文：
_SOURCE_BRACKET = re.compile(r"[【\[]\s*(?:来源|來源)\s*[:：]\s*([^】\]]{1,40})[】\]]\s*")
_WIDGET_WORDS = (r"字体|字體|字号|字號|打印|关闭|關閉|收藏|分享|转发|轉發|返回|顶部|頂部|放大|缩小|縮小|默认|默認|评论|評論|"
                 r"纠错|糾錯|繁体|繁體|简体|簡體|复制链接|複製鏈接|大\s*中\s*小")
_HEAD_LINES = 12


def _note(fields: dict, key: str, value: str) -> None:
    value = value.strip(" \t:：-|·")
    if value and key not in fields:
        fields[key] = value


_FIELD_AT = re.compile(f"[【\\[]?\\s*({_KEY_ALT})\\s*[:：]\\s*")
_DATE_VALUE = re.compile(DATE_RX.pattern + r"(?:\s*\d{1,2}:\d{2}(?::\d{2})?)?")
_VIEWS_VALUE = re.compile(r"[\d,，]+(?:\s*(?:人次|次))?")
_TOKEN_VALUE = re.compile(r"[^\s，。；;,！？!?【】\[\]]{1,30}")
_FIELD_SEP = re.compile(r"[\s|/·丨]*")
_BARE_MARKER = re.compile(r"(?:免责|免責|版权|版權|郑重|鄭重|特别|特別|法律)?(?:声明|聲明)(?=\s|$)")
_CLAUSE_PUNCT = re.compile(r"[，。；！？,;!?]")


def _field_ends(s: str, i: int) -> bool:
    """A field value may end at position i: end of line, whitespace, a bracket or separator, or the next field."""
    return (i >= len(s) or s[i].isspace() or s[i - 1].isspace() or s[i] in "】]【[|丨/·" or s[i - 1] == "次"
            or bool(_FIELD_AT.match(s, i)))


def _header_line(s: str, fields: dict) -> str | None:
    """Parse a header line field by field: `key: value` fields (标题/发布日期/来源/作者/浏览次数/正文内容...), a dateline
    (`2024/11/2 22:31:36 來源:財新網 【打印】`), widgets and bare `版权声明` labels. Each field takes only its own value
    (a date, a count, one token; a title the rest of its field), so text after the fields is never part of them.

    Returns None when `s` is no header line, else the text left after the fields ('' when the line was all header).
    Found fields are noted."""
    pos = fields_seen = 0
    if not _FIELD_START.match(s):
        m = DATE_RX.search(s)
        if not m or m.start() > 12 or _CLAUSE_PUNCT.search(s, 0, m.start()):
            return None
        pos = m.start()  # a short prefix before a dateline goes with it
    while True:
        pos = _FIELD_SEP.match(s, pos).end()
        if pos >= len(s):
            break
        m = _WIDGET_BRACKET.match(s, pos) or (_BARE_MARKER.match(s, pos) if fields_seen else None)
        if m:
            pos = m.end()
            continue
        m = _FIELD_AT.match(s, pos)
        if m:
            key, vpos = _KEY_OF[m.group(1)], m.end()
            if key == "body":  # `正文：` - the rest is the article
                pos, fields_seen = vpos, fields_seen + 1
                break
            if vpos >= len(s) or _FIELD_AT.match(s, vpos) or _WIDGET_BRACKET.match(s, vpos):
                pos, fields_seen = vpos, fields_seen + 1  # an empty field
                continue
            if key == "title":
                nxt = _KEY_AT.search(s, vpos)
                end = nxt.start() if nxt else len(s)
                value = _WIDGET_BRACKET.sub("", s[vpos:end])
                if "。" in value or len(value) > 80:
                    pos = m.start()
                    break
            else:
                vm = {"date": _DATE_VALUE, "views": _VIEWS_VALUE}.get(key, _TOKEN_VALUE).match(s, vpos)
                if not vm or not _field_ends(s, vm.end()):
                    pos = m.start()  # `时间：下午三点，…` is content
                    break
                value, end = vm.group(0), vm.end()
                if _DISCLAIMER_STRONG.search(value):
                    value = ""  # `作者： 版权声明`: an empty field, then a label
            if end < len(s) and s[end] in "】]":
                end += 1
            _note(fields, key, value)
            pos, fields_seen = end, fields_seen + 1
            continue
        m = _DATE_VALUE.match(s, pos)
        if m and _field_ends(s, m.end()):
            _note(fields, "date", DATE_RX.match(s, pos).group(0))
            pos, fields_seen = m.end(), fields_seen + 1
            continue
        break
    if not fields_seen:
        return None
    return s[pos:].strip()


def strip_header(text: str, fields: dict) -> tuple[str, int]:
    """Leading header lines become `fields`: `key: value` lines (标题/发布日期/来源/浏览次数/正文内容...), datelines,
    bullet-only lines, and a `date ，正文：` / `【来源：…】` prefix of the first body line. Title-like short lines stay."""
    lines = text.split("\n")
    out_start = 0
    removed = 0
    kept: list[str] = []
    for idx, line in enumerate(lines[:_HEAD_LINES]):
        s = line.strip()
        out_start = idx + 1
        if not s:
            kept.append(line)
            continue
        if _BULLET_ONLY.match(s):
            removed += len(line) + 1
            continue
        left = _header_line(s, fields)
        if left == "":
            removed += len(line) + 1
            continue
        if left is not None:  # fields, then the article: only the fields go
            removed += len(line) - len(left)
            line = s = left
        # a body line: strip an inline `date ，正文：` / `【来源：…】` prefix, then stop
        prefix_len = 0
        pm = _BODY_PREFIX.match(s)
        if pm and pm.end() > 0:
            dm = DATE_RX.search(pm.group(0))
            if dm:
                _note(fields, "date", dm.group(0))
            prefix_len = pm.end()
        sm = _SOURCE_BRACKET.match(s, prefix_len)
        if sm:
            _note(fields, "source", sm.group(1))
            prefix_len = sm.end()
        if prefix_len:
            removed += prefix_len
            line = s = s[prefix_len:]
        kept.append(line)
        if len(s) > 64 or (s[-1:] in "。；;，," and len(s) > 20):
            break  # the first real paragraph: the header is over
    else:
        out_start = min(len(lines), _HEAD_LINES)
    text = "\n".join(kept + lines[out_start:]).strip("\n")
    return text, removed


# ---------------------------------------------------------------- widgets

_WIDGET_BRACKET = re.compile(f"[【\\[](?:[^】\\]\\n]{{0,8}}(?:{_WIDGET_WORDS})[^】\\]\\n]{{0,8}})[】\\]]")
_WIDGET_INLINE = re.compile(r"(?:字体|字體|字号|字號)\s*[:：]?\s*[大中小]\s*[大中小]\s*[大中小]")
_SHARE_LINE = re.compile(r"^(?:分享到|分享至|分享|转发到|轉發到)\s*[:：]?.{0,30}$", re.M)


def remove_widgets(text: str, fields: dict) -> tuple[str, int]:
    """Share/print/font-size controls: 【字体:大 中 小】【收藏本页】【打印】【关闭】, `分享到：…` lines."""
    n = 0
    for rx in (_WIDGET_BRACKET, _WIDGET_INLINE, _SHARE_LINE):
        text, k = _count_sub(rx, text)
        n += k
    return text, n


# ---------------------------------------------------------------- code

# a CSS rule: an ASCII selector and a body made only of `property: value;` declarations (at least one)
_CSS_RULES = re.compile(
    r"""(?:[.#]?[A-Za-z*][\w\-.#:()\[\]="']*(?:[ >+~,]+[.#:]?[\w\-.#:()\[\]="']+){0,6}\s*"""
    r"\{\s*(?:[a-z\-]+\s*:[^{};]{1,300};\s*)*[a-z\-]+\s*:[^{};]{1,300};?\s*\}\s*)+"
)
# a script call `name.name(args);` whose arguments hold no Han text and carry an object or string literal
_SCRIPT_CALL = re.compile(
    r"""\b[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\((?=[^()\u4e00-\u9fff]{0,500}\))(?=[^()]*[{"'])[^()]*\)\s*;"""
)


def remove_code(text: str, fields: dict) -> tuple[str, int]:
    """Script calls and CSS rules that scrapers left in the article text."""
    text, n = _count_sub(_SCRIPT_CALL, text)
    text, k = _count_sub(_CSS_RULES, text)
    return text, n + k


def _count_sub(rx: re.Pattern, text: str, repl: str = "") -> tuple[str, int]:
    removed = 0

    def f(m: re.Match) -> str:
        nonlocal removed
        removed += len(m.group(0)) - len(repl)
        return repl

    return rx.sub(f, text), removed


# ---------------------------------------------------------------- repeated lead

_LEAD_LABEL = re.compile(r"^(?:核心提示|内容提要|內容提要|提要|摘要|导读|導讀|编者按|編者按)\s*[:：]\s*", re.M)


def dedupe_lead(text: str, fields: dict) -> tuple[str, int]:
    """Drop lead labels (核心提示:/摘要:/导读:) and any sentence or line that repeats the one right before it."""
    from rag.chunking import split_sentences

    text, n = _count_sub(_LEAD_LABEL, text)
    spans = split_sentences(text)
    drop: list[tuple[int, int]] = []
    prev = None
    for i, (a, b) in enumerate(spans):
        s = text[a:b]
        if prev is not None and len(s) >= 8 and s == prev:
            drop.append((spans[i - 1][1], b))  # the copy and the whitespace before it
        prev = s
    if drop:
        parts, last = [], 0
        for a, b in drop:
            parts.append(text[last:a])
            n += b - a
            last = b
        text = "".join(parts) + text[last:]
    return text, n


# ---------------------------------------------------------------- boilerplate (tail blocks)

_DISCLAIMER_STRONG = re.compile(
    f"(?:免责|免責|郑重|鄭重|版权|版權|特别|特別|法律)(?:声明|聲明)|[{HAN}]{{0,2}}(?:声明|聲明)\\s*[:：]|版权所有|版權所有|©|copyright|"
    r"all rights reserved|未经(?:授权|许可|允许)|未經(?:授權|許可|允許)|转载请|轉載請|禁止转载|禁止轉載",
    re.I,
)
_DISCLAIMER_WEAK = re.compile(
    r"版权|版權|转载|轉載|侵权|侵權|删除|刪除|原作者|仅代表|僅代表|不代表|观点|觀點|立场|立場|联系我们|聯系我們|聯繫我們|"
    r"出处|出處|作者或机构|作者或機構|信息发布平台|信息發布平台|真实性|真實性|仅供参考|僅供參考|不构成|不構成|投资建议|投資建議|"
    r"本网|本網|本站|本文|本平台|自媒体|自媒體|不保证|不保證|准确性|準確性|完整性|风险自担|風險自擔"
)
_PHONE = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|400[-\s]?\d{3,4}[-\s]?\d{3,4}|0\d{2,3}[-－]\d{7,8})(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")  # ASCII: `母校@中国美术学院` is a mention
_QR = re.compile(r"扫一扫|掃一掃|二维码|二維碼|长按|長按|公众号|公眾號|扫码|掃碼|识别图中|識別圖中")
# a contact label and its colon, a short note in brackets allowed between them (热线(24小时)：)
_CONTACT_FIELD = re.compile(r"(?:微信|手机|手機|电话|電話|热线|熱線|QQ|邮箱|郵箱|E-?mail|传真|傳真|联系人|聯繫人|聯系人)\s*(?:号)?"
                            r"\s*(?:[(（][^)）]{1,8}[)）])?\s*[:：/]", re.I)
_CONTACT_WORD = re.compile(r"微信|手机|手機|电话|電話|热线|熱線|联系人|聯繫人|聯系人|客服|咨询|諮詢|加微")
_NAV_WORDS = re.compile(
    r"热点|熱點|资讯|資訊|排行|24小时|24小時|推荐|推薦|相关|相關|阅读|閱讀|上一篇|下一篇|返回|更多|热门|熱門|精彩|专题|專題|"
    r"首页|首頁|点击|點擊|责任编辑|責任編輯|编辑|編輯|责编|責編|审核|審核|校对|校對|新闻|新聞|视频|視頻|图集|圖集"
)
_NAV_STRONG = re.compile(r"返回(?:搜狐|首页|首頁|顶部|頂部|列表|网易|新浪)|查看更多|点击查看|點擊查看|阅读原文|閱讀原文|打开APP|打開APP|"
                         r"更多精彩|精彩内容|精彩內容|进入.{0,8}频道|進入.{0,8}頻道")
_CREDIT_WORDS = r"责任编辑|責任編輯|编辑|編輯|责编|責編|审核|審核|校对|校對|监制|監製|签审|簽審|编审|編審|初审|初審|终审|終審"
_CREDIT = re.compile(f"^[(（\\[【]?(?:{_CREDIT_WORDS})\\s*[:：丨|]\\s*[^。！？]{{0,60}}$")
# credits and site links glued to the end of the last sentence: (完)【编辑:张三】更多精彩内容请进入财经频道
_TAIL_FRAGMENT = re.compile(
    f"(?:[(（]完[)）]|[【\\[(（](?:{_CREDIT_WORDS}|来源|來源)\\s*[:：丨][^】\\])）]{{0,24}}[】\\])）]"
    r"|更多精彩内容.{0,12}|更多精彩內容.{0,12}|返回搜狐.{0,12}|查看更多.{0,8}"
    r"|(?:来源|來源|作者|记者|記者|编辑|編輯|责编|責編|摄影|攝影|图|圖|文)\s*[:：])\s*$"  # ... or a dangling label
)
_ORIGINAL_TITLE = re.compile(r"^(?:原标题|原標題)\s*[:：]\s*《?([^\s。！？]{1,80}?)》?\s*$")
# the label and its title (up to the first space or line end; a title holds no 。), never the text after it
_ORIGINAL_TITLE_LINE = re.compile(r"^(?:原标题|原標題)\s*[:：][ \t]*(?:《[^》\n]{1,80}》|[^\s。！？]{1,80}(?=\s|$))?[ \t]*\n?", re.M)


def _boilerplate_kind(s: str, fields: dict) -> str | None:
    """Why `s` (a line or sentence near the end of an article) is boilerplate, or None when it is content."""
    s = s.strip()
    if not s or _BULLET_ONLY.match(s):
        return "blank"
    m = _ORIGINAL_TITLE.match(s)
    if m:
        _note(fields, "original_title", m.group(1))
        return "original_title"
    if _DISCLAIMER_STRONG.search(s) or len(set(_DISCLAIMER_WEAK.findall(s))) >= 2:
        return "disclaimer"
    if _PHONE.search(s) or _EMAIL.search(s) or _QR.search(s) or _CONTACT_FIELD.search(s) \
            or len(set(_CONTACT_WORD.findall(s))) >= 2:
        return "contact"
    core = s.lstrip("-–—*•·|>#· ")
    if (len(core) <= 15 and _NAV_WORDS.search(core) and core[-1] not in "。！？!?”") \
            or (len(core) <= 40 and _NAV_STRONG.search(core)):
        return "nav"
    if _CREDIT.match(core):
        return "credit"
    return None


_LONG_SENTENCE = 80
_MARKERS = (_DISCLAIMER_STRONG, _DISCLAIMER_WEAK, _PHONE, _EMAIL, _QR, _CONTACT_FIELD, _CONTACT_WORD, _NAV_STRONG)


_LABEL_CHARS = 10  # a marker's label (韩国紧急求助 in 韩国紧急求助热线：) is at most this long


def _first_marker(s: str) -> int | None:
    """Offset where boilerplate starts inside a long run-on `sentence` (None: no marker): the earliest marker, moved
    back to the start of its clause (or of the sentence) when only a short label stands before it, so no cut starts
    inside a label."""
    starts = [m.start() for m in (rx.search(s) for rx in _MARKERS) if m]
    if not starts:
        return None
    first = min(starts)
    clause = max(s.rfind(sep, 0, first) for sep in "，,、；;：:")
    return clause + 1 if first - clause - 1 <= _LABEL_CHARS else first


def _has_content(s: str) -> bool:
    """`s` holds a real sentence (>= 12 Han characters, no boilerplate marker): the boilerplate step must not remove
    it whole."""
    from rag.chunking import split_sentences

    return any(is_content_sentence(s[a:b]) for a, b in split_sentences(s))


def _after_last_content(s: str, start: int) -> int:
    """Where trailing boilerplate may begin in the run-on `s`, at `start` or later: after the last whitespace-separated
    field from `start` on that holds a real sentence (a notice's attachment list, a signature after its e-mail line)."""
    end = start
    for m in _FIELD.finditer(s, start):
        if _has_content(m.group(0)):
            end = m.end()
    return end


_FIELD = re.compile(r"\S+")
_SHORT_LABEL = re.compile(r"^[-–—*•·|>#\s]*[^。！？!?；;，,]{1,8}$")


def strip_tail(text: str, fields: dict) -> tuple[str, int]:
    """Remove the closing block of boilerplate lines (and then sentences) at the end of the article.

    Walks back from the end while lines are disclaimers, copyright notices, contact/ad lines (phone numbers, WeChat,
    QR codes), navigation items or `原标题:` lines; then does the same sentence by sentence inside the last remaining
    line (articles stored as one line). Never removes more than the last 60% of the text.
    """
    from rag.chunking import split_sentences

    floor = int(len(text) * 0.4)
    cut = len(text)
    pos = len(text)
    while pos > floor:  # short label lines (图片新闻, 月排行) go too when boilerplate sits above them
        start = text.rfind("\n", 0, pos) + 1
        if start < floor:
            break
        line = text[start:pos]
        kind = _boilerplate_kind(line, fields)
        if kind and kind != "blank" and _has_content(line):
            cut = pos  # content and boilerplate on one line: go through it sentence by sentence below
            break
        if kind and kind != "blank":
            cut = start
        elif not kind and not _SHORT_LABEL.match(line.strip()):
            break
        pos = max(start - 1, 0)
    # inside the last remaining line, sentence by sentence
    line_start = text.rfind("\n", 0, cut) + 1
    line = text[line_start:cut]
    spans = split_sentences(line)
    for a, b in reversed(spans):
        if line_start + a < floor or not _boilerplate_kind(line[a:b], fields) or _has_content(line[a:b]):
            break
        if b - a > _LONG_SENTENCE:  # text without sentence marks: content may run straight into boilerplate
            first = _first_marker(line[a:b])
            if first is not None:
                cut = max(line_start + a + _after_last_content(line[a:b], first), floor)
                break
        cut = line_start + a
    while cut > floor:  # credits/links glued to the end of the last sentence
        m = _TAIL_FRAGMENT.search(text, 0, cut)
        if not m or m.start() < floor:
            break
        cut = m.start()
    # an `原标题:` line anywhere is a duplicate title
    head = text[:cut]
    def original(m: re.Match) -> str:
        _note(fields, "original_title", re.sub(r"^(?:原标题|原標題)\s*[:：]", "", m.group(0)).strip(" 《》\n"))
        return ""

    head = _ORIGINAL_TITLE_LINE.sub(original, head).rstrip()
    return head, len(text) - len(head)


# ---------------------------------------------------------------- spam tokens

_WORDY = re.compile(f"[{HAN}A-Za-z0-9]")
_MIXED = re.compile(f"[A-Za-z0-9][{HAN}]|[{HAN}][A-Za-z0-9]")


def _wordy(ch: str) -> bool:
    return bool(ch) and bool(_WORDY.match(ch))


class _Grams:
    """Bigram counts and trigram offsets of one text, from one numpy sort each: every count or occurrence list a spam
    check needs is a binary search, never a scan of the text (cleaning stays O(n log n) in the text's length)."""

    def __init__(self, text: str) -> None:
        self.text = text
        a = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        self.codes = a
        self.bigrams = np.sort((a[:-1] << 21) | a[1:]) if len(a) >= 2 else np.zeros(0, np.int64)
        tri = (a[:-2] << 42) | (a[1:-1] << 21) | a[2:] if len(a) >= 3 else np.zeros(0, np.int64)
        self.order = np.argsort(tri, kind="stable")
        self.trigrams = tri[self.order]

    @staticmethod
    def _code(s: str) -> int:
        code = 0
        for ch in s:
            code = (code << 21) | ord(ch)
        return code

    def count_bigram(self, bg: str) -> int:
        c = self._code(bg)
        return int(np.searchsorted(self.bigrams, c, "right") - np.searchsorted(self.bigrams, c, "left"))

    def positions(self, sub: str) -> list[int]:
        """Start offsets of the non-overlapping occurrences of `sub` (>= 3 characters) in the text."""
        c = self._code(sub[:3])
        lo, hi = np.searchsorted(self.trigrams, c, "left"), np.searchsorted(self.trigrams, c, "right")
        out: list[int] = []
        for p in sorted(self.order[lo:hi].tolist()):
            if (not out or p >= out[-1] + len(sub)) and self.text.startswith(sub, p):
                out.append(p)
        return out


def _wordy_codes(a: np.ndarray) -> np.ndarray:
    """Han, ASCII letter or digit, per code point (vectorised `_wordy`)."""
    return (((a >= 0x4E00) & (a <= 0x9FFF)) | ((a >= 0x3400) & (a <= 0x4DBF)) | ((a >= 48) & (a <= 57))
            | ((a >= 65) & (a <= 90)) | ((a >= 97) & (a <= 122)))


def spam_candidates(text: str, max_len: int = 12, grams: _Grams | None = None) -> set[str]:
    """Maximal repeated strings (>= 3 chars, >= 3 times) of Han/Latin/digit characters whose bigrams occur only
    inside them (the necessary condition for a spam token; cheap enough to run on every article). One sort of the
    trigrams and bigrams, then vectorised filters: no per-candidate scan of the text."""
    if len(text) < 9:
        return set()
    g = grams or _Grams(text)
    s = g.trigrams
    if not len(s):
        return set()
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    counts = np.diff(np.r_[starts, len(s)])
    keep = counts >= 3
    starts, counts = starts[keep], counts[keep]
    codes = s[starts]
    first = g.order[starts]
    w = _wordy_codes(g.codes)
    keep = w[first] & w[first + 1] & w[first + 2]
    mask42 = (1 << 42) - 1
    for bg in (codes >> 21, codes & mask42):  # both bigrams occur exactly as often as the trigram
        n_bg = np.searchsorted(g.bigrams, bg, "right") - np.searchsorted(g.bigrams, bg, "left")
        keep &= n_bg == counts
    out: set[str] = set()
    for i in np.flatnonzero(keep).tolist():
        pos = sorted(g.order[starts[i]:starts[i] + counts[i]].tolist())
        a, b = 0, 3  # extend right, then left, while every occurrence agrees
        while b < max_len:
            nxt = {text[p + b] if p + b < len(text) else "" for p in pos}
            if len(nxt) != 1 or not _wordy(next(iter(nxt))):
                break
            b += 1
        while b - a < max_len:
            prv = {text[p + a - 1] if p + a > 0 else "" for p in pos}
            if len(prv) != 1 or not _wordy(next(iter(prv))):
                break
            a -= 1
        out.add(text[pos[0] + a:pos[0] + b])
    return out


# characters that follow a number as its unit or classifier (8万元, 12日, 30余人): a number + unit recurs naturally
_UNIT = "年月日时时分秒号號元角万萬亿億千百十余餘多个個件次人台家所项項份米吨噸斤克升度岁歲名位只条條张張辆輛座户戶套股倍期届屆场場处處篇部本页頁批周週季"
_NUMBER_UNIT = re.compile(f"^[0-9.%]*[{_UNIT}]*$|^[0-9.]+[{_UNIT}]+|[0-9.]+[{_UNIT}]+$")
_ALNUM = re.compile(r"[A-Za-z0-9]")
_WORD_MIN = 20  # jieba frequency for a word re-formed across a junction to count as evidence


def _rejoins(left: str, right: str) -> bool:
    """Joining `left` and `right` lets a common dictionary word form across the junction (jieba segmentation):
    转|化 -> 转化 crosses it; 促进|发展 -> 促进/发展 does not."""
    import jieba

    _word_freq()
    pos = 0
    for w in jieba.dt.cut(left + right, HMM=False):
        if pos < len(left) < pos + len(w):
            return len(w) >= 2 and _freq(w) >= _WORD_MIN
        pos += len(w)
        if pos >= len(left):
            break
    return False


@lru_cache(maxsize=1)
def _word_tags() -> dict[str, str]:
    """jieba's part-of-speech tag per dictionary word."""
    import jieba.posseg

    _word_freq()
    return jieba.posseg.dt.word_tag_tab


_NOUNISH = ("n", "nr", "ns", "nt", "nz", "nrt", "nrfg", "ng", "vn", "an", "j")


def _noun_before(text: str, i: int) -> bool:
    """The longest dictionary word ending at position i is a noun (a phrase that is already complete)."""
    tags = _word_tags()
    for k in range(min(4, i), 0, -1):
        w = text[i - k:i]
        if _freq(w) > 0:
            return tags.get("".join(map(_simplified_char, w)), "") in _NOUNISH
    return False


def is_spam_token(text: str, token: str, grams: _Grams | None = None) -> bool:
    """True when `token` recurs where it breaks the text apart.

    A candidate must occur >= 3 times, hold >= 2 Han characters, not be a dictionary word or a cut from a longer
    number/Latin word, have bigrams that occur nowhere else in the article (it is unrelated to the text around it) and
    sit in a different context each time (injected at random, not a repeated phrase). Each occurrence then counts as
    evidence when the text reads on without it: removing it joins two characters into a common dictionary word
    (转<token>化), or -- for a token mixing digits/Latin with Han -- it is glued after a complete noun right before
    punctuation (负责人<token>、); it counts against when a word runs across its edge (问|题被移送...). Mixed tokens
    need half their occurrences as evidence (at most a third against); pure-Han tokens, which could be names or
    phrases, need 40% (and >= 3) occurrences that split a word (at most a quarter against).
    """
    if len(token) < 3 or len(_HAN_RE.findall(token)) < 2 or _NUMBER_UNIT.search(token):
        return False
    grams = grams or _Grams(text)
    positions = grams.positions(token)
    n = len(positions)
    if n < 3:
        return False
    for i in range(len(token) - 1):  # isolation: every bigram of the token only ever occurs inside the token
        bg = token[i:i + 2]
        if grams.count_bigram(bg) != n * sum(token.startswith(bg, k) for k in range(len(token) - 1)):  # overlapping
            return False
    occ = [(p, p + len(token)) for p in positions]
    if len({text[max(0, a - 2):a] for a, _ in occ}) < 0.8 * n or len({text[b:b + 2] for _, b in occ}) < 0.8 * n:
        return False  # the same phrase repeated, not an injection
    mixed = bool(_MIXED.search(token))
    need = max(2, 0.5 * n) if mixed else max(3, 0.4 * n)
    # cheap bound first: how many occurrences could count at all (Han/alnum on both sides, or before punctuation)
    spots = []
    for start, end in occ:
        a = text[start - 1] if start else "\n"
        b = text[end] if end < len(text) else "\n"
        if (_ALNUM.match(a) and _ALNUM.match(token[0])) or (_ALNUM.match(b) and _ALNUM.match(token[-1])) \
                or (token[-1].isdigit() and b in ".．%％") or (token[0].isdigit() and a in ".．"):
            return False  # part of a longer number or Latin word
        if _wordy(a) and (_wordy(b) or (mixed and b in SENT_PUNCT)):
            spots.append((start, end, _wordy(b)))
    if len(spots) < need or _freq(token) > 0:
        return False
    evidence = 0
    for start, end, between_words in spots:
        left, right = text[max(0, start - 3):start], text[end:end + 3]
        if between_words and _rejoins(left, right):
            evidence += 1  # the text reads on without it: 转<token>化
        elif mixed and not between_words and _noun_before(text, start):
            evidence += 1  # glued after a complete noun, right before punctuation: 负责人<token>、
    if evidence < need:
        return False
    # a word running across the token's edge means it belongs to its context (问|题被移送...)
    against = sum(1 for start, end in occ
                  if _rejoins(text[max(0, start - 3):start], token[:3]) or _rejoins(token[-3:], text[end:end + 3]))
    return against <= (n / 3 if mixed else n / 4)


def remove_spam_tokens(text: str, fields: dict) -> tuple[str, int]:
    """Remove short tokens injected all through an article (e.g. a betting-site name wedged into sentences)."""
    n = 0
    grams = _Grams(text)
    for token in sorted(spam_candidates(text, grams=grams), key=len, reverse=True):
        if grams.positions(token) and is_spam_token(text, token, grams):
            n += text.count(token) * len(token)
            text = text.replace(token, "")
            grams = _Grams(text)  # rare (a spam token found): index the new text once
    return text, n


# ---------------------------------------------------------------- anti-filter variant characters

# rare characters written in place of common ones to dodge keyword filters (e.g. advertising-law words 最/第/国)
VARIANTS: dict[str, str] = {"蕞": "最", "冣": "最", "㝡": "最", "苐": "第", "囯": "国"}
_VARIANT_RX = re.compile("[" + "".join(VARIANTS) + "]")
_VARIANT_TABLE = str.maketrans(VARIANTS)


def _forms_word(text: str, i: int, ch: str) -> bool:
    """Whether `ch` at position i forms a dictionary word (2-4 chars) with its neighbours."""
    for a in range(max(0, i - 3), i + 1):
        for b in range(i + 1, min(len(text), a + 4) + 1):
            if b - a >= 2 and _freq(text[a:i] + ch + text[i + 1:b]) > 0:
                return True
    return False


def restore_variants(text: str, fields: dict) -> tuple[str, int]:
    """Replace anti-filter variants (蕞大 -> 最大) where the common character makes a word and the variant does not
    (蕞尔小国 stays). An occurrence with no word either way follows the article's other occurrences."""
    if not _VARIANT_RX.search(text):
        return text, 0
    chars = list(text)
    traditional = detect_script(text) == "traditional"
    for v, common in VARIANTS.items():
        idx = [m.start() for m in re.finditer(v, text)]
        if not idx:
            continue
        if traditional:
            common = to_traditional(common)  # 囯 -> 國 in a traditional article
        legit = [i for i in idx if _forms_word(text, i, v)]
        confirmed = [i for i in idx if i not in legit and _forms_word(text, i, common)]
        for i in idx:
            if i in confirmed or (i not in legit and confirmed and not legit):
                chars[i] = common
    new = "".join(chars)
    return new, sum(1 for a, b in zip(text, new) if a != b)


# ---------------------------------------------------------------- content-loss check

CONTENT_MIN_HAN = 12  # a "real sentence" has at least this many Han characters (and no boilerplate marker)
_WS_RUN = re.compile(r"\s+")
_NON_HAN = re.compile(f"[^{HAN}]+")


_URL = re.compile(r"https?://|www\.[\w-]+\.", re.I)
_URL_END = re.compile(r"(?:https?://|www\.)[\w./?=&%#:~+-]*$", re.I)
_SELF_REF = re.compile(r"本网|本網|本站|本文|本平台|本号|本號|自媒体|自媒體")
_MARKER_PHRASE = re.compile(
    r"版权归|版權歸|如有侵权|如有侵權|侵权请|侵權請|立场无关|立場無關|投资建议|投資建議|投资有风险|投資有風險|注明出处|註明出處|"
    r"(?:联系|聯繫|聯系|通知)[^。]{0,8}(?:删除|刪除)|图库版权|版权纠纷|版權糾紛|[【\[](?:原标题|原標題)[】\]]|本文.{0,6}(?:首发|首發|转自|轉自|转载|轉載)|分享让更多人|分享讓更多人|点分享|點分享|点这里|點這裡|感谢您订阅|感謝您訂閱|欢迎订阅|歡迎訂閱|不做任何保证|不作任何保证")
# a label opening a list of other articles' headlines (the list is the label's field, not article text)
_LIST_LABEL = re.compile(r"(?:相关|相關|推荐|推薦|延伸|热门|熱門|往期|更多)(?:报道|報道|阅读|閱讀|新闻|新聞|文章|推荐|推薦|回顾|回顧)"
                         r"|^热点|^熱點|^热点资讯|^熱點資訊|^(?:相关|相關)?(?:链接|鏈接)\s*[:：]")


_CREDIT_WORD = re.compile(r"点评人|點評人|图源|圖源|图片来源|圖片來源|截图|截圖|图自|圖自|供图|供圖|摄影|攝影|通讯员|通訊員|通迅员|实习生|實習生|记者|記者|"
                          r"编辑|編輯|编审|編審|审核|審核|制片人|监制|監製|采写|採寫|转自|轉自|内容来源|內容來源|来源|來源|官方微博|官微|"
                          r"[丨｜|]")
_ADDRESS = re.compile(r"地址\s*[:：]|赞和在看|點讚和在看|点个在看")


# a piece that ends in a credit field (`…策划制作审核丨宋爽`): what follows it in the same sentence is that field
_CREDIT_FIELD_END = re.compile(f"(?:{_CREDIT_WORDS})\\s*[丨｜|:：]\\s*[^，。,；;！？!?\\s]{{1,8}}$")


def _credit_piece(s: str) -> bool:
    """A short credit or caption (`扬子晚报/紫牛新闻记者`, `图源：…官方微博`, `编辑丨贺冰`): no sentence end, a credit word."""
    return (len(s) <= 40 and s[-1:] not in "。！？!?”" and "，" not in s.lstrip("，,")
            and bool(_CREDIT_WORD.search(s)))


def has_boilerplate_marker(s: str) -> bool:
    """`s` carries a marker of non-content: a header field (来源:/编辑:), a disclaimer or copyright notice, contact or
    QR-code text, a navigation link, a credit line, a widget or an `原标题:` label. The same markers the header and
    boilerplate steps act on; weak disclaimer words count only three at a time, contact words two at a time."""
    s = s.strip()
    return bool(
        _KEY_AT.search(s) or _DISCLAIMER_STRONG.search(s) or _PHONE.search(s) or _EMAIL.search(s) or _QR.search(s)
        or _CONTACT_FIELD.search(s) or _NAV_STRONG.search(s) or _CREDIT.match(s) or _ORIGINAL_TITLE.match(s)
        or _WIDGET_BRACKET.search(s) or _URL.search(s) or _MARKER_PHRASE.search(s) or _LIST_LABEL.search(s)
        or _ADDRESS.search(s) or _credit_piece(s)
        or len(set(_DISCLAIMER_WEAK.findall(s))) >= 3
        or (len(set(_DISCLAIMER_WEAK.findall(s))) >= 2 and _SELF_REF.search(s))
        or len(set(_CONTACT_WORD.findall(s))) >= 2
    )


def _han_key(text: str) -> str:
    """Han characters only, anti-filter variants folded: what a sentence must keep to count as kept."""
    return _NON_HAN.sub("", text).translate(_VARIANT_TABLE)


def content_sentences(text: str) -> list[str]:
    """The real sentences of `text`: sentence (or whitespace-separated) pieces with >= CONTENT_MIN_HAN Han characters
    and no boilerplate marker. Cleaning must never lose one of these."""
    from rag.chunking import split_sentences

    out: list[tuple[str, bool]] = []  # (piece, ends like a sentence)
    in_list = False  # after a `相关报道` label: headline-shaped pieces (no 。 at the end) are the list's items
    for a, b in split_sentences(text):
        if _URL_END.search(text, a, b):
            continue  # a link's anchor text (a headline before its URL), not article text
        in_credit = False  # after a credit (`审核丨宋爽`) in this sentence: its comma-less, unended pieces are its field
        for piece in _WS_RUN.split(text[a:b]):
            if not piece:
                continue
            ended = piece.endswith(("。", "”", "」", "；"))
            if in_credit and not ended and len(piece) <= 40 and not re.search(r"[，,；;]", piece):
                continue  # the credited person's affiliation or title (中国疾病预防控制中心营养与健康所 副研究员)
            in_credit = bool(_CREDIT_FIELD_END.search(piece)) and not ended
            if _LIST_LABEL.search(piece):
                in_list = True
                continue
            if _NAV_STRONG.search(piece):  # `返回搜狐，查看更多`: the headline-shaped pieces right before it are its list
                while out and not out[-1][1]:
                    out.pop()
                continue
            if in_list and not ended:
                continue
            in_list = False
            out.append((piece, ended))
    return [p for p, _ in out if len(_HAN_RE.findall(p)) >= CONTENT_MIN_HAN and not has_boilerplate_marker(p)]


def is_content_sentence(s: str) -> bool:
    """A real sentence that cleaning must keep: >= CONTENT_MIN_HAN Han characters and no boilerplate marker."""
    return len(_HAN_RE.findall(s)) >= CONTENT_MIN_HAN and not has_boilerplate_marker(s)


def _survives(key: str, text_key: str, share: float = 0.9) -> bool:
    """The Han key of a sentence is in `text_key`, exactly or with at most 10% of it changed in place (a spam token
    or a repaired character inside the sentence)."""
    if key in text_key:
        return True
    import difflib

    n = len(key)
    for anchor, back in ((key[:6], 0), (key[-6:], n - 6)):
        i = text_key.find(anchor)
        while i >= 0:
            lo = max(0, i - back - n // 5)
            window = text_key[lo:i - back + n + n // 5]
            matched = sum(m.size for m in difflib.SequenceMatcher(None, key, window, autojunk=False).get_matching_blocks())
            if matched >= share * n:
                return True
            i = text_key.find(anchor, i + 1)
    return False


def lost_sentences(before: str, after: str, sentences: list[str] | None = None) -> list[str]:
    """Real sentences of `before` (or the given `sentences`) that `after` no longer holds."""
    after_key = _han_key(after)
    return [s for s in (content_sentences(before) if sentences is None else sentences)
            if not _survives(_han_key(s), after_key)]

# ---------------------------------------------------------------- the pipeline

STEPS: list[tuple[str, Step]] = [
    ("encoding", repair_encoding),
    ("whitespace", normalize_whitespace),
    ("glosses", remove_glosses),
    ("header", strip_header),
    ("widgets", remove_widgets),
    ("code", remove_code),
    ("repeated_lead", dedupe_lead),
    ("boilerplate", strip_tail),
    ("spam_tokens", remove_spam_tokens),
    ("variants", restore_variants),
]


@dataclass
class CleanResult:
    """Cleaned text, characters removed/changed per step (in step order), and header fields found."""

    text: str
    removed: dict[str, int] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def clean_text(text: str, steps: list[tuple[str, Step]] | None = None) -> CleanResult:
    """Run the cleaning steps in order; whitespace is tidied once more at the end (counted under `whitespace`)."""
    fields: dict[str, str] = {}
    removed: dict[str, int] = {}
    for name, step in steps or STEPS:
        text, n = step(text, fields)
        removed[name] = removed.get(name, 0) + n
    text, n = normalize_whitespace(text, fields)
    removed["whitespace"] = removed.get("whitespace", 0) + n
    return CleanResult(text=text, removed=removed, fields=fields)


__all__ = ["CleanResult", "content_sentences", "has_boilerplate_marker", "is_content_sentence", "lost_sentences", "STEPS", "VARIANTS", "clean_text", "dedupe_lead", "is_spam_token", "normalize_whitespace",
           "remove_code", "remove_glosses", "remove_spam_tokens", "remove_widgets", "repair_encoding", "restore_variants",
           "spam_candidates", "strip_header", "strip_tail"]


# ---------------------------------------------------------------- report metadata inside kept sentences (for readers)

# 新华社海口8月2日电（记者…）, 深圳新闻网2023年8月11日讯, 央广网昆明8月19日消息: where and when the report was filed, and by whom
DATELINE = re.compile(r"[^\s，,。；;：:（()）]{0,24}?(?:(?:19|20)\d{2}年)?\d{1,2}月\d{1,2}日(?:[电讯電訊]|消息)(?=[\s（(【]|题|$|[^\u4e00-\u9fff])"
                      r"(?:\s*[（(][^（()）]{0,48}[）)])?")
_BYLINE = re.compile(r"[（(][^（()）]{0,12}?(?:记者|記者|通讯员|通訊員|实习生|實習生|编辑|編輯|摄影|攝影)[^（()）]{0,48}[）)]")
_URL_RUN = re.compile(r"(?:https?://|www\.)[\w./?=&%#:~+-]+", re.I)
_PHOTO_CREDIT = re.compile(r"[^\s，,。；;：:（()）]{1,24}?(?:供图|供圖)")  # 受访者供图: who supplied the photo
_STAMP = re.compile(r"(?<!\d)(?:19|20)\d{2}(?:年\d{2}月\d{2}日|-\d{2}-\d{2})\s*\d{2}:\d{2}(?::\d{2})?")  # a machine time stamp


def report_metadata(text: str) -> list[tuple[int, int]]:
    """Spans of a kept sentence that describe the report, not what it reports: its dateline (新华社海口8月2日电（记者
    王明）, 深圳新闻网2023年8月11日讯), a byline in brackets ((记者 王明 通讯员 李华)), a photo credit (受访者供图), a header field with its value
    (来源：中新网广东, 编辑：…; only the label of 正文：), a URL, a machine time stamp (2023年08月08日 13:48). Cleaning
    keeps such sentences (their content is real); a reader takes no answer from these spans."""
    spans = [m.span() for rx in (DATELINE, _BYLINE, _PHOTO_CREDIT, _URL_RUN, _STAMP) for m in rx.finditer(text) if m.end() > m.start()]
    for m in _KEY_AT.finditer(text):
        end = m.end()
        if _KEY_OF.get(m.group(1)) != "body":
            value = re.match(r"\s*[^\s，,。；;！？!?（(]{0,24}", text[end:])
            end += value.end() if value else 0
        spans.append((m.start(), end))
    return sorted(spans)
