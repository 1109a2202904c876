"""Whether a grounded answer answers what was asked, for both readers: the kind of figure (a count, an amount, a
measure in its units), a date for "when" (not only the article's dateline), more than a date or a count for
who/where/which, the role asked (理事长, not 副主任 for 主任), the event asked (the sentence holding the answer names
the 决赛 asked about), the year asked (not a figure the sentence states for another year), what the figure counts over
(累计 asked, 日均 given), not its opposite (开业 for 关闭), and not only the question's own words. Word lists:
`rag/data/time_words.txt`, `role_titles.txt`, `event_suffixes.txt`, `measured_attributes.txt`, `measure_words.txt`,
`periods.txt`, `figure_roles.txt`, `opposites.txt`.
A question asking for names (叫什么名字) gets one: a proper noun, title or quoted name.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from rag.answering import (QUANTITY_LABELS, _clause_bounds, _role_phrase, _whole_name, coverage, respective_figure,
                            role_conflict, role_holders, venues, wrong_quantity)
from rag.cleaning import DATELINE
from rag.evidence import YEAR_RE, key_years, split_passage
from rag.llm import _CITE_RE, figures, normalize_numbers
from rag.question import role_title
from rag.script import (DATA_DIR, alternation, figure_roles, fold_width, labelled_words, measure_words, names_time,
                        time_pattern, to_simplified)
from rag.tagging import pos_tokens

_WHICH_ZH = re.compile(r"哪一?[个家所座条项款支位种部间]")  # 哪个场馆, 哪家企业: one thing is asked for, by name
_NAME_ZH = re.compile(r"叫什么|什么名|名字|名称|简称|全称")  # …分别叫什么名字: names are asked for
_NAME_TAGS = ("nr", "nrfg", "nrt", "ns", "nt", "nz", "j")  # jieba's proper nouns and abbreviations


def unasked(q: Any, body: str, snippet: str, title: str, counted: bool = True) -> str:
    """How a grounded answer fails to answer what was asked, as a note ("" when it does not): it only repeats the
    question, gives another kind of figure, names no date for "when", comes from a sentence about another event or
    year, names no holder of the role asked, or (`counted`) counts something else. The extractive reader passes
    counted=False for a span its own typing tied to the counted thing (by noun, measure word or verb)."""
    if _only_repeats(body, q):
        return "The answer only repeats words of the question."
    asked = wrong_quantity(q, body)
    if asked:
        return f"The answer gives no {QUANTITY_LABELS[asked]}, which the question asks for."
    if q.kind == "when" and not names_time(body):
        return "The answer names no date or time, which the question asks for."
    plain = _plain(body)  # the answer as the evidence writes it
    if q.kind == "when" and _dateline_only(plain, snippet):
        return "The answer's date is the article's dateline (when it was filed), not when what was asked happened."
    only = _figure_only(q, plain)
    if only:
        return f"The answer gives only a {only}; the question asks which one."
    event = _event_missing(q, plain, snippet, title)
    if event:
        return f"The evidence sentence holding the answer does not name the {event} the question asks about."
    context = figure_context(q, plain, snippet, counted)[1]
    if context:
        return context
    kind_of_money = _money_unqualified(q, plain, snippet)
    if kind_of_money:
        return f"The evidence sentence holding the answer's figure does not say it is the {kind_of_money} asked."
    opposite = _opposite_stated(q, plain, snippet)
    if opposite:
        return f"The evidence states the answer's figure for {opposite[1]}, the opposite of the {opposite[0]} asked."
    if _names_nothing(q, plain):
        return "The answer names nothing the question does not, and the question asks for a name."
    role = _role_missing(q, snippet)
    if role:
        return f"The evidence cited does not say who is {role}."
    holders = role_holders_named(q, snippet)
    if holders and not any(name in plain for name, _ in holders):
        return f"The evidence cited names {'、'.join(n for n, _ in holders)} as holding the role asked, not the answer's person."
    return ""


def _plain(body: str) -> str:
    return normalize_numbers(to_simplified(_CITE_RE.sub("", body))).strip(" 。.")


def states_opposite(q: Any, body: str, snippet: str) -> bool:
    """The clause of the answer's figure states only the opposite of what was asked (see `_opposite_stated`)."""
    return _opposite_stated(q, _plain(body), snippet) is not None


