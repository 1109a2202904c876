"""Lexical retrieval: jieba tokens of simplified text, BM25 (bm25s), pinyin so English names reach Han words.

Index side, every Han word of two or more characters, and every pair of adjacent Han words of up to four
characters, also yields its toneless pinyin as an extra token (`西宁` -> `py:xining`, 中|光学 -> `py:zhongguangxue`).
Query side, an English word that spells whole pinyin syllables yields the same kind of token for itself and for
every run of two or more of its syllables (`Zhongguangxue` -> `py:zhongguangxue`, `py:zhongguang`, `py:guangxue`),
so "Xining" reaches 西宁 and "Xi'an" reaches 西安.
"""
from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.errors import IndexError_
from rag.script import fold_width, to_simplified
from rag.tagging import jieba_modules, pos_tokens

PINYIN_PREFIX = "py:"

# Function words and question words only: content words (召开, 举行, 今年...) carry meaning in news questions.
ZH_STOPWORDS = frozenset(
    "的 了 着 是 在 和 与 及 或 等 也 都 就 还 又 而 并 被 把 将 让 给 对 向 从 于 以 为 之 其 该 此 这 那 这个 那个 "
    "个 些 吗 呢 吧 啊 呀 嘛 么 哪 哪些 哪个 哪里 哪儿 哪天 哪一天 什么 多少 几 几个 谁 如何 怎么 怎样 怎么样 为什么 是否 "
    "请问 一下 有没有 是不是 我 你 他 她 它 我们 你们 他们 有 没有".split()
)

_POSSESSIVE_RE = re.compile(r"(?<=[A-Za-z])['\u2019]s\b")  # Zone's -> Zone
_SEP_RE = re.compile(r"(?<=[A-Za-z])['\u2019](?=[A-Za-z])")  # Xi'an -> Xian (apostrophes inside a word)
_HAN_RE = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
_LATIN_RE = re.compile(r"^[a-z]+$")


@lru_cache(maxsize=1)
def _english_stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    """All toneless pinyin syllables pypinyin knows (~415), `ü` written `v` like pypinyin's NORMAL style."""
    from pypinyin.pinyin_dict import pinyin_dict

    readings = {r for value in set(pinyin_dict.values()) for r in value.split(",")}  # ~1,500 tone-marked readings
    out: set[str] = set()
    for r in readings:
        base = unicodedata.normalize("NFD", r).replace("u\u0308", "v")  # ü (with or without tone) -> v
        base = "".join(c for c in base if not unicodedata.combining(c))
        if base.isascii() and base.isalpha() and any(v in base for v in "aeiouv"):  # not m, n, ng, hm
            out.add(base.lower())
    return frozenset(out)


@lru_cache(maxsize=200_000)
def _pinyin(word: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(word))


def _split_syllables(word: str) -> list[str] | None:
    """Split a Latin word into pinyin syllables (fewest syllables wins); None if it is not pinyin."""
    syl = _syllables()
    n = len(word)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for i in range(n):
        if best[i] is None:
            continue
        for j in range(min(n, i + 6), i, -1):  # the longest syllable (zhuang) has 6 letters
            piece = word[i:j]
            if piece in syl:
                cand = best[i] + [piece]
                if best[j] is None or len(cand) < len(best[j]):
                    best[j] = cand
    return best[n]


# English words that start sentences or titles and happen to spell pinyin syllables; not names (the short ones are also
# common syllables of names, so a question's capitalised word is dropped as English only when it has 5+ letters: China)
ENGLISH_PINYIN_WORDS = {
    "a", "an", "the", "he", "she", "we", "you", "i", "it", "its", "his", "her", "me", "no", "yes", "on", "in", "an",
    "and", "or", "but", "to", "of", "for", "by", "as", "at", "is", "be", "can", "man", "men", "pen", "ban", "fan",
    "long", "hang", "gang", "ran", "tie", "die", "lie", "pie", "dean", "sun", "tan", "pan", "bang", "gun", "nun",
    "ten", "chin", "china", "chinese", "hen", "bun", "ma", "pa", "la", "ha", "da", "ta", "ya", "wan", "wen", "zen",
    "mao", "hui", "shen", "hun", "rue", "sue", "hue", "cue", "due", "dun", "fun", "run", "sung", "hung", "rung",
    "lung", "bin", "din", "fin", "gin", "pin", "sin", "tin", "win", "yin", "kin", "ping", "ding", "ming", "king",
    "sing", "ring", "wing", "zing", "ling", "hong", "kong", "song", "dong", "tong", "bong", "pong", "gong", "jun",
}


