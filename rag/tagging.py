"""jieba part-of-speech tags, computed once per text: when a chunk goes into the index (`rag.store.Index.add`, beside
its embedding; stored in `Chunk.tags`), on demand (and cached) for anything else.

    tags = encode_tags(chunk.text_simplified)          # "2ns 1v 3n …": each word's length and tag, in order
    words = seed(chunk.text_simplified, chunk.tags)    # the chunk and its lines are now tagged, without jieba
    seed_sentence(chunk.text_simplified, words, a, b)  # so is the sentence text[a:b]
    pos_tokens("西宁对接会签约59个项目")                 # [("西宁", "ns"), ("对接会", "n"), …]

jieba tags each run of Han, Latin and digit characters on its own (`jieba.posseg.re_han_internal`), so the words of a
whole chunk, cut at a sentence boundary that lies between such runs, are exactly the words of that sentence tagged
alone. A boundary inside a run is not seeded: that sentence is tagged on demand, as before.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache

from cachetools import LRUCache

from rag.script import han_count

CACHE_SIZE = 50_000  # tagged texts kept per process: the same sentences are read for question after question
_RUN_CHAR = re.compile(r"[\u4E00-\u9FD5a-zA-Z0-9+#&._]")  # jieba.posseg.re_han_internal, one character
_TAG = re.compile(r"(\d+)([a-z]+)")
DECODED_SIZE = 5_000  # chunks whose stored tags are kept decoded
_CACHE: LRUCache = LRUCache(maxsize=CACHE_SIZE)
_DECODED: LRUCache = LRUCache(maxsize=DECODED_SIZE)
_LOCK = threading.Lock()

Tokens = tuple[tuple[str, str], ...]


@lru_cache(maxsize=1)
def jieba_modules():
    """(jieba, jieba.posseg), initialised once per process (dictionary load ~0.7 s)."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba, jieba.posseg


def _raw(text: str) -> list[tuple[str, str]]:
    return [(w, f) for w, f in jieba_modules()[1].cut(text)]


def _split_aspect(toks: list[tuple[str, str]]) -> Tokens:
    """A noun glued to a following 了/过/着 is split: its last character is the verb (完成了 → 完成 + 了)."""
    out: list[tuple[str, str]] = []
    for i, (w, f) in enumerate(toks):
        nxt = toks[i + 1][0] if i + 1 < len(toks) else ""
        if nxt in ("了", "过", "着") and f.startswith("n") and len(w) >= 2 and han_count(w) == len(w):
            out += [(w[:-1], f), (w[-1], "v")]
        else:
            out.append((w, f))
    return tuple(out)


def pos_tokens(text: str) -> list[tuple[str, str]]:
    """jieba words with part-of-speech tags; a noun glued to a following 了/过/着 is split (its last char is the verb)."""
    with _LOCK:
        toks = _CACHE.get(text)
    if toks is None:
        toks = _split_aspect(_raw(text))
        with _LOCK:
            _CACHE[text] = toks
    return list(toks)


def encode_tags(text: str) -> str:
    """The raw jieba tags of `text` as "len+tag" per word, space-separated ("2ns 3n 1x"): the words are `text` cut
    by those lengths, so nothing of the text is stored twice."""
    return " ".join(f"{len(w)}{f}" for w, f in _raw(text) if w)


def decode_tags(text: str, tags: str) -> list[tuple[int, str, str]] | None:
    """(start, word, tag) for every word of `encode_tags(text)`; None when `tags` does not fit `text` (a stale or
    damaged field is ignored, never trusted)."""
    out, pos = [], 0
    for m in _TAG.finditer(tags or ""):
        n = int(m.group(1))
        out.append((pos, text[pos : pos + n], m.group(2)))
        pos += n
    return out if tags and pos == len(text) else None


def _run_boundary(text: str, i: int) -> bool:
    """Whether jieba tags text[:i] and text[i:] independently (i is not inside a run of Han/Latin/digit characters,
    nor inside a \\r\\n pair)."""
    if i <= 0 or i >= len(text):
        return True
    if text[i - 1] == "\r" and text[i] == "\n":
        return False
    return not (_RUN_CHAR.match(text[i - 1]) and _RUN_CHAR.match(text[i]))


def seed(text: str, tags: str) -> list[tuple[int, str, str]] | None:
    """Decode the tags stored for `text` (a chunk's simplified text) and seed the cache with `text` itself and each of
    its lines (a newline always ends a run); returns the decoded words, for `seed_sentence`, or None if `tags` does not
    fit. Each text is decoded once per process while it stays in DECODED_SIZE."""
    if not tags:
        return None
    with _LOCK:
        if text in _DECODED:
            return _DECODED[text]
    words = decode_tags(text, tags)
    if words:
        a = 0
        for line in text.split("\n"):
            seed_sentence(text, words, a, a + len(line))
            a += len(line) + 1
        seed_sentence(text, words, 0, len(text))
    with _LOCK:
        _DECODED[text] = words
    return words


def seed_sentence(text: str, words: list[tuple[int, str, str]] | None, a: int, b: int) -> bool:
    """Put the tags of text[a:b] into the cache from the decoded tags of the whole `text`, where that is exact;
    returns whether it was seeded."""
    if not words or not (_run_boundary(text, a) and _run_boundary(text, b)):
        return False
    piece = text[a:b]
    with _LOCK:
        if piece in _CACHE:
            return True
    toks = [(w, f) for start, w, f in words if a <= start < b]
    if "".join(w for w, _ in toks) != piece:
        return False
    with _LOCK:
        _CACHE[piece] = _split_aspect(toks)
    return True