def _only_repeats(body: str, q: Any) -> bool:
    """The answer adds nothing to the question (全球 for 全球呢？, 2030年 for 那2030年呢？): its word characters stand,
    in a row, in the question or in the previous one it follows up (天津银行 answers 天津首单…由哪家银行). (A yes/no
    answer may well repeat the question, and so may the option chosen in an either-or question: 增加还是减少 -> 减少.)"""
    if q.kind == "yesno" or "还是" in (q.simplified or ""):
        return False
    def plain(t: str) -> str:
        return "".join(c for c in to_simplified(t).lower() if c.isalnum())
    chars = plain(body)
    return bool(chars) and any(chars in plain(t) for t in (q.normalized, q.standalone, q.previous) if t)


def _asks_identity(q: Any) -> bool:
    """Whether the question asks who, where or which (a name, a place, the things of a list), not a figure or date."""
    if q.kind in ("who", "where", "list"):
        return True
    if q.kind != "what":
        return False
    if q.language == "en":
        return bool(re.match(r"\W*(?:[\w'-]+\W+){0,6}?which\b", q.standalone, re.I))
    return bool(_WHICH_ZH.search(q.simplified or ""))


def _names_nothing(q: Any, plain: str) -> bool:
    """A question asking for names (…分别叫什么名字, 产品名称是什么) answered with no proper noun, title, quoted name or
    Latin name that the question does not already give (两家企业分别于2018年、2019年承担…项目 names neither firm)."""
    if q.language == "en" or q.kind not in ("what", "list") or not _NAME_ZH.search(q.simplified or ""):
        return False
    if re.search(r"《[^》]+》|“[^”]+”|「[^」]+」|[A-Za-z]{2,}", plain):
        return False
    question = to_simplified(q.standalone or "")
    return not any(f in _NAME_TAGS and w not in question for w, f in pos_tokens(plain))


def _figure_only(q: Any, plain: str) -> str:
    """For a who/where/which question, "date" when the answer is only a date or time, besides the question's own words
    (11月 for 在哪个场馆举行, 于今年12月在厦门举行 for 厦门…在哪个场馆举行), "count"
    when it is only a count of what the question names (现场签约项目11个 for 签约项目是哪个: no project is named);
    "" otherwise. A count beside names (北京、上海等五座城市) is an answer. `plain`: the answer as `unasked` normalises it."""
    if not _asks_identity(q):
        return ""
    plain = fold_width(plain)
    if not plain:
        return ""
    question = normalize_numbers(to_simplified(q.standalone))
    rest = re.sub(r"^[在于是为]|(?:举行|举办|召开)$", "", time_pattern().sub("", plain))
    letters = re.sub(r"[\W\d_]", "", rest)
    bare = re.sub(r"[在于是为将已]", "", letters)  # function characters around a date and a place (将于…在)
    if len(letters) <= 1 or (len(_unshared(bare, question)) <= 1 and time_pattern().search(plain)):
        return "date"  # a date, with only the question's own words (于今年12月在厦门举行 for 厦门…在哪个场馆举行)
    counts = [f for f in figures(plain) if f.unit in _PLAIN_COUNTS and f.raw not in question]
    if not counts:
        return ""
    rest = plain
    for f in counts:
        rest = rest.replace(f.raw, "")
    return "count" if len(_unshared(re.sub(r"[\W\d_]", "", rest), question)) <= 2 else ""


_COUNTS = measure_words().count
_PLAIN_COUNTS = _COUNTS - {"届", "期", "次", "级"}  # 第3届, 第2期: ordinals that name, not counts


