"""Index benchmarks (engineer C): the recall cost of FAISS HNSW against the exact flat index, BM25 matrix rebuild time
(bm25s's own index() against rag.lexical's vectorised build), and saving/opening a 100k-chunk index.

    python bench/bench_index.py              # 100k vectors / chunks (several minutes on 2 cores)
    python bench/bench_index.py --n 20000    # quicker

The dense part uses synthetic vectors, stated in the output: uniformly random unit vectors (the hardest case for a
graph index) and clustered unit vectors (1,000 topics + noise, closer to real embeddings). Every figure is printed
next to its baseline from the same run.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag import vectors as V  # noqa: E402
from rag.lexical import LexicalIndex, tokenize  # noqa: E402


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def real_vectors() -> np.ndarray | None:
    """Every multilingual-e5-small vector `rag eval retrieval` cached (passages and queries of DRCD/CMRC/dev sets)."""
    from rag.settings import Settings

    files = [p for p in (Path(Settings.from_env().cache_dir) / "eval").glob("*.npy") if not p.name.endswith(".keys.npy")]
    vecs = [np.load(p) for p in files]
    vecs = [v for v in vecs if v.ndim == 2 and v.shape[1] == 384]
    return np.concatenate(vecs) if vecs else None


def datasets(n: int, dim: int, nq: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Uniform random unit vectors (worst case for a graph index) and, when real embeddings are cached, "e5-like"
    vectors: random mixtures of 3 real multilingual-e5-small vectors plus a little noise (the anisotropic shape of
    real embeddings); queries are real vectors with noise."""
    out = {"random": (unit(rng.standard_normal((n, dim))), unit(rng.standard_normal((nq, dim))))}
    real = real_vectors() if dim == 384 else None
    if real is not None and len(real) >= 1000:
        w = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
        base = np.einsum("nk,nkd->nd", w, real[rng.integers(0, len(real), (n, 3))])
        base = unit(base + 0.02 * rng.standard_normal((n, dim)).astype(np.float32))
        queries = unit(real[rng.integers(0, len(real), nq)] + 0.02 * rng.standard_normal((nq, dim)).astype(np.float32))
        out[f"e5-like (from {len(real):,} real vectors)"] = (base, queries)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_ann(n: int, dim: int, nq: int, k: int, only: str | None = None) -> None:
    print(f"== FAISS: exact IndexFlatIP vs IndexHNSWFlat (M={V.HNSW_M}, efConstruction={V.HNSW_EF_CONSTRUCTION}) "
          f"at {n:,} x {dim} synthetic unit vectors, {nq} queries, recall@{k} against exact")
    rng = np.random.default_rng(0)
    for name, (x, qs) in datasets(n, dim, nq, rng).items():
        if only and not name.startswith(only):
            continue
        ids = np.arange(n)
        flat = V.FaissVectors(dim, ann_threshold=n + 1)
        t = time.perf_counter()
        flat.add(ids, x)
        t_flat = time.perf_counter() - t
        hnsw = V.FaissVectors(dim, ann_threshold=0)
        t = time.perf_counter()
        hnsw.add(ids, x)
        t_hnsw = time.perf_counter() - t
        assert hnsw.approximate and not flat.approximate
        truth, firsts, lat_flat, lat_omp = [], [], [], []
        for q in qs:
            t = time.perf_counter()
            exact = flat.search(q, k)[0].tolist()
            truth.append(set(exact))
            firsts.append(exact[0])
            lat_flat.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            flat.index.search(q.reshape(1, -1), k)  # baseline: FAISS's default OpenMP threads
            lat_omp.append((time.perf_counter() - t) * 1000)
        print(f"  [{name}] build: flat {t_flat:.1f} s, HNSW {t_hnsw:.1f} s; flat query (1 thread, as rag.vectors) "
              f"p50 {pct(lat_flat, 50):.2f} ms p95 {pct(lat_flat, 95):.2f} ms; FAISS default threads "
              f"p50 {pct(lat_omp, 50):.2f} ms p95 {pct(lat_omp, 95):.2f} ms")
        for ef in (64, 128, 256, 512, 1024):
            old = V.HNSW_EF_SEARCH
            V.HNSW_EF_SEARCH = ef
            lat, rec, top1 = [], [], []
            for q, tr, first in zip(qs, truth, firsts):
                t = time.perf_counter()
                got = hnsw.search(q, k)[0].tolist()
                lat.append((time.perf_counter() - t) * 1000)
                rec.append(len(set(got) & tr) / k)
                top1.append(bool(got) and got[0] == first)
            V.HNSW_EF_SEARCH = old
            print(f"  [{name}] HNSW efSearch={ef:<3}  recall@{k} {np.mean(rec):.4f}  same top-1 {np.mean(top1):.3f}  "
                  f"p50 {pct(lat, 50):.2f} ms p95 {pct(lat, 95):.2f} ms")
        with tempfile.TemporaryDirectory() as tmp:
            flat.save(Path(tmp))
            s_flat = (Path(tmp) / "vectors.faiss").stat().st_size
            hnsw.save(Path(tmp))
            s_hnsw = (Path(tmp) / "vectors.faiss").stat().st_size
        print(f"  [{name}] on disk: flat {s_flat / 2**20:.0f} MB, HNSW {s_hnsw / 2**20:.0f} MB")


