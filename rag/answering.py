"""The extractive reader (no LLM): ranked evidence sentences -> typed answer span -> short answer with [n] citations.

1. The evidence (`rag.evidence.gather`) ranks the retrieved passages' sentences with the learned sentence ranker and
   drops documents that do not name the question's key entities; `score_sentences` here gives the ranker its
   hand-built term-match feature (IDF-weighted coverage of the question's terms; English through glosses and pinyin).
2. In the best sentences the span that answers the question's type is extracted: a number with its unit and the thing
   counted, a person with role, a date, a place, a name ending in what a which-question asks, an enumeration; yes-no
   and what questions take the best clause. The span that best combines its sentence's ranker probability with its own
   fit is taken, unless it answers something else than was asked (`rag.asked.unasked`).
3. Found when `rag.answerability` gives the answer at least `Settings.answerable_threshold`; otherwise the answer says
   so and the passages go to `related`.
4. The answer is composed in the question's language/script with inline markers [n]; `Citation.spans` are exact offsets
   of the supporting sentence inside the passage (`passage[a:b]` is the sentence).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence


from rag.answerability import probability
from rag.cleaning import report_metadata
from rag.evidence import Evidence, Sentence, collect_sentences, entity_label
from rag.lexical import name_coverage, pinyin_names
from rag.question import Question, cedict, gloss_coverage, role_title, which_endings
from rag.tagging import jieba_modules, pos_tokens
from rag.records import Answer, Citation, Hit
from rag.script import (DATA_DIR, alternation, cn_numeral, figure_roles, han_count, labelled_words, measure_words, to_simplified,
                        to_traditional, word_list)

CONTEXT_NAME_SHARE = 0.6  # English: a name spelled by the passage, not the sentence, counts this much
CANDIDATE_SENTENCES = 8  # best sentences searched for a typed answer span
ASKED_CANDIDATES = 4  # best candidate spans tried in order until one answers what was asked (rag.asked.unasked)
RANK_WEIGHT = 2.0  # ranked evidence: weight of the sentence's ranker probability against the span's own fit
MAX_ANSWER_CHARS = 160

_CLAUSE_SPLIT = re.compile(r"[，,；;。！？!?：:\n]")
_SEG_SPLIT = re.compile(r"[，,；;。！？!?：:、\n]")

# ---------------------------------------------------------------- numbers, dates, places

_CN_DIGITS = "零〇一二两三四五六七八九十百千万亿"
_NUM = r"(?:\d+(?:\.\d+)?\s*[:：∶]\s*\d+(?:\.\d+)?(?![\d.])|\d+(?:[.,]\d+)*(?:\s*[-~～—至到]\s*\d+(?:\.\d+)?)?|[" + _CN_DIGITS + r"]{1,6})"
_UNIT = (r"(?:%|％|‰|个百分点|万亿元|亿元|万元|千元|元|亿美元|万美元|美元|万人次|人次|万人|亿人|万户|万吨|吨|万亩|亩|平方公里|平方米|公里|千米|"
         r"微米|纳米|米|倍|万|亿|千|百|个|项|家|名|位|支|场|届|次|件|所|座|条|种|批|户|台|套|篇|部|款|期|轮|类|人|余|多|天|小时|岁|年)")
# a space some sites put between a figure and its unit (净增 79 万户, 4.02 亿户): read through when a unit follows
_UNIT_SPACE = r"(?:[ \u00a0\u3000](?=[余多万亿" + "".join(sorted({a[0] for a in _UNIT[3:-1].split("|")})) + r"]))?"
_NUMBER_RE = re.compile(
    r"(?P<pre>逾|超过|超|近|约|达到|达|共|累计|总计)?(?P<ord>第)?(?P<num>" + _NUM + r")" + _UNIT_SPACE
    + r"(?P<mod>余|多)?(?P<mag>万|亿)?(?P<unit>" + _UNIT + r")?"
    r"(?P<upto>\s*[~～—至-]\s*\d+(?:\.\d+)?(?:万|亿)?(?:%|％|‰)?(?<=[\d%％‰万亿]))?"  # a range: 20%~30%, 5亿至8亿元
    r"(?P<mod2>余|多)?(?P<unit2>[个项家名位支场届次件所座条种批户台套篇部款人元](?![\u4e00-\u9fff]))?")
_YEAR_RE = re.compile(r"^(19|20)\d{2}$")
# a time of day: alone (16时55分, 下午3点, 17时许, 22:30), or right after a date, where 17时 alone is one too
_CLOCK = (r"(?:\d{1,2}\s*[时点]\s*\d{1,2}\s*分|(?:[上下]午|晚上|早上|凌晨|中午)\d{1,2}\s*[时点](?:半|\d{1,2}\s*分)?"
          r"|\d{1,2}\s*时(?:许|左右)|(?<![\d:])[0-2]?\d:[0-5]\d(?![\d:]))")
_CLOCK_AFTER_DATE = r"(?:" + _CLOCK + r"|\d{1,2}\s*[时点](?:半|许)?(?![间段期代区]))"
_DATE_RE = re.compile(  # dates, with a time of day when one follows, and times of day alone
    r"(?:(?:19|20)\d{2}\s*年\s*)?(?:\d{1,2}|[一二三四五六七八九十]{1,3})\s*月(?:\s*\d{1,2}\s*(?:日|号)?(?:\s*[-至到~～—]\s*\d{1,2}\s*(?:日|号))?)?(?:[上下]午|晚|早)?(?:\s*" + _CLOCK_AFTER_DATE + ")?"
    r"|" + _CLOCK +
    r"|(?:(?:19|20)\d{2}\s*年|明年|今年|去年|年内)?(?:第?[一二三四1-4]季度|[上下]半年|年底|年初|年中|年末)"  # 明年一季度
    r"|(?:19|20)\d{2}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|(?:19|20)\d{2}\s*年(?:度)?"
    r"|(?<![\d月])\d{1,2}\s*(?:日|号)(?:\s*[-至到~～—]\s*\d{1,2}\s*(?:日|号))?")
_HELD = "举办|举行|召开|开幕|闭幕|落幕|启动|开展|进行|成立|揭牌|亮相|落地|开园|开业|隆重|盛大|成功|顺利"  # 在X举办: X is where
_PLACE_RE = re.compile(
    r"(?:在|(?<![助等由对关属终基鉴至善])于|地点[为是：:]?|位于|落户|来到|走进)(?P<place>[^，,。；;！？!?、\s“”\"]{2,28}?)"
    rf"(?=(?P<held>{_HELD})|[，,。；;]|$)")
_ENUM_RE = re.compile(r"[^，,。；;！？!?、：:“”\s]{2,30}(?:、[^，,。；;！？!?、：:“”\s]{2,30}){1,}")
_COUNT_CLASSIFIERS = measure_words().count  # measure words of counted things (not 元, %, 万)
_GENERIC_CLASSIFIERS = measure_words().generic  # too generic to say what was counted
_CLASS_CLASSIFIERS = measure_words().kind_of_thing  # say what kind of thing was counted (organisations, people...)
_NAME_POS = {"nr", "nrfg", "nrt", "nz", "ng"}
_BOUNDARY_CHARS = set("，,。；;！？!?：:、\n（）()“”\"《》【】")
_NEGATION = re.compile(r"没有|未|不是|并非|无|不")


# ---------------------------------------------------------------- term weights


@lru_cache(maxsize=1)
def _idf_table() -> tuple[dict[str, float], float]:
    """jieba's general-language IDF table (not fitted to any corpus), and its median for unknown words."""
    import jieba.analyse

    tf = jieba.analyse.default_tfidf
    return tf.idf_freq, float(tf.median_idf)


@lru_cache(maxsize=100_000)
def idf(term: str) -> float:
    table, median = _idf_table()
    w = table.get(term)
    if w is None:
        w = median if han_count(term) else median * 0.8
    if len(term) == 1:
        w *= 0.5  # single characters match by accident
    return float(w)