def _unshared(text: str, question: str) -> str:
    """`text` without the runs of 2+ characters it shares with the question (现场签约项目 -> 现场 for …签约项目是哪个)."""
    out, i = [], 0
    while i < len(text):
        j = i + 2
        while j <= len(text) and text[i:j] in question:
            j += 1
        if j - 1 - i >= 2:
            i = j - 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _dateline_only(plain: str, snippet: str) -> bool:
    """Whether the day (or month) a when-answer (`plain`, normalised as `unasked` gives it) gives stands in the evidence
    only in a dateline (新华社海口8月2日电, 深圳新闻网8月11日讯: the day the report was filed, not the day of the event it
    reports; `rag.cleaning.DATELINE`)."""
    text = normalize_numbers(to_simplified(snippet))
    if not DATELINE.search(text):
        return False
    keys = re.findall(r"(?<!\d)\d{1,2}[日号]", plain) or re.findall(r"(?<!\d)\d{1,2}月", plain)
    rest = DATELINE.sub(" ", text)
    return bool(keys) and not any(re.search(r"(?<!\d)" + re.escape(k), rest) for k in keys)


def _event_missing(q: Any, ans: str, snippet: str, title: str) -> str:
    """For a when/where question about an event (决赛, 开幕式), the event when no sentence of the cited evidence that
    holds the answer names it: 7月21日 is the date of the press conference, not of the final. "" when it does, or when
    the answer (`ans`, normalised as `unasked` gives it) is not written out in any sentence (nothing to judge)."""
    if not q.event:
        return ""
    sentences = [snippet[a:b] for a, b in split_passage(snippet)] + [title]
    holding = [t for t in map(to_simplified, sentences) if ans and ans in normalize_numbers(t)]
    return "" if not holding or any(q.event in t for t in holding) else q.event


@lru_cache(maxsize=1)
def _opposites() -> dict[str, tuple[str, ...]]:
    """word -> its opposites (`rag/data/opposites.txt`, both ways), in file order (so a note names the same one each
    run)."""
    out: dict[str, list[str]] = {}
    for line in (DATA_DIR / "opposites.txt").read_text(encoding="utf-8").splitlines():
        pair = line.split("#", 1)[0].split()
        if len(pair) == 2:
            out.setdefault(pair[0], []).append(pair[1])
            out.setdefault(pair[1], []).append(pair[0])
    return {w: tuple(dict.fromkeys(o)) for w, o in out.items()}


def _opposite_stated(q: Any, ans: str, snippet: str) -> tuple[str, str] | None:
    """(the word asked, its opposite) when the clause of the answer's figure states only the opposite of what the
    question asks (新开业酒店70家 for 关闭了多少家酒店); None otherwise, and for yes/no and either-or (还是) questions.
    `ans`: the answer as `unasked` normalises it."""
    question = to_simplified(q.standalone or "")
    if q.kind == "yesno" or q.language == "en" or "还是" in question:
        return None
    asked = [w for w in _opposites() if w in question]
    nums = figures(ans)
    found = _sentence_at(snippet, [nums[0].raw]) if asked and nums else None
    if found is None:
        return None
    lo, hi = _clause_bounds(*found, found[1])
    clause = found[0][lo:hi]
    for w in asked:
        other = next((o for o in _opposites()[w] if o in clause and o not in question), "")
        if other and w not in clause:
            return w, other
    return None


def _other_year(q: Any, ans: str, snippet: str) -> str:
    """For a question naming a year (到2025年…多少家), the other year stated nearest before the answer in its evidence
    sentence (2030年，各类创新平台3000家以上): the figure of another year is no answer; "" when the year agrees, none
    precedes the answer, or the answer is not found written out."""
    years = {y.split(":", 1)[1] for y in key_years(q)}
    if not years:
        return ""
    nums = figures(ans)
    found = _sentence_at(snippet, [nums[0].raw] if nums else [ans])
    if found is None:
        return ""
    year = _year_before(*found)
    return year if year and year not in years else ""


def _money_unqualified(q: Any, plain: str, snippet: str) -> str:
    """For a Chinese question asking a kind of money (一等奖奖金, 宣传费: a money word of `rag/data/money_words.txt` after
    what makes it that money), that money when the sentence holding the answer's figure does not say it (总奖金高达1550万元
    for 一等奖奖金是多少); "" otherwise."""
    from rag.answering import _money_words, asks_money
    from rag.question import content_terms

    if q.language == "en" or q.kind != "number" or not asks_money(q):
        return ""
    focus = q.focus or q.counted
    m = _money_words()[0].search(focus)
    qualifier = focus[: m.start()] if m else ""
    terms = [t for t in content_terms(qualifier) if len(t) >= 2] if len(qualifier) >= 2 else []
    nums = figures(plain)
    # every sentence stating the figure (盈利约41.8亿元 and 股东应占利润…41.8亿元)
    holding = [x for x, _ in _sentences_holding(snippet, [nums[0].raw if nums else plain])]
    if not terms or not holding:
        return ""
    return focus if all(coverage(terms, x) < 0.5 for x in holding) else ""


