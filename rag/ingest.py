"""Ingestion: files -> load -> clean -> metadata -> Document -> chunks, streamed, with a per-file report."""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from rag.chunking import chunk_document
from rag.cleaning import clean_text
from rag.loading import LoadFailure, iter_load
from rag.metadata import doc_id_for, extract_metadata
from rag.records import Chunk, Document, IngestReport, RawDocument
from rag.settings import CORPUS_DIR, Settings

PROGRESS_AFTER = 50  # show a progress bar (stderr) once more than this many articles went by, or at once on a TTY
REPORT_LINES = 50  # format_report lists each article up to this many, then only failures and totals


@dataclass
class IngestResult:
    """Everything one ingestion run produced."""

    documents: list[Document] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    reports: list[IngestReport] = field(default_factory=list)

    @property
    def failed(self) -> list[IngestReport]:
        return [r for r in self.reports if not r.ok]


def default_corpus() -> list[Path]:
    """The bundled articles (rag/corpus/), the corpus a new user's first question runs on."""
    return sorted(p for p in CORPUS_DIR.iterdir() if p.is_file() and not p.name.startswith("."))


def build_document(raw: RawDocument) -> Document:
    """Clean one loaded article and attach its metadata. Raises ValueError when no text is left."""
    cleaned = clean_text(raw.text)
    meta, body = extract_metadata(cleaned.text, raw.fields, cleaned.fields)
    if not body.strip():
        raise ValueError("no text left after cleaning (the file holds only boilerplate)")
    return Document(
        doc_id=doc_id_for(body),
        title=meta.title,
        text=body,
        text_simplified=meta.body_simplified,  # OpenCC t2s of the body (also fixes stray traditional chars)
        date=meta.date,
        source=meta.source,
        path=raw.path,
        script=meta.script,
        encoding=raw.encoding,
        url=meta.url,
        metadata=meta.extra,
        cleaning=cleaned.removed,
    )


class _Progress:
    """A tqdm bar on stderr, opened at once on a TTY, else only once the run proves large (> PROGRESS_AFTER)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.n = 0
        self.bar = None
        if enabled and sys.stderr.isatty():
            self._open()

    def _open(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=None, initial=self.n, unit="article", desc="ingest", file=sys.stderr,
                        dynamic_ncols=True, mininterval=0.5)

    def update(self, chunks: int) -> None:
        self.n += 1
        if self.bar is None and self.enabled and self.n > PROGRESS_AFTER:
            self._open()
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def iter_ingest(
    paths: Iterable[str | Path], settings: Settings | None = None, progress: bool = True, limit: int | None = None
) -> Iterator[tuple[Document | None, list[Chunk], IngestReport]]:
    """Stream (document, chunks, report) per article; unreadable files give (None, [], failed report).

    A document whose cleaned text repeats one seen earlier in the run is reported as `skipped` (no chunks).
    `limit` stops after that many documents.
    """
    settings = settings or Settings.from_env()
    seen: dict[str, str] = {}
    bar = _Progress(progress)
    done = 0
    try:
        for item in iter_load(paths):
            if limit is not None and done >= limit:
                break
            if isinstance(item, LoadFailure):
                yield None, [], IngestReport(path=item.path, ok=False, error=item.reason, status="skipped")
                bar.update(0)
                continue
            try:
                doc = build_document(item)
            except ValueError as e:
                yield None, [], IngestReport(path=item.path, ok=False, encoding=item.encoding, error=str(e),
                                             status="skipped")
                bar.update(0)
                continue
            report = IngestReport(path=doc.path, ok=True, encoding=doc.encoding, title=doc.title, date=doc.date,
                                  doc_id=doc.doc_id, removed=dict(doc.cleaning))
            if doc.doc_id in seen:
                report.status, report.error = "skipped", f"same text as {seen[doc.doc_id]}"
                yield doc, [], report
            else:
                seen[doc.doc_id] = doc.path
                chunks = chunk_document(doc, settings.chunk_size, settings.chunk_overlap)
                report.chunks = len(chunks)
                yield doc, chunks, report
            done += 1
            bar.update(report.chunks)
    finally:
        bar.close()


def ingest_paths(paths: Iterable[str | Path], settings: Settings | None = None, progress: bool = True,
                 limit: int | None = None) -> IngestResult:
    """Ingest everything under `paths` into memory (documents, chunks, one report per article or failure)."""
    result = IngestResult()
    for doc, chunks, report in iter_ingest(paths, settings, progress=progress, limit=limit):
        result.reports.append(report)
        if doc is not None and chunks:
            result.documents.append(doc)
            result.chunks.extend(chunks)
    return result


def summarize(reports: list[IngestReport]) -> dict:
    """Totals over a run: articles read/failed/skipped, chunks, characters removed per cleaning step, encodings."""
    removed: Counter[str] = Counter()
    for r in reports:
        removed.update(r.removed)
    return {
        "articles": sum(1 for r in reports if r.ok and r.status != "skipped"),
        "failed": sum(1 for r in reports if not r.ok),
        "duplicates": sum(1 for r in reports if r.ok and r.status == "skipped"),
        "chunks": sum(r.chunks for r in reports),
        "removed": dict(removed),
        "status": dict(Counter(r.status for r in reports if r.ok and r.status != "skipped")),
        "encodings": dict(Counter(r.encoding for r in reports if r.encoding)),
        "dated": sum(1 for r in reports if r.ok and r.date),
    }


def _removed_str(removed: dict[str, int]) -> str:
    parts = [f"{k} {v}" for k, v in removed.items() if v]
    return ", ".join(parts) if parts else "nothing"


def format_report(reports: list[IngestReport], max_lines: int = REPORT_LINES) -> str:
    """Human-readable report: one block per article (up to `max_lines`), every failure, then the totals."""
    lines: list[str] = []
    failures = [r for r in reports if not r.ok]
    if len(reports) <= max_lines:
        for r in reports:
            if not r.ok:
                lines.append(f"FAILED  {r.path}: {r.error}")
                continue
            status = "" if r.status == "added" else f" [{r.status}{': ' + r.error if r.error else ''}]"
            lines.append(f"ok      {r.path}{status}")
            lines.append(f"        encoding {r.encoding} · title {r.title!r} · date {r.date or '-'} · chunks {r.chunks}")
            lines.append(f"        removed/changed chars: {_removed_str(r.removed)}")
    else:
        for r in failures[:max_lines]:
            lines.append(f"FAILED  {r.path}: {r.error}")
        if len(failures) > max_lines:
            lines.append(f"... and {len(failures) - max_lines} more failures")
    s = summarize(reports)
    status = ", ".join(f"{k} {v}" for k, v in s["status"].items())
    lines.append(
        f"{s['articles']} article(s) read{f' ({status})' if status else ''}, {s['failed']} failed, "
        f"{s['duplicates']} duplicate(s) skipped; {s['chunks']} chunks; {s['dated']} with a publish date"
    )
    lines.append(f"encodings: {', '.join(f'{k} {v}' for k, v in s['encodings'].items()) or '-'}")
    lines.append(f"removed/changed chars per step: {_removed_str(s['removed'])}")
    return "\n".join(lines)