def coverage(terms: Sequence[str], text: str) -> float:
    """IDF-weighted share of `terms` found in `text` (substring match; a missing word earns half credit for the share
    of its characters present, so jieba segmenting the question differently from the article costs little)."""
    if not terms:
        return 0.0
    tot = got = 0.0
    for t in terms:
        w = idf(t)
        tot += w
        if t in text:
            got += w
        elif len(t) >= 2 and han_count(t):
            got += 0.5 * w * sum(1 for ch in t if ch in text) / len(t)
    return got / tot if tot else 0.0


def english_names(question: Question) -> list[str]:
    """Capitalised words of an English question that spell pinyin (Xining, Xi'an, Zhongguangxue): matchable in Chinese."""
    return pinyin_names(question.standalone)


# ---------------------------------------------------------------- sentence candidates


@dataclass
class Span:
    """A typed answer candidate inside a sentence (offsets into `sentence.simp`)."""

    sentence: Sentence
    text: str
    a: int
    b: int
    local: float
    answer: str  # the short answer text (simplified) built around the span
    total: float = 0.0
    counts: str = ""  # number spans: how the number was matched to the asked thing ("noun" | "measure" | "verb" | "")
    figure: str = ""  # number spans: the number with its unit, whole words ("59个", "11280万元")


@dataclass
class Extraction:
    """What the extractive answerer decided (kept for the LLM path and for tests)."""

    found: bool
    span: Span | None
    sentences: list[Sentence] = field(default_factory=list)
    support: float = 0.0
    reason: str = ""
    unasked: str = ""  # what the span's answer fails to answer (`rag.asked.unasked`); "" when it answers


def _title_terms(q: Question, title: str) -> tuple[list[str], list[str]]:
    """Split the question's terms into those the document title already gives (topic) and the rest (asked)."""
    t = to_simplified(title or "")
    topic = [w for w in q.terms if w in t]
    asked = [w for w in q.terms if w not in t]
    return topic, asked


def _en_match(q: Question, text: str, names: Sequence[str], context: str = "") -> float:
    """English question vs Chinese text: names through pinyin, other content words through their Chinese glosses.
    A name only the `context` (the sentence's passage and title) spells counts CONTEXT_NAME_SHARE of one the sentence
    spells itself (the sentence about the asked thing often leaves the place to the title)."""
    groups = list(q.glosses) + list(q.topic_glosses)
    g = gloss_coverage(groups, text) if groups else 0.0
    zh = [t for t in q.terms if han_count(t)]
    if zh:
        g = 0.5 * g + 0.5 * coverage(zh, text) if groups else coverage(zh, text)
    if names:
        spelled = name_coverage(names, text)
        if context and spelled < 1.0:
            spelled = max(spelled, CONTEXT_NAME_SHARE * name_coverage(names, context))
        return 0.5 * spelled + 0.5 * g
    return g


def score_sentences(q: Question, hits: Sequence[Hit], sents: list[Sentence]) -> None:
    """Fill lex/ctx/score of every sentence (in place): term coverage of the sentence and its passage, plus a prior for
    the passage's retrieval rank and dense score (the sentence ranker's hand-built feature, `rag.evidence`)."""
    en = q.language == "en"
    names = english_names(q) if en else []
    ctx_cache: dict[int, str] = {}
    for s in sents:
        h = hits[s.hit]
        if s.hit not in ctx_cache:
            ctx_cache[s.hit] = to_simplified(h.chunk.title or "") + "\n" + (h.chunk.text_simplified or to_simplified(h.chunk.text))
        ctx = ctx_cache[s.hit]
        if en:
            s.lex = _en_match(q, s.simp, names, ctx)
            s.ctx = _en_match(q, ctx, names)
        else:
            _, asked = _title_terms(q, h.chunk.title)
            s.lex = 0.6 * coverage(q.terms, s.simp) + 0.4 * coverage(asked or q.terms, s.simp)
            s.ctx = coverage(q.terms, ctx)
        prior = 0.15 / (1 + s.hit) + max(0.0, float(h.scores.get("dense", 0.0)) - 0.8)  # passage rank and meaning
        s.score = s.lex + 0.3 * s.ctx + prior


# ---------------------------------------------------------------- clause helpers


def _clause_bounds(text: str, a: int, b: int, splitter: re.Pattern = _CLAUSE_SPLIT) -> tuple[int, int]:
    """The clause around [a, b) (between clause punctuation)."""
    lo = a
    while lo > 0 and not splitter.match(text[lo - 1]):
        lo -= 1
    hi = b
    while hi < len(text) and not splitter.match(text[hi]):
        hi += 1
    return lo, hi


def _strip_clause(text: str) -> str:
    return re.sub(r"，{2,}", "，", text).strip(" \t，,；;。：:、")