# conventional romanizations that are not Hanyu Pinyin spellings of the name (Shaanxi is 陕西, shǎnxī)
ROMANIZATIONS = {"shaanxi": "shanxi", "tsinghua": "qinghua", "peking": "beijing", "tibet": "xizang",
                 "canton": "guangzhou", "macau": "aomen", "macao": "aomen", "amoy": "xiamen", "hongkong": "xianggang"}


def pinyin_names(text: str) -> list[str]:
    """Capitalised words of an English text, past the first word, that spell pinyin syllables (Xining, Xi'an,
    Zhongguangxue), lower-cased without apostrophes: the names an English question gives that Chinese text can spell."""
    words = re.findall(r"[A-Za-z][A-Za-z'\u2019\-]*", text)
    out: list[str] = []
    for i, w in enumerate(words):
        if i == 0 or not w[0].isupper():
            continue
        k = re.sub(r"['\u2019\-]", "", re.sub(r"['\u2019]s$", "", w)).lower()
        k = ROMANIZATIONS.get(k, k)
        if len(k) >= 3 and _split_syllables(k) is not None and k not in out and not (len(k) >= 5 and k in ENGLISH_PINYIN_WORDS):
            out.append(k)
    return out


@lru_cache(maxsize=20_000)
def _word_pinyins(text: str) -> frozenset[str]:
    """Pinyin spellings of the words of `text`, line by line (`_line_pinyins`)."""
    out: set[str] = set()
    for line in to_simplified(text).split("\n"):
        out |= _line_pinyins(line)
    return frozenset(out)


@lru_cache(maxsize=50_000)
def _line_pinyins(line: str) -> frozenset[str]:
    """Pinyin spellings of the jieba words of one line (its POS words, tagged at ingest for indexed text) and of runs
    of up to three of them; a 3+ character word also without its last character, so 南阳市 answers to "Nanyang".
    A name must match whole words: "Xi'an" is 西安, not 先进."""
    toks = [t for t, _ in pos_tokens(line) if t and _HAN_RE.match(t)]
    pys = [_pinyin(t) for t in toks]
    out: set[str] = set()
    for i in range(len(toks)):
        acc = ""
        for j in range(i, min(i + 3, len(toks))):
            acc += pys[j]
            out.add(acc)
        if len(toks[i]) >= 3:
            out.add(_pinyin(toks[i][:-1]))
    return frozenset(out)


def name_coverage(names: list[str] | tuple[str, ...], text: str) -> float:
    """Share of `names` (pinyin spellings from `pinyin_names`) spelled by whole words of the Chinese `text`."""
    if not names:
        return 0.0
    pys = _word_pinyins(text)
    return sum(1 for n in names if n in pys) / len(names)


def _keep(tok: str) -> bool:
    if not tok or tok in ZH_STOPWORDS or tok in _english_stopwords():
        return False
    if not any(ch.isalnum() for ch in tok):  # punctuation, symbols
        return False
    return not (len(tok) == 1 and tok.isascii() and tok.isalpha())  # stray Latin letters (R&D -> r, d)


def _segment(text: str) -> tuple[list[str], list[str]]:
    """(search-mode tokens kept, all precise words) of the normalised text, from one jieba pass.

    Search mode is jieba's own `cut_for_search` rule: each precise word, preceded by its 2- and 3-character parts that
    are dictionary words (科技成果 -> 科技, 成果, 科技成果).
    """
    text = _SEP_RE.sub("", _POSSESSIVE_RE.sub("", to_simplified(fold_width(text)))).lower()
    jb, _ = jieba_modules()
    freq = jb.dt.FREQ
    words = [w.strip() for w in jb.lcut(text)]
    out: list[str] = []
    for w in words:
        if len(w) > 2:
            out.extend(w[i : i + 2] for i in range(len(w) - 1) if freq.get(w[i : i + 2]))
        if len(w) > 3:
            out.extend(w[i : i + 3] for i in range(len(w) - 2) if freq.get(w[i : i + 3]))
        out.append(w)
    return [t for t in out if _keep(t)], words


def _base_tokens(text: str) -> list[str]:
    return _segment(text)[0]


def tokenize(text: str) -> list[str]:
    """Index-side tokens: jieba search-mode words of the simplified, width-folded, lower-cased text without
    punctuation and stopwords, plus `py:<pinyin>` for every Han word of two or more characters and for every pair of
    adjacent Han words (a name jieba splits, 中|光学 -> `py:zhongguangxue`)."""
    toks, words = _segment(text)
    extra = [PINYIN_PREFIX + _pinyin(t) for t in toks if len(t) >= 2 and _HAN_RE.match(t)]
    for a, b in zip(words, words[1:]):
        if _HAN_RE.match(a) and _HAN_RE.match(b) and len(a) + len(b) <= 4 and _keep(a) and _keep(b):
            extra.append(PINYIN_PREFIX + _pinyin(a + b))
    return toks + extra


