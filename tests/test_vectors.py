"""rag.vectors: FAISS (exact, and HNSW past the threshold) and Milvus (milvus-lite file) vector stores."""
from __future__ import annotations

import numpy as np
import pytest

from rag.errors import IndexError_
from rag.vectors import FaissVectors, MilvusVectors


def unit(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vectors @ q), kind="stable")[:k]
    return [int(ids[i]) for i in order]


def test_flat_search_is_exact_and_filters_by_id():
    x, ids = unit(300), np.arange(1000, 1300)
    store = FaissVectors(32)
    store.add(ids, x)
    q = unit(1, seed=1)[0]
    got, scores = store.search(q, 10)
    assert got.tolist() == brute(x, ids, q, 10)
    assert np.all(np.diff(scores) <= 1e-6)
    allowed = ids[::7]
    got, _ = store.search(q, 5, allowed)
    assert got.tolist() == brute(x[::7], allowed, q, 5)
    assert store.search(q, 5, np.array([], dtype=np.int64))[0].size == 0


def test_remove_and_persist(tmp_path):
    x, ids = unit(100), np.arange(100)
    store = FaissVectors(32)
    store.add(ids, x)
    store.remove(ids[:50])
    assert len(store) == 50
    got, _ = store.search(x[10], 100)
    assert 10 not in got.tolist() and set(got.tolist()) == set(range(50, 100))
    store.save(tmp_path)
    again = FaissVectors.load(tmp_path, 32)
    assert again.search(x[70], 3)[0].tolist() == store.search(x[70], 3)[0].tolist()
    with pytest.raises(IndexError_):
        FaissVectors.load(tmp_path, 64)  # other dimension


def test_damaged_vector_file_raises_index_error(tmp_path):
    store = FaissVectors(32)
    store.add(np.arange(10), unit(10))
    store.save(tmp_path)
    data = (tmp_path / "vectors.faiss").read_bytes()
    (tmp_path / "vectors.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexError_, match="damaged"):
        FaissVectors.load(tmp_path, 32)


def test_switches_to_hnsw_past_the_threshold_and_still_filters_and_removes(tmp_path):
    x, ids = unit(600), np.arange(600)
    store = FaissVectors(32, ann_threshold=200)
    store.add(ids[:150], x[:150])
    assert not store.approximate
    store.add(ids[150:], x[150:])
    assert store.approximate and len(store) == 600
    found = [store.search(x[i], 1)[0][0] for i in range(0, 600, 20)]
    assert found == list(range(0, 600, 20))  # every vector finds itself
    allowed = np.array([5, 77, 300, 599])  # a tight filter: answered exactly, all k returned
    got, _ = store.search(x[0], 4, allowed)
    assert got.tolist() == brute(x[allowed], allowed, x[0], 4)
    store.remove(ids[:500])  # HNSW cannot delete in place: rebuilt (back to flat below the threshold)
    assert len(store) == 100 and not store.approximate
    assert store.search(x[550], 1)[0].tolist() == [550]
    store.add(ids[:300], x[:300])
    store.save(tmp_path)
    again = FaissVectors.load(tmp_path, 32, ann_threshold=200)
    assert again.approximate and again.search(x[42], 1)[0].tolist() == [42]


def test_hnsw_removal_is_a_tombstone_until_many_then_a_rebuild(tmp_path):
    x, ids = unit(600), np.arange(600)
    store = FaissVectors(32, ann_threshold=200)
    store.add(ids, x)
    graph = store.index
    store.remove([7, 8, 9, 9999])  # 9999 was never there
    assert store.index is graph and len(store) == 597  # no rebuild
    assert store.search(x[8], 1)[0].tolist() != [8]
    assert 8 not in store.search(x[8], 50)[0].tolist()
    assert 8 not in store.search(x[8], 5, np.array([8, 10, 11]))[0].tolist()
    store.save(tmp_path)
    again = FaissVectors.load(tmp_path, 32, ann_threshold=200)
    assert len(again) == 597 and 8 not in again.search(x[8], 50)[0].tolist()
    assert again.search(x[10], 1)[0].tolist() == [10]
    again.remove(ids[10:200])  # past the share: the graph is rebuilt from the live vectors
    assert again.index is not graph and len(again.deleted) == 0 and len(again) == 407 and again.approximate
    assert again.search(x[300], 1)[0].tolist() == [300]


def test_milvus_lite_round_trip_matches_faiss(tmp_path):
    x, ids = unit(120), np.arange(120)
    faiss_store = FaissVectors(32)
    faiss_store.add(ids, x)
    uri = str(tmp_path / "x.db")
    store = MilvusVectors(uri, "rag_test", 32)
    store.add(ids, x)
    q = unit(1, seed=3)[0]
    assert store.search(q, 5)[0].tolist() == faiss_store.search(q, 5)[0].tolist()
    allowed = ids[::3]
    assert store.search(q, 4, allowed)[0].tolist() == faiss_store.search(q, 4, allowed)[0].tolist()
    store.remove([int(faiss_store.search(q, 1)[0][0])])  # pending until commit, but already invisible
    top_after = store.search(q, 1)[0].tolist()
    assert top_after == faiss_store.search(q, 2)[0].tolist()[1:]
    store.save(tmp_path)
    store.commit()
    store.close()
    again = MilvusVectors(uri, "rag_test", 32)  # persisted in the milvus-lite file
    assert len(again) == 119
    assert again.search(q, 1)[0].tolist() == top_after
    again.delete_from(100)
    assert len(again) == 99
    again.close()
    with pytest.raises(IndexError_, match="dimension|dimensional"):
        MilvusVectors(uri, "rag_test", 16)