def bench_lexical(n: int) -> None:
    import bm25s

    rng = np.random.default_rng(1)
    vocab = 50_000
    rows = [r.astype(np.int32) for r in (rng.zipf(1.3, size=(n, 150)) % vocab)]
    print(f"== BM25 matrix rebuild at {n:,} chunks x 150 tokens (every incremental add/remove rebuilds it)")
    t = time.perf_counter()
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(([r.tolist() for r in rows], {i: i for i in range(vocab)}), create_empty_token=False, show_progress=False)
    t_ref = time.perf_counter() - t
    lex = LexicalIndex()
    lex.vocab = {f"w{i}": i for i in range(vocab)}
    lex._rows = rows
    t = time.perf_counter()
    lex._rebuild()
    t_ours = time.perf_counter() - t
    q = [3, 50, 700, 9000]
    same = np.allclose(ref.get_scores(q), lex._bm25.get_scores(q), atol=1e-4)
    lat = []
    for i in range(200):
        qq = rng.integers(0, 5000, 6).tolist()
        t = time.perf_counter()
        s = lex._bm25.get_scores([int(x) for x in qq])
        np.argpartition(-s, 50)[:50]
        lat.append((time.perf_counter() - t) * 1000)
    print(f"  bm25s BM25.index(): {t_ref:.1f} s   rag.lexical vectorised: {t_ours:.1f} s   identical scores: {same}")
    print(f"  BM25 query (6 tokens, top-50): p50 {pct(lat, 50):.2f} ms p95 {pct(lat, 95):.2f} ms")


def real_texts(n: int) -> list[str]:
    """n 280-character windows of real Chinese news (the shared 20k-news file if present, else the bundled corpus)."""
    import gzip
    import json

    from rag.settings import CORPUS_DIR, PROJECT_ROOT

    news = PROJECT_ROOT.parent / "shared" / "data" / "news_zh_20k.jsonl.gz"
    if news.exists():
        with gzip.open(news, "rt", encoding="utf-8") as f:
            articles = [json.loads(line)["text"] for line, _ in zip(f, range(3000))]
    else:
        articles = [p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.txt"))]
    windows = [a[i : i + 280] for a in articles for i in range(0, max(1, len(a) - 140), 240)]
    return [windows[i % len(windows)] for i in range(n)]


def bench_store(n: int, dim: int) -> None:
    from rag.records import Chunk
    from rag.settings import Settings
    from rag.store import Index

    print(f"== rag.store.Index with {n:,} chunks (280-char windows of real news, random vectors): "
          f"save / open / remove / size")
    rng = np.random.default_rng(2)
    texts = real_texts(n)
    with tempfile.TemporaryDirectory() as tmp:
        s = dataclasses.replace(Settings.from_env(), index_root=Path(tmp), index_name="big",
                                embedding_model="bench-random")
        index = Index.create(s.index_dir, s)
        index.manifest["embedding"].update(model_id="bench-random", dim=dim)
        index.vectors = V.FaissVectors(dim, s.ann_threshold)
        chunks = [Chunk(chunk_id=f"d{i // 20}:{i % 20}", doc_id=f"d{i // 20}", text=t, text_simplified=t, start=0,
                        end=len(t), title=f"文章{i // 20}") for i, t in enumerate(texts)]
        sample = min(n, 2000)  # tokenizing (jieba) is timed on a sample; the other chunks reuse its token lists
        tokenize("预热")  # jieba's dictionary load is not part of the throughput
        t = time.perf_counter()
        toks = [tokenize(c.text_simplified) for c in chunks[:sample]]
        t_tok = time.perf_counter() - t
        index.lexical.add([], tokens=[toks[i % sample] for i in range(n)])
        index.vectors.add(np.arange(n), unit(rng.standard_normal((n, dim))))
        index.chunks, index.vids = chunks, np.arange(n, dtype=np.int64)
        index.manifest["next_vid"] = n
        for d in range(n // 20):
            index.documents[f"d{d}"] = {"title": f"文章{d}", "date": None, "source": None, "path": f"/x/{d}.txt",
                                        "hash": "0" * 16, "chunk_ids": [f"d{d}:{j}" for j in range(20)]}
        index.changed = True
        t = time.perf_counter()
        index.save()
        t_save = time.perf_counter() - t
        t = time.perf_counter()
        again = Index.open(s.index_dir, s)
        t_open = time.perf_counter() - t
        size = sum(p.stat().st_size for p in s.index_dir.rglob("*") if p.is_file())
        t = time.perf_counter()
        again.remove(["d7"])
        t_remove = time.perf_counter() - t
        print(f"  tokenize (jieba + pinyin): {sample / t_tok:,.0f} chunks/s on a {sample:,}-chunk sample")
        print(f"  save: {t_save:.1f} s   open: {t_open:.1f} s   remove one document (BM25 rebuild + save): "
              f"{t_remove:.1f} s   on disk: {size / 2**20:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=50, help="recall@k (the retriever fetches 50 candidates per side)")
    ap.add_argument("--skip", action="append", default=[], choices=["ann", "lexical", "store"])
    ap.add_argument("--only", choices=["random", "e5-like"], help="only this vector set in the ANN part")
    a = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    if "ann" not in a.skip:
        bench_ann(a.n, a.dim, a.queries, a.k, a.only)
    if "lexical" not in a.skip:
        bench_lexical(a.n)
    if "store" not in a.skip:
        bench_store(a.n, a.dim)


if __name__ == "__main__":
    main()
