"""Ingestion throughput: load + clean + metadata + chunk (no embedding), one core, against baselines in the same run.

    python bench/bench_ingest.py [PATH.jsonl.gz] [--limit N]
    python bench/bench_ingest.py --loss-only PATH [PATH ...]   # content-loss check only
    python bench/bench_ingest.py --big-mb 50                    # time a 50 MB file through `rag ingest --no-index`

Baselines: (1) read + JSON-parse only (the I/O floor), (2) a naive pipeline (read, fixed 300-char slices, no cleaning).
Then the real pipeline (`rag.ingest.iter_ingest`), and where its time goes per cleaning step. Goal: >= 500 articles/s. Rates are per CPU-second (one
single-threaded process pinned to one core), so a busy shared machine does not distort them; wall time is printed too.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.chunking import chunk_document  # noqa: E402
from rag.cleaning import STEPS, content_sentences, lost_sentences, normalize_whitespace  # noqa: E402
from rag.ingest import build_document, iter_ingest  # noqa: E402
from rag.loading import iter_load  # noqa: E402
from rag.settings import Settings  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "news_zh_20k.jsonl.gz"
SNIPPETS = ROOT / "tests" / "data" / "web_snippets.jsonl"  # short web passages with header/boilerplate around content
GOAL = 500


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.0f}/s"


def baseline_read(path: Path, limit: int) -> tuple[int, float]:
    t = time.process_time()
    n = 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            json.loads(line)
            n += 1
            if n >= limit:
                break
    return n, time.process_time() - t


def baseline_naive(path: Path, limit: int, size: int) -> tuple[int, int, float]:
    t = time.process_time()
    n = chunks = 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"]
            chunks += len([text[i:i + size] for i in range(0, len(text), size)])
            n += 1
            if n >= limit:
                break
    return n, chunks, time.process_time() - t


def pipeline(path: Path, limit: int, settings: Settings) -> tuple[int, int, int, float, float]:
    """(articles, chunks, failed or duplicate, wall seconds, CPU seconds of this process)."""
    t, c = time.perf_counter(), time.process_time()
    n = chunks = failed = 0
    for doc, doc_chunks, report in iter_ingest([path], settings, progress=False, limit=limit):
        n += 1
        chunks += len(doc_chunks)
        failed += not report.ok or report.status == "skipped"
    return n, chunks, failed, time.perf_counter() - t, time.process_time() - c


def breakdown(path: Path, limit: int, settings: Settings) -> dict[str, float]:
    """Seconds per stage over `limit` articles (cleaning step by step, then metadata+script, then chunking)."""
    clock = time.process_time
    spent: dict[str, float] = {"load": 0.0}
    raws = []
    t = clock()
    for raw in iter_load([path]):
        raws.append(raw)
        if len(raws) >= limit:
            break
    spent["load"] = clock() - t
    for name, step in STEPS:
        t = clock()
        out = []
        for raw in raws:
            fields: dict = {}
            text, _ = step(raw.text, fields)
            out.append(text)
        spent[f"clean:{name}"] = clock() - t
    t = clock()
    docs = []
    for raw in raws:
        try:
            docs.append(build_document(raw))
        except ValueError:
            pass
    spent["clean+metadata (whole)"] = clock() - t
    t = clock()
    for d in docs:
        chunk_document(d, settings.chunk_size, settings.chunk_overlap)
    spent["chunk"] = clock() - t
    return spent


def content_loss(path: Path, limit: int, show: int = 5) -> dict:
    """Real sentences (>= 12 Han characters, no boilerplate marker) of each raw article that a cleaning step lost,
    counted per step; articles dropped whole and sentences lost to the title/body split count as `document`."""
    from rag.metadata import extract_metadata

    lost: dict[str, int] = {name: 0 for name, _ in STEPS}
    lost["document"] = 0
    examples: list[tuple[str, str]] = []
    articles = sentences = dropped = 0
    for raw in iter_load([path]):
        if articles >= limit:
            break
        if not hasattr(raw, "text"):  # a file that could not be read
            continue
        articles += 1
        alive = content_sentences(raw.text)
        sentences += len(alive)
        text, fields = raw.text, {}
        for name, step in STEPS + [("whitespace", normalize_whitespace)]:
            text, _ = step(text, fields)
            # what a step moved into a header field (a title, an 原标题 line) is kept as metadata, not lost
            gone = set(lost_sentences("", "\n".join([text, *map(str, fields.values())]), alive)) if alive else set()
            if gone:
                lost[name] += len(gone)
                examples.extend((name, g) for g in gone)
                alive = [s for s in alive if s not in gone]
        meta, body = extract_metadata(text, raw.fields, fields)
        if not body.strip():
            dropped += 1
        # a sentence kept as metadata (a title or 原标题 field) is not lost
        kept = "\n".join([meta.title, *map(str, fields.values()), body]) if body.strip() else ""
        gone = set(lost_sentences("", kept, alive)) if alive else set()
        lost["document"] += len(gone)
        examples.extend(("document", g) for g in gone)
    return {"articles": articles, "sentences": sentences, "dropped_whole": dropped, "lost": lost,
            "lost_total": sum(lost.values()), "examples": examples[:show]}


def print_content_loss(path: Path, limit: int) -> None:
    t = time.perf_counter()
    r = content_loss(path, limit)
    per_step = ", ".join(f"{k} {v}" for k, v in r["lost"].items() if v) or "none"
    print(f"content loss on {path.name}: {r['articles']} articles, {r['sentences']} real sentences, "
          f"{r['lost_total']} lost ({per_step}); {r['dropped_whole']} articles dropped whole "
          f"[{time.perf_counter() - t:.1f} s]")
    for step, sent in r["examples"]:
        print(f"  lost in {step}: {sent[:90]}")


def big_file(mb: int, workdir: Path) -> None:
    """Write a ~`mb` MB single-article text file (news articles run together) and time `rag ingest --no-index` on it."""
    import subprocess

    src = workdir / f"big_{mb}mb.txt"
    with gzip.open(DEFAULT, "rt", encoding="utf-8") as f, open(src, "w", encoding="utf-8") as out:
        size = 0
        while size < mb * 1024 * 1024:
            for line in f:
                text = json.loads(line)["text"] + "\n\n"
                out.write(text)
                size += len(text.encode("utf-8"))
                if size >= mb * 1024 * 1024:
                    break
            f.seek(0)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "--no-index", "--json", str(src)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    load = os.getloadavg()[0]
    summary = json.loads(proc.stdout)["summary"] if proc.returncode in (0, 3) and proc.stdout else proc.stderr[-300:]
    print(f"{src.stat().st_size / 1e6:.1f} MB single file through `rag ingest --no-index`: {wall:.1f} s wall "
          f"(exit {proc.returncode}, load average {load:.1f}); {summary if isinstance(summary, str) else summary['chunks']} chunks")
    src.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", default=str(DEFAULT))
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--no-breakdown", action="store_true")
    ap.add_argument("--loss-only", nargs="*", metavar="PATH", help="only run the content-loss check on these files")
    ap.add_argument("--big-mb", type=int, metavar="MB", help="only time one file of this many MB (no embedding)")
    args = ap.parse_args()
    if args.big_mb:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            big_file(args.big_mb, Path(d))
        return
    if args.loss_only is not None:
        for p in args.loss_only or [str(DEFAULT), str(SNIPPETS)]:
            print_content_loss(Path(p), args.limit)
        return
    path = Path(args.path)
    settings = Settings.from_env()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    except (AttributeError, OSError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"input {path} (limit {args.limit}); chunk_size {settings.chunk_size}, overlap {settings.chunk_overlap}; "
          f"1 core; load average {load:.1f} on {os.cpu_count()} cores")
    # warm-up: OpenCC, jieba dictionary and POS tags are loaded once per process (a few seconds, not per article)
    t = time.perf_counter()
    pipeline(path, 300, settings)
    print(f"warm-up (loads OpenCC/jieba once, 300 articles): {time.perf_counter() - t:.2f} s")

    # rates are per CPU-second of this single-threaded process (the machine is shared: wall time depends on load)
    n, secs = baseline_read(path, args.limit)
    print(f"baseline read+json   : {n:6d} articles in {secs:6.2f} CPU s = {_rate(n, secs)} articles")
    n, c, secs = baseline_naive(path, args.limit, settings.chunk_size)
    print(f"baseline naive split : {n:6d} articles in {secs:6.2f} CPU s = {_rate(n, secs)} articles, "
          f"{_rate(c, secs)} chunks")
    n, c, failed, wall, secs = pipeline(path, args.limit, settings)
    ok = "meets" if n / secs >= GOAL else "BELOW"
    print(f"rag ingest pipeline  : {n:6d} articles in {secs:6.2f} CPU s = {_rate(n, secs)} articles, "
          f"{_rate(c, secs)} chunks ({failed} failed/duplicate) -> {ok} the goal of {GOAL} articles/s")
    print(f"                       wall clock {wall:.2f} s = {n / wall:.0f} articles/s at this load")
    if not args.no_breakdown:
        m = min(args.limit, 3000)
        spent = breakdown(path, m, settings)
        print(f"where the time goes ({m} articles, CPU ms per article; each step on the raw text):")
        for k, v in spent.items():
            print(f"  {k:28s} {1000 * v / m:7.3f}")
    for p in (path, SNIPPETS):
        print_content_loss(p, args.limit)


if __name__ == "__main__":
    main()