def _clause_answer(simp: str, a: int, b: int, min_chars: int = 8) -> str:
    """The clause containing [a, b); a very short one is joined with its neighbour so the answer names what it is about."""
    lo, hi = _clause_bounds(simp, a, b)
    clause = simp[lo:hi]
    if han_count(clause) - han_count(simp[a:b]) < 3 and lo > 0:  # "215支" alone: add the preceding clause
        lo2, _ = _clause_bounds(simp, max(0, lo - 1), max(0, lo - 1))
        clause = simp[lo2:hi]
    if len(clause) < min_chars and hi < len(simp):
        _, hi2 = _clause_bounds(simp, hi + 1, hi + 1)
        clause = simp[lo:hi2]
    clause = _strip_clause(clause)
    if len(clause) > MAX_ANSWER_CHARS:  # keep the part around the span
        center = max(0, a - lo)
        start = max(0, center - MAX_ANSWER_CHARS // 2)
        clause = clause[start:start + MAX_ANSWER_CHARS]
    return clause


def _focus_terms(q: Question) -> list[str]:
    from rag.question import content_terms

    return content_terms(q.focus) or [q.focus]


def _local_terms(q: Question, clause: str) -> float:
    if q.language == "en":
        return _en_match(q, clause, english_names(q))
    return coverage(q.terms, clause)


# ---------------------------------------------------------------- typed extractors


def _numbers(simp: str) -> list[re.Match]:
    out = []
    for m in _NUMBER_RE.finditer(simp):
        num = m.group("num")
        unit = (m.group("unit") or "") + (m.group("unit2") or "")
        mag = m.group("mag") or ""
        if not num:
            continue
        cn = not re.search(r"\d", num)
        if cn and not (unit or mag):
            continue  # 一体化, 万企: a Chinese numeral counts only with a measure word
        if cn and len(num) == 1 and num in "万亿千百" or num == "十" and not unit:
            continue  # 万企 / 百园: a lone magnitude is not a count (十家 is)
        if _YEAR_RE.match(num) and not (unit or mag or m.group("ord")):
            continue  # 《2024中国…白皮书》, 2023光子产业: a year naming something, not a figure
        if num == "一" and re.match(r"[批些系揽带体道起同]", simp[m.end("num"):m.end("num") + 1]):
            continue  # 一批 / 一些 / 一系列: not a count
        if num == "一" and m.start() > 0 and simp[m.start() - 1] in "另每同这那哪某任其单唯":
            continue  # 另一个亮点 / 每一个 / 这一项: a determiner, not a count
        end = m.end()
        nxt = simp[end:end + 2].lstrip()[:1]  # 6 月: a spaced date too
        if unit in ("年",) and _YEAR_RE.match(num):
            continue  # a year, not a count
        if not unit and not mag and nxt in ("月", "日", "号", "年", "时"):
            continue  # part of a date
        if unit == "年" and nxt in ("月",):
            continue
        prev = simp[max(0, m.start() - 1):m.start()]
        if re.match(r"[A-Za-z0-9]", prev):
            continue
        out.append(m)
    return out


def _counted_after(simp: str, end: int) -> str:
    """The noun right after a number's unit ("59个项目合作协议" -> "项目合作协议"), in whole jieba words of its clause."""
    _, hi = _clause_bounds(simp, end, end)
    noun = ""
    for w, f in pos_tokens(simp[end:hi]):
        if f[:1] in ("n", "j") or f in ("vn", "nz", "b") or (noun and f == "an"):
            if noun and len(noun) + len(w) > 8:
                break
            noun += w
        else:
            break
    return noun


@lru_cache(maxsize=4096)
def _token_bounds(text: str) -> frozenset[int]:
    """Offsets where jieba words start or end."""
    jieba, _ = jieba_modules()
    out = {0, len(text)}
    for _, a, b in jieba.tokenize(text):
        out.update((a, b))
    return frozenset(out)


def _word_end(simp: str, m: re.Match) -> int:
    """The end of a number match cut back to a word boundary, so a unit never takes the first character of the next
    word (the 项 of 项目); the number itself is kept whole."""
    if m.end() >= len(simp) or not han_count(simp[m.end()]) or not (m.group("unit") or m.group("unit2")):
        return m.end()
    bounds = _token_bounds(simp)
    ends = [m.end()] + [m.end(g) for g in ("mod2", "unit", "mag", "mod", "num") if m.group(g)]
    for e in ends:
        if e in bounds:
            return e
    return m.end("num")


def _verbs(text: str) -> list[str]:
    return [w for w, f in pos_tokens(text) if f.startswith("v") and han_count(w) == len(w)]


_GENERIC_MONEY = ("资金", "金额", "总额", "钱", "费用", "经费", "款项", "款", "投资", "投入", "资本")


def money_qualifier(noun: str) -> str:
    """What a money noun says beyond "money": 宣传费 -> 宣传, 签约资金 -> 签约, 奖金 -> 奖金, 资金 -> ""."""
    for g in _GENERIC_MONEY + ("费",):
        if noun.endswith(g):
            return noun[: -len(g)]
    return noun


@lru_cache(maxsize=1)
def _money_words() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(Chinese suffix pattern, English word pattern) from `rag/data/money_words.txt`."""
    words = labelled_words("money_words.txt")
    return re.compile(f"(?:{alternation(words['zh'])})$"), re.compile(rf"\b(?:{alternation(words['en'])})\b", re.I)


def asks_money(q: Question) -> bool:
    """Whether a number question asks for an amount of money (its focus or counted noun is 资金, 奖金, 经费...; in English
    funding, budget, spending...)."""
    zh, en = _money_words()
    if q.language == "en":
        return bool(en.search(q.standalone))
    return any(zh.search(w) for w in (q.focus, q.counted, *q.counted_any) if w)


def counts_asked(q: Question, simp: str, m: re.Match, after: str, seg: str) -> str:
    """How a number in a sentence counts the thing a count question asks for, or "" when it does not:
    "noun"    the counted noun sits with the number (59个项目合作协议 for 多少个项目);
    "measure" the number closes its phrase with a specific measure word that heads the counted noun
              (合作协议8项 for 多少个项目: 项 ~ 项目; 个 is too generic);
    "verb"    the number closes its phrase with a measure word and its clause has the question's counting verb
              (簽訂…8項 for 签了多少个项目: 签 ~ 签订, compared in simplified script); not when the measure word
              itself says another kind of thing was counted (签约企业12家: 家 counts organisations)."""
    asked = q.counted_any
    if not asked:
        return ""
    if any(c in after + seg for c in asked):
        return "noun"
    if asks_money(q) and "元" in (m.group("mag") or "") + (m.group("unit") or "") + (m.group("unit2") or ""):
        clo, chi = _clause_bounds(simp, m.start(), m.end())
        if all(money_qualifier(w) in simp[clo:chi] for w in asked):
            return "measure"  # 多少资金 is answered by 1000万元; 多少宣传费 only where the clause says 宣传
    if after and q.language != "en" and any(len(c) >= 2 and after[-1] == c[-1] and len(after) <= 3 for c in asked):
        return "noun"  # a word with the counted noun's head: 613名乘客 for 多少名旅客 (not for English glosses: loose)
    if after:  # the number names a different thing of its own (64家企业)
        return ""
    measure = m.group("unit2") or m.group("unit") or ""
    if measure not in _COUNT_CLASSIFIERS:
        return ""  # 元 / % / 万: an amount, not a count
    if q.classifier and q.classifier not in _GENERIC_CLASSIFIERS and q.classifier != measure:
        return ""  # 几家 is not answered by 8项
    if measure not in _GENERIC_CLASSIFIERS and any(c.startswith(measure) for c in asked):
        return "measure"
    if q.verb and q.classifier and (measure not in _CLASS_CLASSIFIERS or measure == q.classifier):
        clo, chi = _clause_bounds(simp, m.start(), m.end())
        if any(w.startswith(q.verb) or q.verb.startswith(w) for w in _verbs(simp[clo:chi])):
            return "verb"
    return ""


def _find_all(text: str, sub: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(sub), text)]


def extract_number(q: Question, s: Sentence) -> list[Span]:
    out: list[Span] = []
    qnums = set(re.findall(r"\d+(?:\.\d+)?", q.simplified))
    focus_terms, money = _focus_terms(q), asks_money(q)  # per question, not per number
    for m in _numbers(s.simp):
        num = m.group("num")
        if num in qnums:
            continue
        unit = (m.group("mag") or "") + (m.group("unit") or "") + (m.group("unit2") or "")
        a, b = m.start(), m.end()
        lo, hi = _clause_bounds(s.simp, a, b, _SEG_SPLIT)
        seg = s.simp[lo:hi]  # the 、-delimited segment: 在管基金产品215支 | 基金规模825亿元
        clo, chi = _clause_bounds(s.simp, a, b)
        clause = s.simp[clo:chi]
        after = _counted_after(s.simp, b)
        local = 0.6 * _local_terms(q, seg) + 0.4 * _local_terms(q, clause)
        clf = q.classifier
        if clf:
            measure = m.group("unit2") or m.group("unit") or ""
            if clf in unit:
                local += 0.6
            elif clf in _GENERIC_CLASSIFIERS and measure in _COUNT_CLASSIFIERS:
                pass  # 多少个 is answered by any measure word of a count (8项, 6家)
            elif unit and clf not in ("元", "人"):
                local -= 0.3
        if q.ordinal:
            local += 0.5 if m.group("ord") else -0.5
        elif m.group("ord"):
            local -= 0.2
        counts = counts_asked(q, s.simp, m, after, seg)
        if q.counted_any:
            if counts:
                local += 0.6 if counts == "noun" else 0.5
            else:
                local -= 0.2 if any(c[:2] in seg for c in q.counted_any) else 0.8
        elif q.focus:
            local += 0.4 * coverage(focus_terms, seg)
            if after and not set(s.simp[b:chi]) & set(q.focus):  # the rest of its clause never names the focus:
                local -= 0.5  # the figure counts a thing of its own (三项…指标), not the asked 发明专利拥有量
        if not unit:
            local -= 0.3  # a bare number says little
        if money and not re.search(r"元|美元|%|％", unit):
            local -= 1.0  # 奖金是多少 is not answered by 一等奖2名
        if q.roles and role_conflict(q, s.simp, a):
            local -= 2.0  # 累计载客多少 is not answered by 日均9.7万人次
        if "分别" in s.simp and _respective_other(q, s.simp, s.simp[a:b]):
            local -= 1.0  # 金额占比 is not answered by the 户数 of 户数和金额分别为92.1%和60.4%
        if q.language == "en":  # English grammar: "how many" counts things, "how much" asks an amount or a share
            measure = m.group("unit2") or m.group("unit") or ""
            if q.quantity == "amount" and measure in _COUNT_CLASSIFIERS:
                local -= 0.5
            elif q.quantity == "count" and re.search(r"[元%％‰]", unit):
                local -= 0.5
        if "%" in unit or "％" in unit:
            if re.search(r"比|率|增长|增速|百分|percent|share|rate", q.simplified, re.I):
                local += 0.3
        local -= 0.01 * (a / max(1, len(s.simp)))
        if any(0 <= a - (i + len(n)) <= 4 for n in qnums for i in _find_all(s.simp[:a], n)):
            local += 0.3  # right after a figure the question gives: 2022年全球第29位 for 2022年排第几
        lead = re.sub(r"(?:共|有|达|为|是|约|计|了)+$", "", s.simp[max(0, a - 12):a])
        if not q.counted and any(len(t) >= 2 and lead.endswith(t) for t in focus_terms):
            local += 0.3  # right after the asked attribute: 一等奖2名 for 一等奖有几个, 总资金11280万元
        b = _word_end(s.simp, m)
        span_text = s.simp[a:b]
        if after and len(after) >= 2 and b == m.end():
            span_text += after
        out.append(Span(s, span_text, a, b, local, _clause_answer(s.simp, a, b), counts=counts, figure=s.simp[a:b]))
    return out


def _surname_at(text: str) -> bool:
    """Whether `text` starts with a surname CC-CEDICT lists (one character, or two: 欧阳)."""
    names = cedict().surnames
    return text[:1] in names or text[:2] in names


def _name_after(simp: str, pos: int) -> tuple[int, int] | None:
    """A person name starting at `pos` (after a role word): 3 Han characters, or 2 when the third starts a common word
    or is a function character (柴渭主持 -> 柴渭, 葛飞等 -> 葛飞); None unless jieba agrees it can start a name."""
    run = ""
    for ch in simp[pos:pos + 4]:
        if han_count(ch) != 1:
            break
        run += ch
    if len(run) < 2:
        return None
    jieba, pseg = jieba_modules()
    words = list(pseg.cut(simp[pos:pos + 6]))
    first = words[0] if words else None
    if first is None:
        return None
    if len(first.word) >= 2 and jieba.dt.FREQ.get(first.word, 0) > 50:
        return None  # a dictionary word in common use (表示, 园区, 高新区), whatever its tag
    if first.flag in _NAME_POS:
        pass
    elif len(first.word) == 1 and first.word in cedict().surnames:
        pass  # 何 守法: jieba cut off a surname that is also a common word
    elif first.flag not in ("n", "x", "j", "ns") or len(first.word) > 3:
        return None
    elif not _surname_at(simp[pos:pos + 2]):
        return None  # 开发区提质增效: 提质 is no name
    n = 3 if len(run) >= 3 else 2
    if n == 3 and (run[2] in "的为在是和与等及、" or jieba.dt.FREQ.get(simp[pos + 2:pos + 4], 0) > 20):
        n = 2
    elif n == 3 and first.flag in _NAME_POS and len(first.word) == 2 and len(words) > 1 and len(words[1].word) == 1 \
            and words[1].flag.startswith("v"):
        n = 2  # 肖亮|说: jieba reads a two-character name and a one-character verb
    return pos, pos + n


_NAME_DOT = re.compile(r"[\u4e00-\u9fff]{1,8}(?:[·•‧・][\u4e00-\u9fff]{1,10})+")


def _whole_name(simp: str, a: int, b: int) -> tuple[int, int]:
    """[a, b) widened to a whole transliterated name when one starts at `a` (德劳帕迪·穆尔穆, not 德劳帕): the part after
    the last dot ends where jieba starts a verb, preposition, particle or other function word."""
    m = _NAME_DOT.match(simp, a)
    if not m or m.end() <= b:
        return a, b
    last = max(simp.rfind(d, a, m.end()) for d in "·•‧・") + 1
    end = last
    for w, f in pos_tokens(simp[last:m.end()]):
        if f[:1] in ("v", "p", "u", "d", "c", "r", "m", "q") or end - last + len(w) > 6:
            break
        end += len(w)
    return (a, end) if end > last else (a, b)


def _name_before(simp: str, pos: int) -> tuple[int, int] | None:
    """A person name ending at `pos` (before the verb it does: 蒲小川代表…, 陈辉主持): 3 or 2 Han characters starting at a
    word boundary, with a surname first and not a common dictionary word."""
    jieba, _ = jieba_modules()
    bounds = _token_bounds(simp)
    for n in (3, 2):
        st = pos - n
        cand = simp[max(0, st):pos]
        if st < 0 or han_count(cand) != n or not (st in bounds or simp[st - 1:st] in _BOUNDARY_CHARS):
            continue
        if _surname_at(cand) and jieba.dt.FREQ.get(cand, 0) <= 50:
            return st, pos
    return None


def _subject_verb(q: Question) -> str:
    """The verb of a question that asks for its subject (谁代表…作了报告 -> 代表, 哪位嘉宾主持了会议 -> 主持); "" otherwise."""
    return "" if q.language == "en" else _subject_verb_of(q.simplified)


@lru_cache(maxsize=1024)
def _subject_verb_of(simplified: str) -> str:
    m = re.match(r"^(?:请问)?(?:是)?(?:谁|哪位|哪一位)(?:[\u4e00-\u9fff]{0,2}?(?:嘉宾|领导|专家|人))?", simplified)
    if not m:
        return ""
    in_phrase = False  # inside a prepositional phrase (谁在会上致辞): skip to its verb
    for w, f in pos_tokens(simplified[m.end():]):
        if f in ("d", "c") or w in ("将", "曾", "还", "也", "又"):
            continue  # adverbs before the verb
        if f == "p" or w in ("在", "于", "对", "向", "为", "给"):
            in_phrase = True
            continue
        if in_phrase and f != "v":
            continue
        # the first word of the predicate is its verb, whatever jieba tags it (代表 is tagged a noun)
        return w if w not in ("是", "有", "的") and han_count(w) == len(w) else ""
    return ""


def _role_phrase(simp: str, name_start: int) -> int:
    """Start of the role phrase in front of a name ("西宁市委副书记、市长" in front of 张晓容): back to a clause boundary,
    dropping leading verbs/conjunctions (正如, 由, 据)."""
    lo, _ = _clause_bounds(simp, name_start, name_start)
    seg = simp[lo:name_start]
    toks = pos_tokens(seg)
    cut = 0
    for w, f in toks:
        if f[:1] in ("v", "c", "p", "d", "u", "r") or w in ("正如", "据", "由"):
            cut += len(w)
        else:
            break
    return lo + min(cut, len(seg))


# an appointment verb and what stands between it and the role title (胡明文|任|阜阳市代理|市长, 张三|当选为|理事长)
_APPOINTED_AS = re.compile(r"(?:担任|出任|当选为?|被任命为|任命为|任|为)[^，,。；;：:、]{0,12}$")


def _who_roles(q: Question, simp: str) -> tuple[str, list[str]]:
    """(the role title a Chinese who-question asks, the role words to look for in `simp`): the title (局长 for
    科技局局长), else the question's person word (经济学家); English: the Chinese glosses of the question's words that
    `simp` uses as role titles (chairman -> 董事长; not labour -> 劳动, team -> 团队)."""
    if q.language != "en":
        title = role_title(q)
        return title, [title or q.focus] if (title or len(q.focus) >= 2) else []
    deputy = bool(re.search(r"\b(vice|deputy)\b", q.standalone, re.I))
    titles = tuple(word_list("role_titles.txt"))
    return "", [z for g in q.glosses for z in g if z in simp and (deputy or "副" not in z) and z.endswith(titles)]


def role_holders(q: Question, simp: str) -> dict[tuple[int, int], int | None]:
    """The people `simp` names as holding the role a who-question asks (`_who_roles`): the name right after the
    role word (首席经济学家蒲小川), or before an appointment verb (胡明文任阜阳市代理市长), never a deputy's (副市长 does
    not answer "who is the 市长"). Maps each name's span to the end of the role it is appointed to (None when the
    name follows the role)."""
    out: dict[tuple[int, int], int | None] = {}
    for role in _who_roles(q, simp)[1]:
        for m in re.finditer(re.escape(role), simp):
            if m.start() > 0 and simp[m.start() - 1] in "副前原代常" and simp[m.start() - 1] + role not in q.simplified:
                continue
            nm = _name_after(simp, m.end())
            if nm:
                out.setdefault(nm, None)
                continue
            lo, _ = _clause_bounds(simp, m.start(), m.start())
            appointed = _APPOINTED_AS.search(simp[lo:m.start()])
            nm = _name_before(simp, lo + appointed.start()) if appointed else None
            if nm:
                out[nm] = m.end()
    return out


def extract_who(q: Question, s: Sentence) -> list[Span]:
    out: list[Span] = []
    title = _who_roles(q, s.simp)[0]
    found_names: set[tuple[int, int]] = set()
    verb = _subject_verb(q)
    for m in re.finditer(re.escape(verb), s.simp) if verb else ():
        lo, _ = _clause_bounds(s.simp, m.start(), m.start())
        # the subject stands right before the verb, or before a phrase in front of it (杨曙光|为本次活动|致辞)
        ends = [m.start()] + [lo + p.start() for p in re.finditer(r"在|于|为|向|对|代表|与|和", s.simp[lo:m.start()])]
        nm = next((x for x in (_name_before(s.simp, e) for e in ends) if x), None)
        if nm:
            found_names.add(nm)  # 蒲小川代表延长石油集团作主旨报告 for 谁代表延长石油集团作了主旨报告
    holders = role_holders(q, s.simp)
    appointments = {_whole_name(s.simp, *nm): end for nm, end in holders.items() if end is not None}
    found_names |= set(holders)
    role_hit = bool(found_names)
    if title and not role_hit:
        return out  # the question names a role title and no one holds it here (a generic 官员, 学者: any name)
    if not found_names:  # no role word in the question (or not found): any person name
        pos = 0
        for w, f in pos_tokens(s.simp):
            if (f in ("nr", "nrfg", "nrt") and 2 <= len(w) <= 4 and han_count(w) == len(w) and w[0] in cedict().surnames
                    and w not in cedict().common  # jieba tags some common words nr (卫星); CC-CEDICT knows better
                    and not w.endswith(tuple(word_list("area_endings.txt")))):  # and places (高新区, 延寿县)
                found_names.add(_name_after(s.simp, pos) or (pos, pos + len(w)))
            pos += len(w)
    for a, b in sorted({_whole_name(s.simp, a, b) for a, b in found_names}):
        r0 = _role_phrase(s.simp, a)
        lo, hi = _clause_bounds(s.simp, a, b)
        seg_lo, seg_hi = _clause_bounds(s.simp, a, b, _SEG_SPLIT)
        local = 0.5 * _local_terms(q, s.simp[lo:hi]) + 0.5 * _local_terms(q, s.simp[seg_lo:seg_hi])
        if q.language == "en":
            local += name_coverage(english_names(q), s.simp[seg_lo:seg_hi])
        local += 0.6 if role_hit else 0.0
        if b - r0 <= len(s.simp[a:b]) and not role_hit:
            local -= 0.2  # a bare name with no role
        answer = _strip_clause(s.simp[a:appointments[(a, b)]] if (a, b) in appointments else s.simp[r0:b])
        out.append(Span(s, s.simp[a:b], a, b, local, answer))
    return out


def extract_when(q: Question, s: Sentence) -> list[Span]:
    out: list[Span] = []
    for m in _DATE_RE.finditer(s.simp):
        a, b = m.start(), m.end()
        d = m.group(0)
        if not d.strip():
            continue
        spec = 0.0
        if "月" in d and re.search(r"\d\s*(日|号)", d):
            spec = 0.5
        elif re.search(r"\d{4}[-/.]\d", d):
            spec = 0.5
        elif "月" in d:
            spec = 0.25
        elif "年" in d:
            spec = 0.15
        else:
            spec = 0.2
        lo, hi = _clause_bounds(s.simp, a, b)
        local = 2 * spec + 0.5 * _local_terms(q, s.simp[lo:hi])  # a date usually dates its whole sentence
        has_month = "月" in d or bool(re.search(r"\d{4}[-/.]\d", d))
        has_year = bool(re.search(r"(19|20)\d{2}", d))
        if re.search(r"几月|哪个月|哪月|什么日期|几月几日|几号|what (date|month)|which (date|month)", q.simplified, re.I) and not has_month:
            if not re.search(r"日|号", d):
                continue  # a month/date is asked: a year alone does not answer it
            local -= 1.2  # a bare day answers it only in part
        if re.search(r"哪一?年|几几年|什么年份|what year|which year|in what year", q.simplified, re.I) and not has_year:
            continue  # a year is asked
        if re.search(r"几点|几时|什么时刻|what time", q.simplified, re.I) and not re.search(r"\d\s*[时点]|\d:\d", d):
            continue  # a time of day is asked: a date alone does not answer it
        out.append(Span(s, d.strip(), a, b, local, _clause_answer(s.simp, a, b, min_chars=12)))
    return out




def extract_where(q: Question, s: Sentence) -> list[Span]:
    out: list[Span] = []
    for m in _PLACE_RE.finditer(s.simp):
        place = m.group("place")
        a, b = m.start("place"), m.end("place")
        if re.search(r"\d", place) and not re.search(r"[\u4e00-\u9fff]{2}", place):
            continue
        if _no_place(place):
            continue
        lo, hi = _clause_bounds(s.simp, m.start(), m.end())  # the clause saying what happens there
        local = 0.5 * _local_terms(q, s.simp[lo:hi]) + min(0.4, 0.04 * len(place))
        tags = {f for _, f in pos_tokens(place)}
        if tags & {"ns", "nt", "nz"}:
            local += 0.2
        out.append(Span(s, place, a, b, local, _strip_clause(s.simp[min(a, m.start()):hi]) or place))
    return out


def venues(text: str) -> list[tuple[int, int]]:
    """The places `text` says something is held or happens in: 在西安高新国际会议中心举办, 于滨江隆重开幕."""
    return [m.span("place") for m in _PLACE_RE.finditer(text) if m.group("held") and not _no_place(m.group("place"))]


def _no_place(place: str) -> bool:
    """在此, 在这里, 在7月1日一举突破…: what follows 在 names no place."""
    return place.startswith(("此", "这", "那", "本", "其", "该")) or bool(_DATE_RE.match(place))


def extract_list(q: Question, s: Sentence) -> list[Span]:
    out: list[Span] = []
    for m in _ENUM_RE.finditer(s.simp):
        a, b = m.start(), m.end()
        lo, hi = _clause_bounds(s.simp, a, b)
        clause = s.simp[lo:hi]
        local = 0.5 * _local_terms(q, clause) + 0.05 * min(3, m.group(0).count("、"))
        if q.focus:
            local += coverage(_focus_terms(q), clause)
        out.append(Span(s, m.group(0), a, b, local, _clause_answer(s.simp, a, b)))
    return out


_NAME_PART_TAGS = ("n", "j", "eng", "b", "m")  # what the words of a name may be tagged (天津/ns 银行/n, 11/m 号线/n)


def extract_which(q: Question, s: Sentence) -> list[Span]:
    """A 哪个/哪家… question (`Question.which`): the names in the sentence that end in what it asks for
    (`rag.question.which_endings`: 由天津银行作为主承销商 for 哪家银行, 从万州北站始发 for 哪个车站): a word ending so,
    with the noun-like words before it, and more than the ending alone."""
    if not q.which:
        return []
    endings = which_endings(q.which)
    at = q.simplified.find(q.which)  # what the question says the named thing does: 始发 in 从哪个车站始发
    predicate = [t for t in q.terms if t in q.simplified[at + len(q.which):]] if at >= 0 else []
    toks = pos_tokens(s.simp)
    starts = [0]
    for w, _ in toks:
        starts.append(starts[-1] + len(w))
    out: list[Span] = []
    for i, (w, f) in enumerate(toks):
        if not any(w.endswith(e) for e in endings):
            continue
        if not (f[:1] == "n" or f in ("j", "vn") or (w in endings and i > 0 and toks[i - 1][1].startswith(_NAME_PART_TAGS))):
            continue  # a noun, or the ending alone after a name (唯亭 + 站, which jieba tags a verb)
        if i + 1 < len(toks) and toks[i + 1][1] == "f":
            continue  # a place word follows (中国银行 + 间债券市场, 园区 + 内): the word names no thing of its own
        j = i
        while j > 0 and toks[j - 1][1].startswith(_NAME_PART_TAGS) and starts[i + 1] - starts[j - 1] <= 16 \
                and han_count(toks[j - 1][0]) + sum(c.isalnum() for c in toks[j - 1][0]) >= len(toks[j - 1][0]):
            j -= 1
        a, b = starts[j], starts[i + 1]
        name = s.simp[a:b]
        if name in endings or name in q.simplified or len(name) < 3:
            continue  # the noun itself (银行), or a name the question gives: not what it asks
        lo, hi = _clause_bounds(s.simp, a, b)
        tags = {t for w, t in toks[j:i + 1] if w not in endings}  # 城市/ns itself does not make 省副中心城市 a name
        said = s.simp[lo:a] + "，" + s.simp[b:hi]  # what the clause says of the name (重庆北站 does not say 重庆)
        local = (0.5 * _local_terms(q, said) + (coverage(predicate, said) if predicate else 0.0)
                 + (0.3 if tags & {"ns", "nt", "nz", "nr", "j"} else 0.0))
        out.append(Span(s, name, a, b, local, _clause_answer(s.simp, a, b)))
    return out


def extract_sentence(q: Question, s: Sentence) -> list[Span]:
    """What / yes-no: the best clauses of the sentence (the whole sentence when short)."""
    simp = s.simp
    local = 0.0
    if q.kind == "what" and q.focus and q.focus not in simp:
        local = -0.1
    if len(simp) <= MAX_ANSWER_CHARS:
        return [Span(s, simp, 0, len(simp), local, _strip_clause(simp))]
    # keep the highest-covering window of clauses
    parts = [(m.start(), m.end()) for m in re.finditer(r"[^，,；;。！？!?]+[，,；;。！？!?]?", simp)]
    best, best_sc = (0, min(len(simp), MAX_ANSWER_CHARS)), -1.0
    for i in range(len(parts)):
        j = i
        while j + 1 < len(parts) and parts[j + 1][1] - parts[i][0] <= MAX_ANSWER_CHARS:
            j += 1
        a, b = parts[i][0], parts[j][1]
        sc = _local_terms(q, simp[a:b]) if q.language != "en" else -i
        if sc > best_sc:
            best, best_sc = (a, b), sc
    a, b = best
    return [Span(s, simp[a:b], a, b, local, _strip_clause(simp[a:b]))]


_EXTRACTORS = {"number": extract_number, "who": extract_who, "when": extract_when, "where": extract_where,
               "list": extract_list, "yesno": extract_sentence, "what": extract_sentence}


# ---------------------------------------------------------------- decision


def extract(ev: Evidence, min_score: float = 0.0) -> Extraction:
    """The typed span of `ev`'s best sentences from documents that name the question's key entities; found when
    `rag.answerability` gives it `min_score`."""
    ranked = [s for s in ev.sentences if ev.consistent(s.hit)]
    if not ranked:
        return Extraction(False, None, [], 0.0, "no passage names " + "、".join(sorted(
            {entity_label(e) for m in ev.missing.values() for e in m})) if ev.missing else "no passages")
    return _extract_ranked(ev.question, ev.hits, ranked, min_score)


def _read(extractor: Any, q: Question, s: Sentence) -> list[Span]:
    """An extractor's spans of `s`, read with its report metadata (`rag.cleaning.report_metadata`: dateline, byline,
    header fields, URL) blanked to clause breaks, offsets kept: the day a report was filed and its reporter are not
    what it reports."""
    marked = report_metadata(s.simp)
    if not marked:
        return extractor(q, s)
    chars = list(s.simp)
    blank = [False] * len(chars)
    for a, b in marked:
        chars[a:b] = "，" * (b - a)
        blank[a:b] = [True] * (b - a)
    spans = extractor(q, dataclasses.replace(s, simp="".join(chars)))
    kept = []
    for sp in spans:  # a span never shows the blanked metadata: trimmed off its ends, or the span is dropped
        a, b = sp.a, sp.b
        while a < b and (blank[a] or chars[a] in "，,；; "):
            a += 1
        while b > a and (blank[b - 1] or chars[b - 1] in "，,；; "):
            b -= 1
        if a >= b or any(blank[a:b]):
            continue
        if (a, b) != (sp.a, sp.b):
            sp.a, sp.b, sp.text = a, b, s.simp[a:b]
            if sp.answer not in s.simp:  # built around the blanked text (a clause answer): rebuilt from the span
                sp.answer = _strip_clause(sp.text)
        sp.sentence = s
        kept.append(sp)
    return kept


def _answering_candidate(q: Question, hits: Sequence[Hit], cands: list[Span]) -> tuple[Span, str]:
    """The best of the ASKED_CANDIDATES best spans (`cands`, best first) whose composed answer passes the reader's
    check `rag.asked.unasked` (another year's, period's or kind of figure gives way to the next candidate); the best
    span when none does, or when a candidate's clause states the opposite of what was asked (新开业 for 关闭): the
    evidence then speaks of something else, and a figure further down does not answer either. Returns the span and
    what its answer fails to answer ("" when it answers)."""
    from rag.asked import states_opposite, unasked

    if q.kind == "yesno":
        return cands[0], ""
    first = ""
    for i, sp in enumerate(cands[:ASKED_CANDIDATES]):
        body, simp = compose(q, sp), sp.sentence.simp
        miss = unasked(q, body, simp, hits[sp.sentence.hit].chunk.title or "", counted=not sp.counts)
        if not miss:
            return sp, ""
        first = first or miss
        if states_opposite(q, body, simp):
            break
    return cands[0], first


def _extract_ranked(q: Question, hits: Sequence[Hit], ranked: list[Sentence], min_score: float) -> Extraction:
    """Typed spans from the ranker's best sentences; the answer is the span that best combines its sentence's ranker
    probability with how well the span fits the question; found when `rag.answerability` gives it `min_score`."""
    extractor = _EXTRACTORS.get(q.kind, extract_sentence)
    cands: list[Span] = []
    for s in ranked[:CANDIDATE_SENTENCES]:
        spans = _read(extractor, q, s)
        if not spans and q.kind in ("list", "where"):
            spans = [dataclasses.replace(sp, local=sp.local - 0.5) for sp in _read(extract_sentence, q, s)]
        if q.kind == "who":  # "由谁主办" is often answered by organisations: enumerations doing what was asked compete
            for sp in _read(extract_list, q, s):
                lo, hi = _clause_bounds(s.simp, sp.a, sp.b)
                if q.focus and q.focus in s.simp[lo:hi]:
                    spans.append(dataclasses.replace(sp, local=sp.local - 0.3))
        if q.which:  # 哪家银行, 哪个车站: the names ending in what is asked compete with the kind's own spans (a
            named = _read(extract_which, q, s)  # what-question's whole sentence gives way to them: a name is asked)
            spans = named + ([] if named and q.kind == "what" else spans)
        for sp in spans:
            sp.total = RANK_WEIGHT * s.score + sp.local
            cands.append(sp)
    if not cands:
        return Extraction(False, None, ranked, 0.0, f"no {q.kind} answer in the best sentences")
    cands.sort(key=lambda c: -c.total)
    best, miss = _answering_candidate(q, hits, cands)
    ex = Extraction(True, best, ranked, unasked=miss)
    p = probability(q, ex)
    ex.found, ex.support = p >= min_score, p
    ex.reason = "" if ex.found else f"the evidence answers with probability {p:.2f}, below {min_score:.2f}"
    return ex


# ---------------------------------------------------------------- composing


def _citation(number: int, hit: Hit, spans: list[tuple[int, int]]) -> Citation:
    ch = hit.chunk
    return Citation(number=number, doc_id=ch.doc_id, chunk_id=ch.chunk_id, title=ch.title, date=ch.date, source=ch.source,
                    passage=ch.text, spans=spans, score=float(hit.score))


def related_citations(hits: Sequence[Hit], sents: Sequence[Sentence], n: int = 3) -> list[Citation]:
    """The closest passages (each with its best sentence marked) for a not-found answer."""
    best_by_hit: dict[int, Sentence] = {}
    for s in sents:
        if s.hit not in best_by_hit or s.score > best_by_hit[s.hit].score:
            best_by_hit[s.hit] = s
    order = sorted(best_by_hit.values(), key=lambda s: -s.score)
    out = []
    for s in order[:n]:
        out.append(_citation(len(out) + 1, hits[s.hit], [(s.start, s.end)]))
    if not out:
        out = [_citation(i + 1, h, []) for i, h in enumerate(hits[:n])]
    return out


def _render(text: str, language: str) -> str:
    return to_traditional(text) if language == "zh-Hant" else text


def not_found_text(q: Question) -> str:
    if q.language == "en":
        return "The articles do not say. Closest passages are listed as related, not as support."
    subject = re.sub(r"[？?。!！\s]+$", "", q.standalone)
    text = f"资料中没有找到“{to_simplified(subject)}”的答案。下面列出的是最接近的段落，仅供参考。"
    return _render(text, q.language)


_MAGNITUDES = (("万亿", 10 ** 12), ("亿", 10 ** 8), ("万", 10 ** 4), ("千", 10 ** 3), ("百", 100))
_EN_UNITS = {"元": "yuan", "美元": "US dollars", "%": "%", "％": "%", "‰": "‰", "个百分点": "percentage points",
             "人次": "person-times", "人": "people", "名": "people", "位": "people", "户": "households", "吨": "tonnes",
             "亩": "mu", "平方公里": "km²", "平方米": "m²", "公里": "km", "千米": "km", "米": "m", "微米": "μm", "纳米": "nm",
             "倍": "times", "岁": "years old", "年": "years", "天": "days", "小时": "hours"}
_EN_APPROX = {"逾": "over", "超过": "over", "超": "over", "近": "nearly", "约": "about"}


def _en_amount(value: float) -> str:
    for size, word in ((10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million")):
        if value >= size:
            return f"{value / size:,.4g} {word}"
    return f"{value:,.10g}"


def english_figure(figure: str) -> str:
    """A Chinese figure in English ("11280万元" -> "112.8 million yuan", "30万人" -> "300,000 people", "8项" -> "8",
    "第6" -> "No. 6"); "" when it cannot be read (the caller then quotes the Chinese as is)."""
    m = _NUMBER_RE.fullmatch(figure.strip())
    if not m:
        return ""
    num = m.group("num").replace(",", "")
    unit = (m.group("mag") or "") + (m.group("unit") or "")
    scale = 1
    for zh, size in _MAGNITUDES:
        if unit.startswith(zh) and not (zh in ("千", "百") and unit in ("千米", "千元")):
            scale, unit = size, unit[len(zh):]
            break
    parts = re.split(r"\s*[-~～—至到]\s*", num)
    values: list[float] = []
    for part in parts:
        if re.fullmatch(r"\d+(?:\.\d+)?", part):
            values.append(float(part))
        elif (v := cn_numeral(part)) is not None:
            values.append(float(v))
        else:
            return ""
    text = "-".join(_en_amount(v * scale) if scale > 1 else f"{v:,.10g}" for v in values)
    unit2 = m.group("unit2") or ""
    en_unit = _EN_UNITS.get(unit, _EN_UNITS.get(unit2, "") if not unit or unit in _COUNT_CLASSIFIERS else None)
    if en_unit is None:  # a unit we cannot name in English
        return ""
    if en_unit in ("%", "‰"):
        text += en_unit
    elif en_unit:
        text += " " + en_unit
    if m.group("ord"):
        text = "No. " + text
    if m.group("mod") or m.group("mod2"):
        text = "more than " + text
    elif m.group("pre") in _EN_APPROX:
        text = f"{_EN_APPROX[m.group('pre')]} {text}"
    return text


_EN_LEAD = {"number": "The figure is {x}", "who": "The person is {x}", "when": "The date is {x}", "where": "The place is {x}",
            "list": "They are: {x}", "yesno": "The articles say", "what": "The articles say"}


def _denies(q: Question, simp: str) -> bool:
    """Whether the sentence answers a yes-no question with no: a negation in the clause that best matches the
    question, which the question itself does not have."""
    clauses = [c for c in _CLAUSE_SPLIT.split(simp) if c.strip()] or [simp]
    terms = q.terms if q.language != "en" else [z for g in q.glosses for z in g]
    best = max(clauses, key=lambda c: coverage(terms, c) if terms else 0.0)
    asked = q.simplified if q.language != "en" else ""
    return bool(_NEGATION.search(best)) and not _NEGATION.search(re.sub(r"是否|是不是|有没有|能不能|会不会", "", asked))


def compose(q: Question, span: Span) -> str:
    """The short answer text (without the citation marker) in the question's language/script."""
    body = span.answer or span.text
    if q.kind == "yesno":
        no = _denies(q, span.sentence.simp)
        if q.language != "en":
            body = ("不是。" if no else "是的。") + body
    if q.language == "en":
        x = span.text
        if q.kind == "number" and span.figure and (en := english_figure(span.figure)):
            converted = re.search(r"[万亿]", span.figure) or not re.search(r"\d", span.figure)
            x = f"{en} ({span.figure})" if converted else en  # a converted figure shows the Chinese beside it
        lead = _EN_LEAD.get(q.kind, "The articles say").format(x=x)
        if q.kind == "yesno":
            return f"{'No' if _denies(q, span.sentence.simp) else 'Yes'}. {lead}: {body}"
        if q.kind == "what":
            return f"{lead}: {body}"
        return f"{lead}. According to the article: {body}"
    return _render(body, q.language)