def _year_before(sentence: str, at: int) -> str:
    """The year stated nearest before `at` in `sentence`, not as a comparison base (较2022年同期); "" for none."""
    before = [m.group(1) for m in YEAR_RE.finditer(sentence[:at])
              if not re.match(r"年?(?:同期|相比|水平)", sentence[m.end():])
              and not (m.start() and sentence[m.start() - 1] in "比较与")]
    return before[-1] if before else ""


def figure_context(q: Any, plain: str, snippet: str, counted: bool = True) -> tuple[str, str]:
    """("year" | "period" | "role" | "counted", a note) when the answer's figure, where its evidence states it, is a
    figure of something else than asked: of another year, another part of the year, counted over another role (日均 for
    累计), or (`counted`) a count of another thing (64家企业 for 多少个项目); ("", "") when it is not. `plain`: the answer
    as `unasked` normalises it. Another figure of the same evidence may be the one asked (`other_figure`)."""
    year = _other_year(q, plain, snippet)
    if year:
        return "year", f"The evidence gives the answer's figure for {year}, not for the year the question asks about."
    period = _other_period(q, plain, snippet)
    if period:
        return "period", (f"The evidence gives the answer's figure for {period}, not for the part of the year the "
                          "question asks about.")
    role = _other_role(q, plain, snippet)
    if role:
        return "role", f"The answer's figure does not count what is asked: {role}."
    thing = _uncounted(q, plain, snippet) if counted else ""
    return ("counted", f"The answer gives no figure of {thing}, which the question asks for.") if thing else ("", "")


def _sentences_holding(snippet: str, anchors: list[str]) -> Iterator[tuple[str, int]]:
    """Each evidence sentence (simplified, figures normalised) that holds one of `anchors`, with where the first anchor
    it holds stands."""
    for a, b in split_passage(snippet):
        sentence = normalize_numbers(to_simplified(snippet[a:b]))
        at = next((i for i in (sentence.find(x) for x in anchors if x) if i >= 0), -1)
        if at >= 0:
            yield sentence, at


def _sentence_at(snippet: str, anchors: list[str]) -> tuple[str, int] | None:
    """The first evidence sentence that holds one of `anchors` (`_sentences_holding`); None when none does."""
    return next(_sentences_holding(snippet, anchors), None)


@lru_cache(maxsize=1)
def _periods() -> tuple[re.Pattern[str], dict[str, str]]:
    """The parts of a year (`rag/data/periods.txt`) as one pattern, longest form first, and form -> label."""
    label = {f.lower(): lab for lab, ws in labelled_words("periods.txt").items() for w in ws
             for f in (w, normalize_numbers(w))}  # 第二季度 is read as 第2季度
    return re.compile(alternation(list(label)), re.I), label


def _other_period(q: Any, ans: str, snippet: str) -> str:
    """For a question naming a part of a year (全年, 上半年, 二季度, first half), the other part named nearest before
    the answer's figure in its evidence sentence (上半年完成…114.34亿元 for 2022年全年…多少亿元); "" when they agree,
    none precedes the figure, or the question names none."""
    asked = _asked_periods(q)
    nums = [n.raw for n in figures(ans)]
    if not asked or not nums:
        return ""
    found = _sentence_at(snippet, nums)  # any figure of the answer: 114.34亿元, not 11.434 billion
    if found is None:
        return ""
    form, part = _period_before(*found)
    return form if form and part not in asked else ""


def _asked_periods(q: Any) -> set[str]:
    pattern, label = _periods()
    question = normalize_numbers(to_simplified(q.standalone or q.original or ""))
    return {label[m.group().lower()] for m in pattern.finditer(question)}


