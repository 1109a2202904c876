"""Sentence splitting for Chinese (and mixed) text, and sentence-aware chunking with exact character offsets.

A sentence ends at 。！？；!?; (runs of them), an ellipsis (… or ...), a line break, or an English full stop followed by
whitespace; closing quotes and brackets right after the end stay with their sentence. ASCII '.', '%', '-', ',' and
digits never end a sentence, so numbers such as 8.5%, 11280万元, 4.5微米, 2024.11.2 or 12-13 are never split.
"""
from __future__ import annotations

import re

from rag.records import Chunk, Document
from rag.script import to_simplified

_CLOSERS = "”’」』）)】》〕］]\"'"
_CANDIDATE = re.compile(r"[。！？；!?;…\n.]")  # cheap scan; the rules below decide which candidates end a sentence
_RUN = re.compile(r"(?:[。！？；!?;]+|…+|\.{3,}|\.)[" + re.escape(_CLOSERS) + r"]*")
_EN_STOP_BEFORE = re.compile(r"[A-Za-z0-9%)]")
# places inside an over-long sentence where a cut reads naturally (after a comma-like mark)
_SOFT = re.compile(r"[，,、：:—]+[" + re.escape(_CLOSERS) + r"]*")
_NUMERIC = re.compile(r"[0-9０-９.．%％,，:/\-]")  # characters that continue a number (1,280 / 8.5% / 2024/11/2)
_LATIN = re.compile(r"[A-Za-z0-9]")


def _trimmed(text: str, a: int, b: int) -> tuple[int, int] | None:
    """[a, b) without surrounding whitespace, or None when nothing is left."""
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return (a, b) if a < b else None


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans `[start, end)` into `text` (whitespace-only spans dropped, surrounding whitespace trimmed)."""
    spans: list[tuple[int, int]] = []
    start = pos = 0
    n = len(text)
    for m in _CANDIDATE.finditer(text):
        i = m.start()
        if i < pos:
            continue  # inside a run already consumed
        ch = text[i]
        if ch == "\n":
            end = i + 1
        elif ch == "." and not text.startswith("...", i) and not (
            i > 0 and _EN_STOP_BEFORE.match(text[i - 1]) and i + 1 < n and text[i + 1].isspace()
        ):
            continue  # 8.5 / 2024.11.2 / example.com: not a sentence end
        else:
            end = _RUN.match(text, i).end()
        span = _trimmed(text, start, end)
        if span:
            spans.append(span)
        start = pos = end
    span = _trimmed(text, start, n)
    if span:
        spans.append(span)
    return spans


def _safe_cut(text: str, lo: int, cut: int) -> int:
    """Move a hard cut left so it does not fall inside a number or a Latin word (stays > lo)."""
    c = cut
    while c > lo + 1 and (
        (_NUMERIC.match(text[c - 1]) and _NUMERIC.match(text[c]) and (text[c - 1].isdigit() or text[c].isdigit()))
        or (_LATIN.match(text[c - 1]) and _LATIN.match(text[c]))
    ):
        c -= 1
    return c if c > lo + 1 else cut


def _split_long(text: str, a: int, b: int, size: int) -> list[tuple[int, int]]:
    """Split one over-long sentence at commas/、 (packing pieces up to `size`), or hard at `size` as a last resort."""
    pieces: list[tuple[int, int]] = []
    start = a
    for m in _SOFT.finditer(text, a, b):
        if m.end() < b:
            pieces.append((start, m.end()))
            start = m.end()
    pieces.append((start, b))
    # pack comma pieces up to size; hard-cut any single piece that is still too long
    out: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for p0, p1 in pieces:
        while p1 - p0 > size:
            if cur:
                out.append(cur)
                cur = None
            cut = _safe_cut(text, p0, p0 + size)
            out.append((p0, cut))
            p0 = cut
        if cur and p1 - cur[0] <= size:
            cur = (cur[0], p1)
        else:
            if cur:
                out.append(cur)
            cur = (p0, p1)
    if cur:
        out.append(cur)
    return [s for s in (_trimmed(text, x, y) for x, y in out) if s]


def chunk_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """`[start, end)` spans of chunks: whole sentences packed up to ~`size` chars, overlapping by whole trailing
    sentences of up to ~`overlap` chars."""
    size = max(1, size)
    units: list[tuple[int, int]] = []
    for a, b in split_sentences(text):
        units.extend(_split_long(text, a, b, size) if b - a > size else [(a, b)])
    spans: list[tuple[int, int]] = []
    cur: list[tuple[int, int]] = []
    for u in units:
        if cur and u[1] - cur[0][0] > size:
            spans.append((cur[0][0], cur[-1][1]))
            # overlap: trailing whole sentences of the chunk just closed (never all of it, so we always advance)
            keep: list[tuple[int, int]] = []
            for prev in reversed(cur[1:]):
                if cur[-1][1] - prev[0] > overlap or u[1] - prev[0] > size:
                    break
                keep.insert(0, prev)
            cur = keep
        cur.append(u)
    if cur:
        spans.append((cur[0][0], cur[-1][1]))
    return spans


def chunk_document(doc: Document, size: int, overlap: int) -> list[Chunk]:
    """Sentence-aware chunks of `doc.text`; `chunk.text == doc.text[start:end]`, title/date/source copied from `doc`."""
    text = doc.text
    same = doc.text_simplified == text  # already simplified: slicing is exact and saves an OpenCC call per chunk
    chunks = []
    for n, (a, b) in enumerate(chunk_spans(text, size, overlap)):
        piece = text[a:b]
        simp = piece if same else to_simplified(piece)
        chunks.append(
            Chunk(
                chunk_id=f"{doc.doc_id}:{n}",
                doc_id=doc.doc_id,
                text=piece,
                text_simplified=simp,
                start=a,
                end=b,
                title=doc.title,
                date=doc.date,
                source=doc.source,
            )
        )
    return chunks
