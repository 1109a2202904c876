"""LLM answer mode latency: time to first token and total per question, beside the extractive path and beside the
whole-passage prompt the LLM mode used before compact evidence, all in the same run.

    python bench/bench_llm.py [--set ../shared/eval/dev_news_qa.jsonl] [--limit 20] [--baseline 5]

Questions run through `Assistant.ask_stream(q, mode="llm")` over the news evaluation index (`rag.evaluation.news_index`;
the bundled index for sets over the bundled articles). Time to first token = the first draft piece after the
preliminary extractive answer. Baseline: the same model given the top 3 retrieved chunks whole (~1,000 prompt
tokens), as LLM mode did before `rag.llm_reader`. The load average is printed at the start and the end.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.assistant import Assistant  # noqa: E402
from rag.evidence import gather, snippets  # noqa: E402
from rag.llm_reader import prompt_tokens  # noqa: E402
from rag.records import Answer  # noqa: E402
from rag.settings import PROJECT_ROOT, Settings  # noqa: E402

WHOLE_PASSAGES = ("Answer the question from the passages only, briefly, citing [n]; if they do not answer, "
                  "reply NOT_FOUND.")


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))] if xs else float("nan")


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default=str(PROJECT_ROOT.parent / "shared" / "eval" / "dev_news_qa.jsonl"))
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--baseline", type=int, default=5, help="questions also asked with whole passages (0: none)")
    args = ap.parse_args()
    print(f"load average at start (1/5/15 min): {_load()}")
    rows = [json.loads(line) for line in Path(args.set).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if "q" in r][: args.limit]
    settings = Settings.from_env(answer_mode="llm")
    if any(str(r.get("doc") or "").startswith("crud") for r in rows):
        from rag.evaluation import news_index

        folder, _ = news_index([args.set], settings, progress=False)
        bot = Assistant.open(folder, settings)
    else:
        bot = Assistant.default(settings, progress=False)
    t = time.perf_counter()
    bot.ask(rows[0]["q"], mode="llm")  # loads the model and fills the prompt cache with the fixed prefix
    print(f"warm-up (model load + first question): {time.perf_counter() - t:.1f} s\n")

    ext_ms, ttft, total, tokens, base_total, base_tokens = [], [], [], [], [], []
    for r in rows:
        q = r["q"]
        t = time.perf_counter()
        bot.ask(q, mode="extractive")
        ext_ms.append((time.perf_counter() - t) * 1000)
        t0, first, final = time.perf_counter(), None, None
        for piece in bot.ask_stream(q, mode="llm"):
            if isinstance(piece, str) and first is None:
                first = time.perf_counter()
            elif isinstance(piece, Answer) and piece.final:
                final = piece
        end = time.perf_counter()
        total.append((end - t0) * 1000)
        asked = first is not None
        if asked:
            ttft.append((first - t0) * 1000)
            qq, hits, _ = bot._prepare(q, None, None, None)
            ev = gather(qq, hits, bot._doc_text)
            n = prompt_tokens(bot._llm, ev, snippets(ev, budget=settings.evidence_chars))
            if n is not None:
                tokens.append(n)
        print(f"{r.get('id', '?'):>6} ttft {((first or end) - t0) * 1000:6.0f} ms  total {total[-1]:6.0f} ms  "
              f"{'asked ' if asked else 'no LLM'} {final.text[:70]!r}")
    for r in rows[: args.baseline]:
        qq, hits, _ = bot._prepare(r["q"], None, None, None)
        passages = "\n".join(f'<passage id="{i}">{h.chunk.text}</passage>' for i, h in enumerate(hits[:3], 1))
        msgs = [{"role": "system", "content": WHOLE_PASSAGES},
                {"role": "user", "content": f"{passages}\nQuestion: {r['q']}"}]
        llama = getattr(bot._llm, "_llama", None)
        if llama is not None:
            base_tokens.append(len(llama.tokenize(msgs[1]["content"].encode("utf-8"), add_bos=False)))
        t = time.perf_counter()
        bot._llm.chat(msgs, max_tokens=64)
        base_total.append((time.perf_counter() - t) * 1000)
    print(f"\nload average at end: {_load()}")
    print(f"LLM mode, compact evidence ({len(total)} questions, {len(ttft)} sent to the model; per-question prompt "
          f"p50 {statistics.median(tokens) if tokens else float('nan'):.0f} tokens): first token p50 "
          f"{statistics.median(ttft) if ttft else float('nan'):.0f} ms, p95 {_pct(ttft, 0.95):.0f} ms; total p50 "
          f"{statistics.median(total):.0f} ms, p95 {_pct(total, 0.95):.0f} ms")
    if base_total:
        print(f"baseline, top-3 whole chunks ({len(base_total)} questions, prompt p50 "
              f"{statistics.median(base_tokens) if base_tokens else float('nan'):.0f} tokens): total p50 "
              f"{statistics.median(base_total):.0f} ms, p95 {_pct(base_total, 0.95):.0f} ms")
    print(f"extractive ({len(ext_ms)} questions): total p50 {statistics.median(ext_ms):.0f} ms, "
          f"p95 {_pct(ext_ms, 0.95):.0f} ms")


if __name__ == "__main__":
    main()