def tokenize_query(text: str, pinyin: bool = True) -> list[str]:
    """Query-side tokens: the same words as `tokenize` (without pinyin of Han words), and for each English word
    that spells pinyin syllables, `py:` tokens for the word and for each run of two or more of its syllables."""
    toks = _base_tokens(text)
    if not pinyin:
        return toks
    extra: list[str] = []
    for t in toks:
        if not _LATIN_RE.match(t) or len(t) < 3:
            continue
        syl = _split_syllables(ROMANIZATIONS.get(t, t))
        if not syl:
            continue
        runs = {"".join(syl)}
        for i in range(len(syl)):
            for j in range(i + 2, len(syl) + 1):
                runs.add("".join(syl[i:j]))
        extra.extend(PINYIN_PREFIX + r for r in sorted(runs, key=len, reverse=True))
    return toks + extra


class LexicalIndex:
    """BM25 (bm25s, Lucene variant) over `tokenize` tokens, rows 0..n-1 in insertion order.

    Keeps each row's token ids so rows can be added and removed without re-tokenizing (the BM25 matrix is
    rebuilt from ids, which is fast); `search` scores every row and takes the top k among `allowed_rows`.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        self._rows: list[np.ndarray] = []
        self._bm25 = None
        self._idf: np.ndarray = np.zeros(0, dtype=np.float32)
        self._stale = False  # rows changed since the BM25 matrix was built (rebuilt on the next search or save)

    def __len__(self) -> int:
        return len(self._rows)

    # -------------------------------------------------------------- building

    def build(self, texts: list[str]) -> "LexicalIndex":
        """Index these texts from scratch (row i = texts[i])."""
        self.vocab, self._rows = {}, []
        return self.add(texts)

    def add(self, texts: list[str], tokens: list[list[str]] | None = None) -> "LexicalIndex":
        """Append rows (tokenizing `texts`, or using pre-computed `tokens`); the BM25 matrix is rebuilt lazily."""
        for toks in tokens if tokens is not None else (tokenize(t) for t in texts):
            ids = [self.vocab.setdefault(t, len(self.vocab)) for t in toks]
            self._rows.append(np.asarray(ids, dtype=np.int32))
        self._stale = True
        return self

    def remove(self, rows: list[int] | np.ndarray) -> None:
        """Delete rows; later rows shift down (like list deletion)."""
        drop = set(int(r) for r in rows)
        if drop:
            self._rows = [r for i, r in enumerate(self._rows) if i not in drop]
            self._compact_vocab()
            self._stale = True

    def _compact_vocab(self) -> None:
        """Drop the words no remaining row uses (a removed document's terms leave the vocabulary) and renumber."""
        used = np.unique(np.concatenate(self._rows)) if self._rows else np.zeros(0, np.int32)
        if len(used) == len(self.vocab):
            return
        remap = np.full(len(self.vocab), -1, dtype=np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        self._rows = [remap[r] for r in self._rows]
        words = sorted(self.vocab, key=self.vocab.__getitem__)
        self.vocab = {words[i]: j for j, i in enumerate(used.tolist())}

    def _rebuild(self) -> None:
        """Recompute the BM25 (Lucene) matrix from the rows' token ids, vectorised with numpy.

        bm25s's own `index()` computes the same matrix in Python loops: 8-17 s at 100k chunks against ~1.5 s here
        (bench/bench_lexical.py), which every incremental add would pay. Scoring and top-k stay bm25s's.
        """
        n, nv = len(self._rows), len(self.vocab)
        self._bm25, self._stale = None, False
        self._idf = np.zeros(nv, dtype=np.float32)
        if n == 0:
            return
        self._bm25, self._idf = _bm25_matrix(self._rows, nv, self.k1, self.b)

    @staticmethod
    def _idf_of(df: np.ndarray, n: int) -> np.ndarray:
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)

    # -------------------------------------------------------------- search

    def query_ids(self, query: str | list[str]) -> tuple[list[int], int]:
        """Token ids of the query's known tokens and how many of its tokens are unknown to the index."""
        toks = tokenize_query(query) if isinstance(query, str) else query
        known = [self.vocab[t] for t in toks if t in self.vocab]
        return known, len(toks) - len(known)

    def scores(self, query: str | list[str]) -> tuple[np.ndarray, float]:
        """BM25 score of every row, and the query's best possible score (sum of its tokens' idf; unknown tokens
        count as the rarest), which bounds the score: score / max is how much of the query a row covers."""
        if self._stale:
            self._rebuild()
        n = len(self._rows)
        ids, unknown = self.query_ids(query)
        if n == 0:
            return np.zeros(0, dtype=np.float32), 0.0
        max_idf = float(self._idf_of(np.array([0.0]), n)[0])
        upper = float(self._idf[ids].sum()) + unknown * max_idf
        if not ids:
            return np.zeros(n, dtype=np.float32), upper
        return self._bm25.get_scores([int(i) for i in ids]), upper

    def search(
        self, query: str | list[str], k: int, allowed_rows: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top-k (row, BM25 score) with score > 0, best first; `allowed_rows` (bool mask or row ids) restricts rows."""
        s, _ = self.scores(query)
        return top_k(s, k, allowed_rows)

    # -------------------------------------------------------------- persistence

    def save(self, folder: str | Path) -> None:
        """Write vocabulary, per-row token ids and the BM25 matrix into `folder` (created)."""
        if self._stale:
            self._rebuild()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        words = sorted(self.vocab, key=self.vocab.__getitem__)
        (folder / "vocab.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
        lens = np.array([len(r) for r in self._rows], dtype=np.int64)
        flat = np.concatenate(self._rows) if self._rows else np.zeros(0, np.int32)
        np.save(folder / "row_lengths.npy", lens)
        np.save(folder / "token_ids.npy", flat.astype(np.int32))
        if self._bm25 is not None:
            sc = self._bm25.scores
            np.savez(folder / "bm25.npz", data=sc["data"], indices=sc["indices"], indptr=sc["indptr"],
                     num_docs=np.array(sc["num_docs"]), idf=self._idf, params=np.array([self.k1, self.b]))

    @classmethod
    def load(cls, folder: str | Path) -> "LexicalIndex":
        """Read what `save` wrote; raises IndexError_ when files are missing or damaged."""
        folder = Path(folder)
        try:
            words = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
            lens = np.load(folder / "row_lengths.npy")
            flat = np.load(folder / "token_ids.npy")
            if int(lens.sum()) != len(flat):
                raise ValueError("token ids do not match row lengths")
            self = cls()
            self.vocab = {w: i for i, w in enumerate(words)}
            self._rows = np.split(flat, np.cumsum(lens)[:-1]) if len(lens) else []
            if len(lens):
                z = np.load(folder / "bm25.npz")
                self.k1, self.b = (float(x) for x in z["params"])
                self._bm25 = _bm25s_from_arrays(z["data"], z["indices"], z["indptr"], int(z["num_docs"]))
                self._idf = z["idf"]
                if int(z["num_docs"]) != len(self._rows) or len(z["indptr"]) != len(words) + 1:
                    raise ValueError("BM25 matrix does not match the token ids")
        except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as e:
            raise IndexError_(f"lexical index in {folder} is damaged ({e})") from e
        return self


def _bm25s_from_arrays(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, num_docs: int):
    """A bm25s.BM25 scorer over a precomputed CSC matrix (rows = tokens' postings, as bm25s stores it)."""
    import bm25s

    bm = bm25s.BM25(method="lucene")
    bm.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": num_docs}
    bm.vocab_dict, bm.nonoccurrence_array, bm.unique_token_ids_set = {}, None, set()
    return bm


def _bm25_matrix(rows: list[np.ndarray], n_vocab: int, k1: float, b: float):
    """bm25s's Lucene BM25 matrix (score of token t in row d = idf_t * tf / (tf + k1 * (1 - b + b * len_d / avg)))."""
    n = len(rows)
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.concatenate(rows).astype(np.int64) if lens.sum() else np.zeros(0, np.int64)
    doc = np.repeat(np.arange(n, dtype=np.int64), lens)
    keys, tf = np.unique(flat * n + doc, return_counts=True)  # sorted by token, then row
    tok, row = keys // n, keys % n
    df = np.bincount(tok, minlength=n_vocab)
    idf = LexicalIndex._idf_of(df.astype(np.float64), n)
    avg = max(float(lens.mean()), 1e-9)
    data = idf[tok] * tf / (tf + k1 * (1 - b + b * lens[row] / avg))
    indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    return _bm25s_from_arrays(data.astype(np.float32), row.astype(np.int32), indptr, n), idf


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(row, score) of the k highest positive scores, best first; `allowed` is a bool mask or an array of rows."""
    if allowed is not None:
        mask = np.zeros(len(scores), dtype=bool)
        if allowed.dtype == bool:
            mask[: len(allowed)] = allowed[: len(scores)]
        else:
            mask[allowed[allowed < len(scores)]] = True
        scores = np.where(mask, scores, 0.0)
    k = min(k, int((scores > 0).sum()))
    if k <= 0:
        return []
    idx = np.argpartition(-scores, k - 1)[:k]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [(int(i), float(scores[i])) for i in idx]