def _period_before(sentence: str, at: int) -> tuple[str, str]:
    """The part of the year named nearest before `at` in `sentence`: (as written, its label); ("", "") for none."""
    pattern, label = _periods()
    before = list(pattern.finditer(sentence[:at]))
    return (before[-1].group(), label[before[-1].group().lower()]) if before else ("", "")


def _other_role(q: Any, ans: str, snippet: str) -> str:
    """For a question asking a figure in total, per day, newly added, as a rise or what it rose to (`Question.roles`),
    how the answer's figures, where its evidence sentence states them, all count over something else
    (`rag.answering.role_conflict`)."""
    if not q.roles:
        return ""
    conflicts = []
    for n in figures(ans):  # one figure of the answer that counts what is asked answers it (从2.6亿吨增长到3.15亿吨)
        found = _sentence_at(snippet, [n.raw])  # a figure not written in the evidence (2.54 million) is not judged
        if found:
            conflicts.append(role_conflict(q, *found))
            if not conflicts[-1]:
                return ""
    return conflicts[0] if conflicts else ""


def respective(q: Any, body: str, snippet: str) -> tuple[str, str] | None:
    """(the answer's figure, the one its evidence gives for the item asked) when the answer took the figure of another
    item of a 分别 enumeration (户数和金额分别为92.1%和60.4%: 92.1% for 金额占比); None otherwise."""
    plain = normalize_numbers(to_simplified(_CITE_RE.sub("", body)))
    question = normalize_numbers(to_simplified(q.standalone or ""))
    for n in figures(plain):
        found = _sentence_at(snippet, [n.raw])
        right = respective_figure(question, found[0], n.raw) if found and "分别" in found[0] else ""
        if right:
            return n.raw, right
    return None


_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:[时:：]\d+分?)?[万亿]*[^\d\s，,。；;、：:（）()\[\]]{0,2}")
_CLAUSE = re.compile(r"[^，,；;。！？!?]+")
_A_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}年")


def venue(q: Any, body: str, snippet: str) -> tuple[str, str] | None:
    """(the answer's place, the place its clause says the thing asked about is held in) for a where-question whose
    answer is another place of that clause: in 西安高新区系列活动——…建设会议在西安高新国际会议中心举办, the meeting is held
    in the latter; the former says whose series it belongs to. None when the answer is (part of) that place or holds
    it, or the clause says no one place is where it is held. Not for which-questions (哪个城市 asks a kind of place)."""
    if q.kind != "where" or q.which:
        return None
    plain, text = _plain(body), to_simplified(snippet)
    at = text.find(plain) if plain else -1
    if at < 0:
        return None
    own = next((m for m in _CLAUSE.finditer(text) if m.start() <= at < m.end()), None)
    if own is None:
        return None
    held = {own.group()[a:b] for a, b in venues(own.group())}
    if len(held) != 1:
        return None
    place = held.pop()
    return None if place in plain or plain in place else (plain, place)


def better_clause(q: Any, body: str, snippet: str, margin: float) -> tuple[str, str] | None:
    """(the answer's figure or time, the one of the same form in another clause of its evidence snippet) when that
    clause says much more of what the question asks (its terms, IDF-weighted, `margin` more) and every term the
    answer's clause says (其中昌平有22个 is not replaced by 全国…217个 for 昌平有多少个): 16时55分从重庆北站始发
    for 几点从重庆北站始发, not 17时22分经停重庆西站; 科技型中小企业贷款余额2.36万亿元, not 高技术制造业…2.5万亿元.
    None when the answer's clause is as good, or the better clause holds no single figure of that form. Chinese
    number and when questions only (English ones match Chinese clauses through loose glosses)."""
    if q.language == "en" or q.kind not in ("number", "when") or not q.terms:
        return None
    tok, form = _figure_form(body)
    if not tok:
        return None
    sentence = normalize_numbers(to_simplified(snippet))  # the whole cited snippet: ； may end its sentences
    at = sentence.find(tok)
    if at < 0:
        return None
    asked = normalize_numbers(to_simplified(q.standalone or ""))
    own = next((m for m in _CLAUSE.finditer(sentence) if m.start() <= at < m.end()), None)
    if own is None:
        return None
    best, best_cov = None, coverage(q.terms, own.group()) + margin
    kept = [t for t in q.terms if t in own.group()]  # what the answer's clause says of the question stays said
    for m in _CLAUSE.finditer(sentence):
        hits = _same_form(form, m.group(), asked)
        if m.start() == own.start() or len(hits) != 1 or not all(t in m.group() for t in kept):
            continue
        cov = coverage(q.terms, m.group())
        if cov >= best_cov and not role_conflict(q, sentence, m.start() + m.group().find(hits[0])):
            best, best_cov = hits[0], cov
    return (tok, best) if best and best != tok else None


