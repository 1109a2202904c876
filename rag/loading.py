"""Loading articles from disk: files, folders (recursive) and globs of .txt .md .html/.htm .json .jsonl, each optionally
gzipped. Encodings are detected (UTF-8 with/without BOM, UTF-16/32 with BOM, UTF-16 without BOM, GB18030/GBK, Big5, ...) with charset-normalizer;
HTML main text is extracted with trafilatura. A file that cannot be read becomes a `LoadFailure` with the reason.
"""
from __future__ import annotations

import glob
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from rag.errors import InputError
from rag.records import RawDocument

FORMATS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
           ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TEXT_KEYS = ("text", "content", "body")  # the article text: the first of these that is a non-empty string
KNOWN_KEYS = ("id", "title", "date", "source", "url")
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
# charset-normalizer names -> the codec we decode with (GB18030 is the superset of GB2312/GBK; cp950 of Big5)
_CANONICAL = {"gb2312": "gb18030", "gbk": "gb18030", "gb18030": "gb18030", "hz": "gb18030", "big5": "big5",
              "cp950": "cp950", "big5hkscs": "big5hkscs", "utf_8": "utf-8", "ascii": "utf-8"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SNIFF = 1 << 20  # bytes sampled to detect the encoding of a streamed JSON-lines file


@dataclass
class LoadFailure:
    """A file (or one line of a JSON-lines file) that could not be read, and why."""

    path: str
    reason: str


def _fmt(path: Path) -> tuple[str | None, bool]:
    """(format, gzipped) from the file name: `a.jsonl.gz` -> ("jsonl", True)."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    return (FORMATS.get(suffixes[-1]) if suffixes else None), gz


def is_supported(path: Path) -> bool:
    return _fmt(path)[0] is not None


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path | LoadFailure]:
    """Files named by `paths`: files as given, folders recursively (supported types only), glob patterns expanded."""
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and is_supported(f)
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not files:
                yield LoadFailure(str(path), "folder contains no .txt/.md/.html/.json/.jsonl files")
            yield from files
        elif path.is_file():
            yield path
        elif glob.has_magic(str(p)):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True))
            files = [m for m in matches if m.is_file() and is_supported(m)]
            for m in matches:
                if m.is_dir():
                    yield from expand_paths([m])
            if not matches:
                yield LoadFailure(str(p), "no file matches this pattern")
            yield from files
        else:
            yield LoadFailure(str(p), "no such file or folder")


def _plausible(text: str) -> bool:
    """Decoded text that is mostly printable (not binary read as some 8-bit code page)."""
    sample = text[:20000]
    return len(_CONTROL.findall(sample)) <= max(2, len(sample) // 1000)


def decode_bytes(data: bytes) -> tuple[str, str]:
    """(text, encoding). UTF-8 is preferred whenever it decodes cleanly; raises InputError for binary/unknown."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(enc)
            except UnicodeDecodeError as e:
                raise InputError(f"starts with a {enc.upper()} byte-order mark but does not decode as {enc}: {e.reason}")
            return text.lstrip("\ufeff"), enc.replace("-sig", "")
    if b"\x00" in data[:65536]:
        utf16 = _utf16_without_bom(data)
        if utf16 is not None:
            return utf16
        raise InputError("binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # UTF-8 with a few corrupt bytes (a truncated download, a bad copy): keep it UTF-8, the bad bytes become U+FFFD
    # (removed by cleaning) instead of re-reading the whole file in some legacy code page
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if bad * 500 <= len(data) and _plausible(text):  # at most one bad spot per 500 bytes
        return text, "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200000] if len(data) > 200000 else data).best()
    guess = _CANONICAL.get(best.encoding, best.encoding) if best is not None else None
    # Chinese text: charset-normalizer can confuse GBK and Big5 on short input; decide by how common the characters are
    scored = []
    for enc in dict.fromkeys([e for e in (guess, "gb18030", "big5") if e]):
        text = _try_decode(data, enc)
        if text is not None and _plausible(text):
            scored.append((_commonness(text), enc == "gb18030", enc, text))
    han = [sc for sc in scored if sc[0] is not None]
    if han:
        score, _, enc, text = max(han, key=lambda sc: (sc[0], sc[1]))
        if score >= 0.5:
            return text, enc
    elif guess and any(enc == guess for _, _, enc, _ in scored):  # no Han at all (e.g. Latin-1 text)
        return next((text, enc) for _, _, enc, text in scored if enc == guess)
    utf16 = _utf16_without_bom(data, need_nul=False)  # all-Chinese UTF-16 has no NUL bytes to give it away
    if utf16 is not None:
        return utf16
    raise InputError("unknown encoding: not UTF-8, UTF-16, GB18030/GBK or Big5 (is it a binary file?)")


def _utf16_without_bom(data: bytes, need_nul: bool = True) -> tuple[str, str] | None:
    """(text, "utf-16-le"/"utf-16-be") for UTF-16 written without a byte-order mark, told by where its NUL bytes sit
    (the high byte of ASCII characters: odd offsets for little-endian) or, without NULs, by decoding to common Chinese
    characters; None when it is not UTF-16. Raises InputError when it looks like UTF-16 but does not decode."""
    sample = data[:65536]
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    if need_nul:
        enough = max(2, len(sample) // 200)  # ASCII (a newline, a digit) at least every ~100 characters
        if odd >= enough and not even:
            encs = ["utf-16-le"]
        elif even >= enough and not odd:
            encs = ["utf-16-be"]
        else:
            return None
    else:
        encs = ["utf-16-le", "utf-16-be"]
    for enc in encs:
        body = data[: len(data) - len(data) % 2]
        try:
            text = body.decode(enc)
        except UnicodeDecodeError as e:
            if need_nul:
                raise InputError(f"looks like UTF-16 without a byte-order mark ({enc}) but does not decode: {e.reason}")
            continue
        if not _plausible(text):
            continue
        score = _commonness(text)
        if (need_nul and (score is None or score >= 0.5)) or (score is not None and score >= 0.8):
            return text, enc
    return None


def _try_decode(data: bytes, enc: str) -> str | None:
    try:
        return data.decode(enc)
    except (UnicodeDecodeError, LookupError):
        return None


def _commonness(text: str) -> float | None:
    """Share of Han characters among the 3,755 most common ones (GB2312 level 1, after OpenCC t2s); None if no Han."""
    from rag.script import to_simplified

    han = [ch for ch in to_simplified(text[:3000]) if "\u4e00" <= ch <= "\u9fff"]
    if not han:
        return None
    common = 0
    for ch in han:
        try:
            b = ch.encode("gb2312")
        except UnicodeEncodeError:
            continue
        common += 0xB0 <= b[0] <= 0xD7
    return common / len(han)


def _read_bytes(path: Path, gz: bool) -> bytes:
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise InputError(f"cannot read file: {e}") from None


def _article(obj: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(text, fields) of one JSON article object; InputError when it has no usable text."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object with a 'text' field, got {type(obj).__name__}")
    text = next((obj[k] for k in TEXT_KEYS if isinstance(obj.get(k), str) and obj[k].strip()), None)
    if text is None:
        raise InputError(f"{where}: no non-empty 'text' field")
    fields = {k: v for k, v in obj.items() if k not in TEXT_KEYS and v not in (None, "")}
    for k in KNOWN_KEYS:
        if k in fields and not isinstance(fields[k], str):
            fields[k] = str(fields[k])
    return text, fields


def _html(text: str) -> tuple[str, dict[str, Any]]:
    import trafilatura

    doc = trafilatura.bare_extraction(
        text, with_metadata=True, include_comments=False, include_tables=True,
        # only dates the page states as its own; no guessing from the body
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    body = (doc.text if doc is not None else "") or ""
    if not body.strip():
        raise InputError("HTML page has no extractable main text")
    fields = {k: getattr(doc, a) for k, a in (("title", "title"), ("date", "date"), ("source", "sitename"), ("url", "url"))
              if getattr(doc, a, None)}
    return body, fields


_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_MD_MARKUP = re.compile(r"!\[[^\]]*\]\([^)]*\)|\[([^\]]*)\]\([^)]*\)|(\*\*|__|`)")


def _markdown(text: str) -> tuple[str, dict[str, Any]]:
    """Markdown -> plain text (headings keep their words, links keep their label, images dropped)."""
    m = _MD_HEADING.search(text)
    body = _MD_HEADING.sub(r"\1", text)
    body = _MD_MARKUP.sub(lambda mm: mm.group(1) or "", body)
    return body, ({"title": m.group(1)} if m else {})


def _iter_jsonl(path: Path, gz: bool) -> Iterator[RawDocument | LoadFailure]:
    """Stream a JSON-lines file (gzip read directly) one article per line; bad lines become failures."""
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:
            head = f.read(_SNIFF)
            if not head.strip():
                yield LoadFailure(str(path), "empty file")
                return
            cut = head.rfind(b"\n") + 1 or len(head)
            try:
                _, enc = decode_bytes(head[:cut])
            except InputError as e:
                yield LoadFailure(str(path), str(e))
                return
            if enc.startswith("utf-16") or enc.startswith("utf-32"):  # not line-splittable as bytes: read whole
                text = (head + f.read()).decode(enc).lstrip("\ufeff")
                lines: Iterable[bytes | str] = io.StringIO(text)
                enc_line = None
            else:
                lines = _chain_lines(head, f)
                enc_line = "utf-8" if enc == "utf-8-sig" else enc
            n_ok = 0
            for lineno, raw in enumerate(lines, 1):
                where = f"{path}#{lineno}"
                try:
                    line = raw.decode(enc_line) if enc_line else raw
                except UnicodeDecodeError as e:
                    yield LoadFailure(where, f"line {lineno} does not decode as {enc_line}: {e.reason}")
                    continue
                if lineno == 1:
                    line = line.lstrip("\ufeff")
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    yield LoadFailure(where, f"line {lineno} is not valid JSON: {e.msg} (column {e.colno})")
                    continue
                try:
                    text, fields = _article(obj, f"line {lineno}")
                except InputError as e:
                    yield LoadFailure(where, str(e))
                    continue
                n_ok += 1
                yield RawDocument(text=text, path=where, encoding=enc.replace("-sig", ""), fmt="jsonl", fields=fields)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        yield LoadFailure(str(path), f"cannot read file: {e}")


def _chain_lines(head: bytes, f) -> Iterator[bytes]:
    """Lines of `head` followed by the rest of the binary stream `f` (the head may end mid-line)."""
    rest = b""
    lines = head.split(b"\n")
    tail = lines.pop()
    yield from lines
    for rest in f:
        if tail:
            rest, tail = tail + rest, b""
        if rest.endswith(b"\n"):
            yield rest[:-1]
        else:
            tail = rest
    if tail:
        yield tail


def load_file(path: str | Path) -> Iterator[RawDocument | LoadFailure]:
    """The articles in one file (several for .json lists and .jsonl), or failures saying why not."""
    path = Path(path)
    fmt, gz = _fmt(path)
    if fmt is None:
        yield LoadFailure(str(path), f"unsupported file type '{''.join(path.suffixes) or path.name}' "
                          "(use .txt .md .html .htm .json .jsonl, optionally .gz)")
        return
    if fmt == "jsonl":
        yield from _iter_jsonl(path, gz)
        return
    try:
        data = _read_bytes(path, gz)
        if not data.strip():
            raise InputError("empty file")
        text, enc = decode_bytes(data)
        if not text.strip():
            raise InputError("empty file (only whitespace)")
        if fmt == "json":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
            items = obj if isinstance(obj, list) else [obj]
            if not items:
                raise InputError("JSON list is empty")
            for i, item in enumerate(items, 1):
                where = f"{path}#{i}" if isinstance(obj, list) else str(path)
                try:
                    body, fields = _article(item, f"item {i}" if isinstance(obj, list) else "article")
                except InputError as e:
                    yield LoadFailure(where, str(e))
                    continue
                yield RawDocument(text=body, path=where, encoding=enc, fmt="json", fields=fields)
            return
        if fmt == "html":
            body, fields = _html(text)
        elif fmt == "md":
            body, fields = _markdown(text)
        else:
            body, fields = text, {}
        yield RawDocument(text=body, path=str(path), encoding=enc, fmt=fmt, fields=fields)
    except InputError as e:
        yield LoadFailure(str(path), str(e))


def iter_load(paths: Iterable[str | Path]) -> Iterator[RawDocument | LoadFailure]:
    """Every article under `paths` (files, folders, globs), in order, with failures in place of unreadable files."""
    for item in expand_paths(paths):
        if isinstance(item, LoadFailure):
            yield item
        else:
            yield from load_file(item)