# ---------------------------------------------------------------- the asked quantity


@lru_cache(maxsize=1)
def measured_attributes() -> dict[str, tuple[str, ...]]:
    """Attribute word -> the units it is measured in (`rag/data/measured_attributes.txt`)."""
    out: dict[str, tuple[str, ...]] = {}
    for line in (DATA_DIR / "measured_attributes.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0]
        if ":" in line:
            words, units = line.split(":", 1)
            for w in words.split():
                out[w] = tuple(units.split())
    return out


def asked_measure(q: Any) -> tuple[str, ...]:
    """The units a Chinese number question's measured attribute takes (时速 -> 公里/小时, 千米/小时, …), or the units
    of the measure it names after 多少 (多少公里 -> 公里, 千米, km, …: every unit listed beside 公里); () if none."""
    if q.kind != "number" or q.language == "en":
        return ()
    simp = q.simplified or ""
    hit = max((w for w in measured_attributes() if w in simp), key=len, default="")
    if hit:
        return measured_attributes()[hit]
    m = _asked_unit_re().search(simp)
    if not m:
        return ()
    return tuple(dict.fromkeys(u for units in measured_attributes().values() if m.group(1) in units for u in units))


@lru_cache(maxsize=1)
def _asked_unit_re() -> re.Pattern[str]:
    """多少 / 几 (with a magnitude) before a unit of `measured_attributes.txt`: units of two or more characters, or one
    that `measure_words.txt` lists as a unit (米, 吨; not 节 or 度, which also count or grade)."""
    attributes = {u for us in measured_attributes().values() for u in us}
    units = [u for u in _measure_units() if u in attributes and (len(u) > 1 or u in measure_words().unit)]
    return re.compile(r"(?:多少|几)[万亿千百]*(" + alternation(units) + ")")


QUANTITY_LABELS = {"count": "count", "money": "amount of money", "measure": "figure in the unit of the asked measure"}


def asked_quantity(q: Any) -> str:
    """What kind of figure a number question asks for: "count" (几项, 多少家), "money" (多少亿元; in English, a
    question about funding, revenue, prize money...), "measure" (a measured attribute: 时速, 面积) or ""."""
    if q.kind != "number":
        return ""
    if q.language == "en":  # "how many fund products" counts things, whatever its words
        return "count" if q.quantity == "count" else "money" if asks_money(q) else ""
    if q.classifier in _COUNT_CLASSIFIERS:
        return "count"
    simp = q.simplified or ""  # 多少亿元 / 多少钱 / 多少亿？ ask an amount; 多少亿吨 asks a tonnage
    if (q.classifier == "元" or re.search(r"(?:多少|几)[万亿千百]*元|多少钱|(?:多少|几)[万亿]+(?![\u4e00-\u9fff])", simp)
            or asks_money(q)):  # 奖金是多少, 签约资金有多少: the attribute is money (rag/data/money_words.txt)
        return "money"
    return "measure" if asked_measure(q) else ""


@lru_cache(maxsize=1)
def _measure_units() -> tuple[str, ...]:
    """Units of measure (`measured_attributes.txt`, and the units of `measure_words.txt` but 元 and 倍), longest first."""
    units = {u for us in measured_attributes().values() for u in us} | (measure_words().unit - {"元", "倍"})
    return tuple(sorted(units, key=len, reverse=True))


def wrong_quantity(q: Any, body: str) -> str:
    """The kind of figure asked when the answer gives only another kind (52%, 3亿元 or 88万吨 for 几项; 7.6%, 41.25公里 or 70个
    for 多少亿元), or no figure at all; "" when the answer may be the asked quantity. (An English money question is not
    declined for a share: "how much did revenue grow" is answered by one.)"""
    asked = asked_quantity(q)
    if not asked:
        return ""
    from rag.llm import _CITE_RE, figures, normalize_numbers

    text = normalize_numbers(to_simplified(_CITE_RE.sub("", body)))
    given = set(re.findall(r"\d+(?:\.\d+)?", normalize_numbers(to_simplified(q.standalone or ""))))
    nums = [n for n in figures(text) if re.sub(r"[^\d.]", "", n.raw) not in given]  # not the question's own (11号线)
    if not nums:
        return asked
    currency = tuple(measure_words().currency)
    units = asked_measure(q) if asked == "measure" else ()
    others = tuple(a for a, u in measured_attributes().items() if u != units) if units else ()
    share = money = measured = in_unit = of_measure = 0
    for n in nums:
        after = text[n.start + len(n.raw):]
        written = (n.unit or "") + after.lstrip()  # the unit as written after the figure (亩 is taken with 1200)
        if others and text[max(0, n.start - 4):n.start].endswith(others):
            measured += 1  # another attribute's figure (全长41.25公里 for 时速, though 公里 measures both)
            continue
        if units and written.startswith((*units, "倍")):
            in_unit += 1  # the attribute's own unit, or a multiple of it
        if written.startswith(_measure_units()):
            of_measure += 1  # 88万吨, 41.25公里: a quantity measured in a unit, not a number of things
        if n.percent:
            share += 1
        elif n.unit == "元" or after.startswith(currency):
            money += 1
        elif n.unit is not None or re.match(r"[\u4e00-\u9fff]", after):
            measured += 1  # a figure of something else: a count or unit (70个, 9.7万人次) or a word after it (41.25公里)
    if asked == "count" and share + money + of_measure >= len(nums):
        return asked
    if asked == "money" and (measured == len(nums) or (q.language != "en" and share == len(nums))):
        return asked
    if asked == "measure" and not in_unit and measured + money == len(nums):
        return asked  # only figures of other things (9.7万人次 for a speed)
    return ""


_ROLE_NAMES = {"total": "in total", "average": "per day, year or head", "new": "newly added", "change": "of a rise or fall"}
_ROLE_MET = {"average": ("average",), "new": ("new", "change"), "change": ("change", "new")}  # 新增 answers 增加多少


def role_conflict(q: Any, simp: str, at: int) -> str:
    """How the figure at `at` of `simp` counts over something other than the question asks (`Question.roles`,
    `rag/data/figure_roles.txt`): its clause does not state the rate, addition or change asked (余额2.5万亿元 for 涨了
    多少, 累计23456件 for 平均一天多少; 10条属于新增 does), or, for a total, the clause states a rate or an addition
    before the figure (日均9.7万人次, 新增13家 for 累计/总共多少), or, for what a figure rose to (增长到多少), it is
    where it rose from (从2.6亿吨增长到3.15亿吨). "" when it may be the figure asked, or the question names no role."""
    asked = q.roles
    if not asked:
        return ""
    lo, hi = _clause_bounds(simp, at, at)
    stated, before = figure_roles(simp[lo:hi]), figure_roles(simp[lo:at])
    for role, met in _ROLE_MET.items():
        if role in asked and not any(r in stated for r in met):
            said = next(iter(stated.values()), "")
            return (f"the question asks for a figure {_ROLE_NAMES[role]} ({asked[role]})"
                    + (f"; the evidence's figure is {said}" if said else "; the evidence's figure is not stated so"))
    if "total" in asked and "total" not in stated:
        said = next((before[r] for r in ("average", "new") if r in before), "")
        if said:
            return f"the question asks for a figure in total ({asked['total']}); the evidence's figure is {said}"
    if "level" in asked and re.search(r"(?:从|由)[^\d，,；;。]{0,4}$", simp[lo:at]):
        return f"the question asks what the figure reached ({asked['level']}); the evidence's figure is where it started (从…)"
    return ""


def _respective_other(q: Question, simp: str, figure: str) -> bool:
    """Whether `figure` is the figure a 分别 enumeration of `simp` gives for another item than the question names."""
    from rag.llm import normalize_numbers

    return bool(respective_figure(q.simplified, normalize_numbers(simp), normalize_numbers(figure)))


_SENTENCE_SPLIT = re.compile(r"[。；;！？!?]")
_ITEM_SEP = re.compile(r"、|和|与|及|以及")
_VALUE_GAP = re.compile(r"\s*(?:、|和|与|及|以及|，|,)\s*")


def respective_figure(question: str, sentence: str, figure: str) -> str:
    """For a figure of a 分别 enumeration (户数和金额分别为92.1%和60.4%; 分别占我国和全球…的8%和5%), the figure given
    for the item the question names when that is another item ("60.4%" for 金额占比, given "92.1%"); "" otherwise.
    Items are told apart by their own ends (户数 | 金额: the words before 分别 share their head) or starts (我国 | 全球:
    the words after it share their tail). `question` and `sentence` simplified, figures as `normalize_numbers` writes."""
    from rag.llm import figures

    given = figures(figure)
    figure = given[0].raw if given else figure
    for m in re.finditer("分别", sentence):
        lo, hi = _clause_bounds(sentence, m.start(), m.end(), _SENTENCE_SPLIT)
        run: list[Any] = []
        for f in figures(sentence[m.end():hi]):  # the first run of two or more figures joined by 、/和/，
            if run and not _VALUE_GAP.fullmatch(sentence[m.end() + run[-1].start + len(run[-1].raw):m.end() + f.start]
                                                .rstrip("个项家件人次元%")):
                if len(run) >= 2:
                    break
                run = []
            run.append(f)
        if len(run) < 2 or figure not in [f.raw for f in run]:
            continue
        before = re.split(r"[，,：:]", sentence[lo:m.start()])[-1]
        after = sentence[m.end():m.end() + run[0].start]
        after = re.sub(r"^(?:为|是|达到?|占|有|约|增长|下降)", "", after)
        for text, tail in ((before, True), (after, False)):
            items = [t for t in _ITEM_SEP.split(text) if t]
            if len(items) != len(run):
                continue
            n = min(len(t) for t in items)
            if n < 2:
                continue
            keys = [t[-n:] if tail else t[:n] for t in items]
            named = [i for i, k in enumerate(keys) if k in question]
            if len(named) == 1 and len(set(keys)) == len(keys):
                right = run[named[0]].raw
                return right if right != figure else ""
    return ""


def answer_extractive(ev: Evidence, min_score: float = 0.0) -> tuple[Answer, Extraction]:
    """The extractive Answer for the ranked evidence `ev` of an analysed question (`rag.evidence.gather`)."""
    q, hits = ev.question, ev.hits
    ex = extract(ev, min_score)
    base = dict(question=q.original, standalone_question=q.standalone, language=q.language, kind=q.kind,
                notes=list(q.notes))
    if not ex.found or ex.span is None:
        ans = Answer(text=not_found_text(q), found=False, confidence=round(1.0 - ex.support * 0.5, 3),
                     related=related_citations(hits, ex.sentences), **base)
        if ex.reason:
            ans.notes.append(f"Not found: {ex.reason}.")
        return ans, ex
    s = ex.span.sentence
    cit = _citation(1, hits[s.hit], [(s.start, s.end)])
    text = f"{compose(q, ex.span)} [1]"
    conf = max(0.05, min(1.0, 0.4 + 0.6 * ex.support))
    return Answer(text=text, found=True, confidence=round(conf, 3), citations=[cit], **base), ex
