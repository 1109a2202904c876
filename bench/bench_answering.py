"""Extractive answer latency on the default corpus after the model is loaded (goal: p50 <= 150 ms).

    python bench/bench_answering.py [--index DIR] [--rounds 3]

Prints p50/p95 of `Assistant.ask` (total, retrieval, answering) over the dev questions, beside the baseline of
retrieval alone (`Retriever.retrieve`) measured in the same run, so the answerer's own cost is visible.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rag.assistant import Assistant
from rag.settings import Settings

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval"


def _questions() -> list[str]:
    qs = []
    for name in ("dev_qa.jsonl", "dev_chat.jsonl"):
        for line in (DEV / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                qs += [t["q"] for t in d["turns"]] if "turns" in d else [d["q"]]
    return qs


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", help="index folder (default: the default index, built on first use)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    t = time.perf_counter()
    bot = Assistant.open(args.index) if args.index else Assistant.default(Settings.from_env())
    print(f"load: {time.perf_counter() - t:.1f} s ({bot.stats()['chunks']} chunks)")
    qs = _questions()
    bot.ask(qs[0], mode="extractive")  # warm-up (jieba, IDF table, first forward pass)
    base, total, ret, ans = [], [], [], []
    for _ in range(args.rounds):
        for q in qs:
            t = time.perf_counter()
            bot.retriever.retrieve(q, top_k=bot.settings.answer_passages)
            base.append((time.perf_counter() - t) * 1000)
            bot.embedder._cache.clear()  # no cached query vectors: measure what a new question costs
            a = bot.ask(q, mode="extractive")
            total.append(a.timings["total_ms"])
            ret.append(a.timings["retrieve_ms"])
            ans.append(a.timings["answer_ms"])
    print(f"{len(total)} questions x 1 (rounds={args.rounds})")
    print(f"baseline retrieval only : p50 {statistics.median(base):7.1f} ms  p95 {_pct(base, .95):7.1f} ms")
    print(f"ask() total             : p50 {statistics.median(total):7.1f} ms  p95 {_pct(total, .95):7.1f} ms  (goal p50 <= 150)")
    print(f"  of which retrieval    : p50 {statistics.median(ret):7.1f} ms")
    print(f"  of which answering    : p50 {statistics.median(ans):7.1f} ms  p95 {_pct(ans, .95):7.1f} ms")


if __name__ == "__main__":
    main()