def _figure_form(body: str) -> tuple[str, re.Pattern[str] | None]:
    """The answer's first figure or time as the evidence would write it (normalised), and the pattern of figures of its
    written form (N万人次, N时N分); ("", None) for none, or for a year (the question's time frame, not a pick)."""
    plain = normalize_numbers(to_simplified(_CITE_RE.sub("", body)))
    tok = _TOKEN.search(plain)
    if tok is None or _A_YEAR.search(tok.group()):
        return "", None
    return tok.group(), re.compile("".join(r"\d+(?:\.\d+)?" if i % 2 else re.escape(p)
                                           for i, p in enumerate(re.split(r"(\d+(?:\.\d+)?)", tok.group()))))


def _same_form(form: re.Pattern[str], clause: str, asked: str) -> list[str]:
    """The figures of `form` in `clause` that are neither the question's own nor years."""
    return [h.group() for h in form.finditer(clause) if h.group() not in asked and not _A_YEAR.search(h.group())]


def _states_asked(q: Any, dimension: str, sentence: str, at: int) -> bool:
    """Whether `sentence` states the figure at `at` for the year, part of the year or role (`dimension`) asked (in the
    sentence holding it: `sentence` may be a snippet of several)."""
    start = max(sentence.rfind(c, 0, at) for c in "。！？!?") + 1
    sentence, at = sentence[start:], at - start
    if dimension == "year":
        return _year_before(sentence, at) in {y.split(":", 1)[1] for y in key_years(q)}
    if dimension == "period":
        return _period_before(sentence, at)[1] in _asked_periods(q)
    if dimension == "counted":
        return True  # `unasked` checks what the figure counts
    lo, hi = _clause_bounds(sentence, at, at)
    return bool(set(figure_roles(sentence[lo:hi])) & set(q.roles)) and not role_conflict(q, sentence, at)


def other_figure(q: Any, body: str, evidence: list[tuple[str, str]], dimension: str) -> tuple[str, str, int] | None:
    """(the answer's figure, the evidence clause stating the one figure in the same unit (any measure word of a count,
    for a count of another thing) that answers what was asked, the index of the `evidence` (snippet, title) it is in)
    when the answer's figure is one of another year, part of the year, role or counted thing (`figure_context`): 3000家
    stated for 2030 when 到2025年…多少家 is asked and the evidence says 到2025年…2600家; 12场 when 多少个城市 is asked
    and the evidence says 9个地市. A candidate's sentence must state it for the year, part of the year or role asked
    (`dimension`, the check the answer failed), it must pass every check of `unasked` in its own snippet, and its
    clause must say at least as much of the question (IDF-weighted terms) as the answer's; None when no figure does, or
    two different ones do equally well. Chinese number questions only (English ones match Chinese clauses through
    loose glosses)."""
    if q.language == "en" or q.kind != "number" or not q.terms:
        return None
    plain = normalize_numbers(to_simplified(_CITE_RE.sub("", body)))
    given = next((f for f in figures(plain) if not _A_YEAR.fullmatch(f.raw)), None)
    if given is None:
        return None
    asked = normalize_numbers(to_simplified(q.standalone or ""))
    texts = [normalize_numbers(to_simplified(text)) for text, _ in evidence]
    own = next((m.group() for t in texts for m in _CLAUSE.finditer(t) if given.raw in m.group()), "")
    floor = coverage(q.terms, own) if own else 0.0
    scored: dict[str, tuple[float, str, int]] = {}  # candidate figure -> (coverage, its clause, evidence index)
    for i, ((text, title), sentence) in enumerate(zip(evidence, texts)):
        for m in _CLAUSE.finditer(sentence):
            hits = [f for f in figures(m.group()) if f.raw != given.raw and f.raw not in asked
                    and not _A_YEAR.fullmatch(f.raw) and f.percent == given.percent
                    and (f.unit == given.unit or (dimension == "counted" and f.unit in _COUNTS))]
            if (len(hits) != 1 or not _states_asked(q, dimension, sentence, m.start() + hits[0].start)
                    or unasked(q, hits[0].raw, text, title)):
                continue
            cov = coverage(q.terms, m.group())
            if cov >= floor and cov > scored.get(hits[0].raw, (-1.0, "", 0))[0]:
                scored[hits[0].raw] = (cov, m.group().strip(), i)
    ranked = sorted(scored.values(), key=lambda v: -v[0])
    if not ranked or (len(ranked) > 1 and ranked[1][0] == ranked[0][0]):
        return None  # none, or two figures say as much: no pick
    return given.raw, ranked[0][1], ranked[0][2]


