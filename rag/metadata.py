"""Document metadata: title, publish date (ISO 8601, never guessed), source/outlet, script, and the content-hash id."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date as _date
from typing import Any

from rag.chunking import split_sentences
from rag.cleaning import DATE_RX
from rag.script import detect_script, to_simplified

_ISO = re.compile(r"^\s*((?:19|20)\d{2})-(\d{2})-(\d{2})(?:[T ].*)?$")
_COMPACT = re.compile(r"^\s*((?:19|20)\d{2})(\d{2})(\d{2})\s*$")
_TITLE_MAX = 64  # a headline line is at most this long
_TITLE_END_BAD = "。；;，,：:、"
_FALLBACK_TITLE = 48


@dataclass
class Metadata:
    """What an article says about itself."""

    title: str
    date: str | None
    source: str | None
    url: str | None = None
    script: str = "simplified"
    extra: dict[str, Any] = field(default_factory=dict)
    body_simplified: str = ""  # the body in simplified script (computed for script detection; reused by the caller)


def parse_date(value: str | None) -> str | None:
    """ISO `YYYY-MM-DD` from a date string (2024-04-11 14:37, 2024/11/2, 2024年11月2日, 2024.11.2, 20241102);
    None when the string has no complete, valid year-month-day."""
    if not value:
        return None
    value = str(value)
    m = _ISO.match(value) or _COMPACT.match(value) or DATE_RX.search(value)
    if not m:
        return None
    try:
        return _date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


def _clean_field(value: Any) -> str | None:
    if value is None:
        return None
    s = re.sub(r"\s+", " ", str(value)).strip(" \t:：-|·")
    return s or None


def _headline(line: str) -> bool:
    """A first line that reads as a headline: short, not ending like a clause, with some words in it."""
    s = line.strip()
    return (4 <= len(s) <= _TITLE_MAX and s[-1] not in _TITLE_END_BAD and "。" not in s[:-1]
            and sum(ch.isalnum() for ch in s) >= 4)


def split_title(text: str) -> tuple[str | None, str]:
    """(headline, body) when the text starts with a headline line followed by more text; else (None, text)."""
    first, sep, rest = text.partition("\n")
    if sep and rest.strip() and _headline(first):
        return first.strip(), rest.lstrip("\n")
    return None, text


def fallback_title(text: str) -> str:
    """The first sentence of some substance (>= 8 characters; without its end mark), shortened to ~48 characters,
    for articles with no headline."""
    spans = split_sentences(text[:400])
    if not spans:
        return ""
    a, b = next(((a, b) for a, b in spans if b - a >= 8), spans[0])
    s = text[a:b].rstrip("。！？；!?;…")
    return s if len(s) <= _FALLBACK_TITLE else s[:_FALLBACK_TITLE].rstrip() + "…"


def doc_id_for(text: str) -> str:
    """Stable document id: the first 16 hex characters of the SHA-256 of the cleaned text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def extract_metadata(text: str, fields: dict[str, Any], header: dict[str, str] | None = None) -> tuple[Metadata, str]:
    """Metadata from the file's own fields (JSON/HTML), the header fields found while cleaning and the text.

    Returns the metadata and the body text: a headline first line becomes the title and leaves the body.
    Dates come only from fields, headers and datelines, never from event dates inside the body.
    """
    header = header or {}
    title = _clean_field(fields.get("title")) or _clean_field(header.get("title"))
    headline, body = split_title(text)
    if headline:
        title = title or headline
        if title != headline and not _same_title(title, headline):
            body = text  # the first line is not the title we have: keep it in the body
    title = title or _clean_field(header.get("original_title")) or fallback_title(body)
    date = parse_date(fields.get("date")) or parse_date(header.get("date"))
    source = _clean_field(fields.get("source")) or _clean_field(header.get("source"))
    extra = {k: v for k, v in fields.items() if k not in ("title", "date", "source", "url", "id")}
    extra.update({f"header_{k}": v for k, v in header.items() if k not in ("title", "date", "source")})
    if fields.get("id") is not None:
        extra["id"] = fields["id"]
    simplified = to_simplified(body)
    meta = Metadata(title=title, date=date, source=source, url=_clean_field(fields.get("url")),
                    script=detect_script(body, simplified), extra=extra, body_simplified=simplified)
    return meta, body


def _same_title(a: str, b: str) -> bool:
    norm = lambda s: re.sub(r"[\s\W_]+", "", s)  # noqa: E731
    return norm(a) == norm(b) or norm(a) in norm(b) or norm(b) in norm(a)
