"""LLM answer mode: time to first token and total time per dev question, beside the extractive path in the same run.

    python bench/bench_llm.py [--set ../shared/eval/dev_qa.jsonl] [--limit 6] [--max-tokens 120]

When `rag.assistant` exists, each question runs through the product's own paths: `Assistant.ask(q, mode="extractive")`
and `Assistant.ask_stream(q, mode="llm")` (its passage choice -> rag.llm draft -> verification -> fallback); time to
first token = first streamed piece. Without it, passages come from a crude character-bigram ranking of the bundled
articles' paragraphs straight into `rag.llm.draft_answer` (LLM figures only). `--max-tokens` applies to that path only.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.llm import build_messages, check_draft, draft_answer, get_llm  # noqa: E402
from rag.records import Citation  # noqa: E402
from rag.script import detect_script, han_count, to_simplified  # noqa: E402
from rag.settings import CORPUS_DIR, PROJECT_ROOT, Settings  # noqa: E402


def _language(q: str) -> str:
    if han_count(q) == 0:
        return "en"
    return "zh-Hant" if detect_script(q) == "traditional" else "zh-Hans"


def _bigram_passages(question: str, k: int = 3) -> list[Citation]:
    """Baseline passages without the retrieval stack: paragraphs sharing most character bigrams with the question."""
    q = to_simplified(question)
    grams = {q[i:i + 2] for i in range(len(q) - 1)}
    paras = []
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            s = to_simplified(line.strip())
            if len(s) >= 20:
                paras.append((sum(g in s for g in grams), line.strip(), path.stem))
    paras.sort(key=lambda t: -t[0])
    return [Citation(number=i, doc_id=stem, chunk_id=f"{stem}:{i}", title=stem, date=None, source=None, passage=text)
            for i, (_, text, stem) in enumerate(paras[:k], start=1)]


def _prompt_tokens(llm, question: str, passages: list[Citation], lang: str) -> int:
    """Prompt size in the local model's tokens (characters / 1.5 for an endpoint)."""
    text = "\n".join(m["content"] for m in build_messages(question, passages, lang))
    if hasattr(llm, "_llama"):
        return len(llm._llama.tokenize(text.encode("utf-8"), add_bos=False))
    return round(len(text) / 1.5)


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default=str(PROJECT_ROOT.parent / "shared" / "eval" / "dev_qa.jsonl"))
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=120)
    args = ap.parse_args()

    rows = [json.loads(line) for line in Path(args.set).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if "q" in r][: args.limit]
    settings = Settings.from_env(answer_mode="llm")

    assistant = None
    try:
        from rag.assistant import Assistant

        t = time.perf_counter()
        assistant = Assistant.default(Settings.from_env(answer_mode="extractive"))
        print(f"extractive assistant ready in {time.perf_counter() - t:.1f} s")
    except ImportError as e:
        print(f"rag.assistant not available ({e}); LLM figures only, passages from a bigram baseline")

    t = time.perf_counter()
    llm = get_llm(settings, progress=True)
    print(f"LLM {llm.name} ready in {time.perf_counter() - t:.1f} s (llm_url={settings.llm_url or '-'})\n")

    ext_ms, ttft_ms, total_ms, prompt_tokens, ext_ok, llm_ok, kept = [], [], [], [], 0, 0, 0
    for r in rows:
        q, gold = r["q"], r.get("answer_any") or []
        lang = _language(q)
        t0 = time.perf_counter()
        first = None
        if assistant is not None:  # the product's own path: Assistant.ask_stream(mode="llm") -> rag.llm
            t = time.perf_counter()
            ext = assistant.ask(q, mode="extractive")
            ext_ms.append((time.perf_counter() - t) * 1000)
            ext_ok += any(g in ext.text for g in gold) if gold else not ext.found
            t0 = time.perf_counter()
            for piece in assistant.ask_stream(q, mode="llm"):
                if isinstance(piece, str):
                    first = first if first is not None else time.perf_counter()
                else:
                    final = piece
            end = time.perf_counter()
            mode, text, found = final.mode, final.text, final.found
            draft = "; ".join(final.notes) if mode != "llm" else text
        else:
            passages = _bigram_passages(q)
            prompt_tokens.append(_prompt_tokens(llm, q, passages, lang))
            pieces = []
            for piece in draft_answer(q, passages, lang, llm, stream=True, max_tokens=args.max_tokens):
                first = first if first is not None else time.perf_counter()
                pieces.append(piece)
            end = time.perf_counter()
            result = check_draft("".join(pieces), passages, lang, "", q)
            mode, text, found, draft = result.mode, result.text, bool(result.text), result.draft
        ttft_ms.append(((first or end) - t0) * 1000)
        total_ms.append((end - t0) * 1000)
        kept += mode == "llm"
        good = any(g in text for g in gold) if gold else not found
        llm_ok += good
        print(f"{r.get('id', '?')} ttft {ttft_ms[-1]:6.0f} ms total {total_ms[-1]:6.0f} ms  {mode:16s} "
              f"{'ok ' if good else 'BAD'} {draft[:90]!r}")

    n, asked = len(rows), len(ttft_ms)
    tokens = f", prompt p50 {statistics.median(prompt_tokens):.0f} tokens" if prompt_tokens else ""
    print(f"\nLLM mode    ({asked} questions{tokens}): "
          f"time to first token p50 {statistics.median(ttft_ms):.0f} ms, p95 {_pct(ttft_ms, 0.95):.0f} ms; "
          f"total p50 {statistics.median(total_ms):.0f} ms, p95 {_pct(total_ms, 0.95):.0f} ms; "
          f"drafts kept after verification {kept}/{asked}; answer correct {llm_ok}/{n}")
    if ext_ms:
        print(f"extractive  ({n} questions): total p50 {statistics.median(ext_ms):.0f} ms, "
              f"p95 {_pct(ext_ms, 0.95):.0f} ms; correct {ext_ok}/{n}")
        print(f"LLM total / extractive total (p50): {statistics.median(total_ms) / statistics.median(ext_ms):.0f}x")


if __name__ == "__main__":
    main()