def _role_missing(q: Any, snippet: str) -> str:
    """For a who-question that names a role, the role when the cited evidence does not state it: a person the evidence
    mentions for something else is no answer. English: none of the role's Chinese glosses (mayor, chairman) is in the
    evidence. Chinese: the role title (`rag/data/role_titles.txt`: 理事长, 主任, 作者; `rag.question.role_title`) is
    not, or only as its deputy (副主任 for 主任)."""
    if q.kind != "who":
        return ""
    simp = to_simplified(snippet)
    if q.language == "en":
        roles = [g for g in q.glosses if g and not any(z in to_simplified(q.standalone) for z in g)]
        return "" if not roles or any(any(z in simp for z in g) for g in roles) else "/".join(roles[0][:2])
    role = role_title(q)
    if not role:
        return ""
    held = any(simp[max(0, m.start() - 1):m.start()] != "副" for m in re.finditer(re.escape(role), simp))  # 副主任: another role
    return "" if held else role


def role_holders_named(q: Any, snippet: str) -> list[tuple[str, str]]:
    """For a who-question, the people the evidence names as holding the role asked (`rag.answering.role_holders`:
    首席经济学家蒲小川, not 首席科学家雷丙旺 beside it for 首席经济学家是谁), each with its role phrase as the answer
    (延长石油集团首席经济学家蒲小川), in the order the evidence names them."""
    if q.kind != "who":
        return []
    simp = to_simplified(snippet)
    out: dict[str, str] = {}
    for (a, b), end in sorted(role_holders(q, simp).items()):
        a, b = _whole_name(simp, a, b)
        out.setdefault(simp[a:b], simp[a:end] if end is not None else simp[_role_phrase(simp, a):b])
    return list(out.items())


def _uncounted(q: Any, body: str, snippet: str) -> str:
    """For a count question (签了多少个项目), the counted thing when no clause of the cited evidence that holds the
    answer's figure names it (64家企业 answers another count); "" when one does or nothing is counted."""
    if q.kind != "number" or q.language == "en" or not q.counted or len(q.counted) < 2:
        return ""
    simp, ans = to_simplified(snippet), normalize_numbers(to_simplified(body))
    numbers = set(re.findall(r"\d+(?:\.\d+)?", ans))
    if not numbers or re.search(r"[元%％]", ans):  # an amount or a share: no counted thing to name
        return ""
    if q.classifier and q.classifier != "个" and re.search(r"\d[万亿]?" + re.escape(q.classifier), ans):
        return ""  # counted with the question's own measure word (52.6万户 for 多少户人家): the thing asked for
    for clause in re.split(r"[，,；;。！？!?]", normalize_numbers(simp)):
        if any(f in re.findall(r"\d+(?:\.\d+)?", clause) for f in numbers):
            if q.counted in clause or q.counted[-2:] in clause or q.counted in ans:
                return ""
            # the figure counts a word with the counted noun's head (9个地市 for 多少个城市: a 地市 is a 市)
            head = re.escape(q.counted[-1])
            if any(re.search(r"(?<![\d.])" + re.escape(f) + r"[万亿]?[^\d\W]?[\u4e00-\u9fff]{0,2}" + head, clause)
                   for f in numbers):
                return ""
    return q.counted
