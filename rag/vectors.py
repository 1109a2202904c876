"""Dense vector stores keyed by integer vector ids: FAISS in-process (default) or Milvus through llama-index.

Both offer `add(ids, vectors)`, `remove(ids)`, `search(query, k, allowed) -> (ids, scores)` (inner product of
L2-normalized vectors = cosine), `save(folder) -> meta` (write files for a new index generation) and `commit()` (run
after the index manifest points at that generation). The index store (rag/store.py) maps vector ids to chunks.

Why FAISS directly and not llama-index's `FaissVectorStore`: that store cannot delete (`delete()` raises
NotImplementedError), rejects metadata filters (`query(filters=...)` raises ValueError) and keys vectors by insertion
position, so incremental updates, `rag remove` and filtered search would all be impossible through it. Milvus's
llama-index store does delete and filter, so it is used as is.
"""
from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from rag.errors import IndexError_, RagError

log = logging.getLogger(__name__)

HNSW_M = 32  # graph degree of the approximate index
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512  # at least 2*k; 100k e5-like vectors: recall@50 0.92 vs exact at 4.6 ms (bench/bench_index.py)
EXACT_SUBSET = 20_000  # a filtered HNSW search over at most this many vectors is done exactly instead
REBUILD_DELETED_SHARE = 0.2  # HNSW removals are tombstones until they are this share of the graph, then it is rebuilt


class VectorStore(Protocol):
    kind: str
    dim: int

    def __len__(self) -> int: ...
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def save(self, folder: Path) -> dict: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a single-query FAISS search on one OpenMP thread: on 2 busy cores, OpenMP's waiting threads made a flat
    search of 100k vectors 3x slower (92 ms against 31 ms, bench/bench_index.py); building keeps all threads."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _as_ids(ids) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))


def _as_vectors(vectors, dim: int) -> np.ndarray:
    v = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if v.ndim != 2 or v.shape[1] != dim:
        raise RagError(f"expected vectors of dimension {dim}, got shape {v.shape}")
    return v


class FaissVectors:
    """Exact inner-product search (IndexFlatIP) up to `ann_threshold` vectors, HNSW (IndexHNSWFlat) beyond.

    Filtered search passes an IDSelector to FAISS; on an HNSW index a filter that keeps few vectors is answered
    exactly over those vectors instead (graph search with a tight filter can stop short of k results).
    An HNSW graph cannot delete in place: removed ids become tombstones (`deleted`, saved beside the index) that every
    search excludes, and the graph is rebuilt from the live vectors once tombstones pass `REBUILD_DELETED_SHARE` of it,
    so `rag remove` on a large index takes milliseconds, not a rebuild.
    """

    kind = "faiss"

    def __init__(self, dim: int, ann_threshold: int = 200_000) -> None:
        import faiss

        self.dim, self.ann_threshold = int(dim), int(ann_threshold)
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.deleted = np.zeros(0, np.int64)  # tombstoned ids still in the HNSW graph (sorted)

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.deleted)

    @property
    def approximate(self) -> bool:
        import faiss

        return isinstance(faiss.downcast_index(self.index.index), faiss.IndexHNSWFlat)

    # ---------------------------------------------------------------- raw access

    def _matrix(self) -> np.ndarray:
        """A read-only view of the stored vectors (row i has id `self._ids()[i]`); no copy."""
        import faiss

        base = faiss.downcast_index(self.index.index)
        flat = base if isinstance(base, faiss.IndexFlat) else faiss.downcast_index(base.storage)
        n = int(flat.ntotal)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)

    def _ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def _rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """A fresh index over these vectors: flat, or HNSW above the threshold."""
        import faiss

        if len(ids) > self.ann_threshold:
            base = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            base.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            base = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIDMap2(base)
        if len(ids):
            index.add_with_ids(vectors, ids)
        self.index = index
        self.deleted = np.zeros(0, np.int64)

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything not tombstoned (vectors copied only when there are tombstones)."""
        ids, mat = self._ids(), self._matrix()
        if not len(self.deleted):
            return ids, mat
        keep = ~np.isin(ids, self.deleted)
        return ids[keep], np.array(mat[keep])

    # ---------------------------------------------------------------- updates

    def add(self, ids, vectors) -> None:
        ids, vectors = _as_ids(ids), _as_vectors(vectors, self.dim)
        if len(ids) != len(vectors):
            raise RagError("ids and vectors differ in length")
        if not len(ids):
            return
        if not self.approximate and len(self) + len(ids) > self.ann_threshold:
            # crossing the threshold: move everything into an HNSW graph
            self._rebuild(np.concatenate([self._ids(), ids]), np.concatenate([self._matrix(), vectors]))
        else:
            self.index.add_with_ids(vectors, ids)

    def remove(self, ids) -> None:
        import faiss

        ids = _as_ids(ids)
        if not len(ids):
            return
        if self.approximate:  # HNSW cannot delete: tombstones, and a rebuild once they are many
            present = ids[np.isin(ids, self._ids())]
            self.deleted = np.union1d(self.deleted, present).astype(np.int64)
            if len(self) <= self.ann_threshold or len(self.deleted) > REBUILD_DELETED_SHARE * self.index.ntotal:
                self._rebuild(*self._live())
        else:
            self.index.remove_ids(faiss.IDSelectorBatch(ids))

    # ---------------------------------------------------------------- search

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The k ids with the highest inner product with `query` (best first), only among `allowed` ids if given."""
        import faiss

        q = _as_vectors(np.asarray(query, dtype=np.float32).reshape(1, -1), self.dim)
        n = len(self)
        if allowed is not None:
            allowed = _as_ids(allowed)
            if len(self.deleted):
                allowed = np.setdiff1d(allowed, self.deleted)
            if not len(allowed):
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(int(k), n if allowed is None else min(n, len(allowed)))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if allowed is None:
            params = tombstones = live = None
            if self.approximate:
                if len(self.deleted):  # both selectors stay referenced here while FAISS uses them
                    tombstones = faiss.IDSelectorBatch(self.deleted)
                    live = faiss.IDSelectorNot(tombstones)
                params = faiss.SearchParametersHNSW(sel=live, efSearch=max(HNSW_EF_SEARCH, 2 * k))
            with _one_thread():
                D, I = self.index.search(q, k, params=params)
        elif self.approximate and len(allowed) <= EXACT_SUBSET:
            rows = np.flatnonzero(np.isin(self._ids(), allowed))
            scores = self._matrix()[rows] @ q[0]
            top = np.argsort(-scores, kind="stable")[:k]
            return self._ids()[rows[top]], scores[top].astype(np.float32)
        else:
            sel = faiss.IDSelectorBatch(allowed)
            if self.approximate:
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(HNSW_EF_SEARCH, 2 * k))
            else:
                params = faiss.SearchParameters(sel=sel)
            with _one_thread():
                D, I = self.index.search(q, k, params=params)
        ok = I[0] >= 0
        return I[0][ok].astype(np.int64), D[0][ok].astype(np.float32)

    # ---------------------------------------------------------------- persistence

    def save(self, folder: Path) -> dict:
        import faiss

        faiss.write_index(self.index, str(Path(folder) / "vectors.faiss"))
        if len(self.deleted):
            np.save(Path(folder) / "vectors.deleted.npy", self.deleted)
        return {"kind": self.kind, "approximate": self.approximate, "count": len(self), "deleted": len(self.deleted)}

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass

    @classmethod
    def load(cls, folder: Path, dim: int, ann_threshold: int = 200_000) -> "FaissVectors":
        import faiss

        path = Path(folder) / "vectors.faiss"
        try:
            index = faiss.read_index(str(path))
        except (RuntimeError, OSError) as e:
            raise IndexError_(f"vector file {path} is missing or damaged ({str(e).splitlines()[0][:160]})") from e
        if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
            raise IndexError_(f"vector file {path} does not hold {dim}-dimensional vectors with ids")
        self = cls(dim, ann_threshold)
        self.index = index
        deleted = Path(folder) / "vectors.deleted.npy"
        if deleted.exists():
            try:
                self.deleted = np.load(deleted).astype(np.int64)
            except (OSError, ValueError) as e:
                raise IndexError_(f"tombstone file {deleted} is damaged ({e})") from e
        return self


class MilvusVectors:
    """Vectors in a Milvus collection through llama-index's `MilvusVectorStore` (inner product, FLAT index).

    `uri` is a milvus-lite file path (embedded, e.g. `index/x/milvus.db`) or `http://host:19530` for a server or
    cluster. Node ids are the vector ids as strings; an integer `vid` field allows range deletes. Removals are
    applied in `commit()`, after the index manifest no longer refers to them, so a crash never leaves the manifest
    pointing at deleted vectors (vectors added by a crashed write are ids the manifest does not know; they are
    ignored and deleted on the next write).
    """

    kind = "milvus"

    def __init__(self, uri: str, collection: str, dim: int) -> None:
        self.uri, self.collection, self.dim = str(uri), collection, int(dim)
        self._pending: set[int] = set()
        try:
            from llama_index.vector_stores.milvus import MilvusVectorStore

            self.store = MilvusVectorStore(uri=self.uri, collection_name=collection, dim=self.dim,
                                           similarity_metric="IP", use_async_client=False, overwrite=False,
                                           consistency_level="Strong")
        except Exception as e:  # pymilvus raises its own exception types (connection, schema)
            raise IndexError_(f"cannot open Milvus collection {collection!r} at {self.uri}: {str(e)[:300]}") from e
        schema_dim = self._schema_dim()
        if schema_dim is not None and schema_dim != self.dim:
            raise IndexError_(f"Milvus collection {collection!r} at {self.uri} holds {schema_dim}-dimensional vectors, "
                              f"not {self.dim}; use another index name or drop the collection")

    def _schema_dim(self) -> int | None:
        try:
            for f in self.store.client.describe_collection(self.collection).get("fields", []):
                if f.get("name") == self.store.embedding_field:
                    return int(f.get("params", {}).get("dim"))
        except Exception:  # noqa: BLE001 - describe is informational only
            return None
        return None

    def __len__(self) -> int:
        stats = self.store.client.get_collection_stats(self.collection)
        return int(stats.get("row_count", 0)) - len(self._pending)

    def add(self, ids, vectors) -> None:
        from llama_index.core.schema import TextNode

        ids, vectors = _as_ids(ids), _as_vectors(vectors, self.dim)
        nodes = [TextNode(id_=str(int(i)), text="", embedding=v.tolist(), metadata={"vid": int(i)})
                 for i, v in zip(ids, vectors)]
        if nodes:
            self.store.add(nodes)

    def remove(self, ids) -> None:
        self._pending.update(int(i) for i in _as_ids(ids))

    def delete_from(self, first_id: int) -> None:
        """Delete every vector with id >= first_id (leftovers of a write that crashed before its manifest)."""
        from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

        self.store.delete_nodes(filters=MetadataFilters(
            filters=[MetadataFilter(key="vid", value=int(first_id), operator=FilterOperator.GTE)]))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from llama_index.core.vector_stores.types import VectorStoreQuery

        q = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        allowed_set = None if allowed is None else set(int(i) for i in _as_ids(allowed))
        if allowed_set is not None and not allowed_set:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        node_ids = None
        if allowed_set is not None and len(allowed_set) <= 1000:
            node_ids = [str(i) for i in sorted(allowed_set - self._pending)]
            if not node_ids:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
        fetch = int(k) + len(self._pending)
        while True:
            limit = min(fetch, 16_384)  # Milvus caps topk
            res = self.store.query(VectorStoreQuery(query_embedding=q, similarity_top_k=limit, node_ids=node_ids,
                                                    output_fields=["vid"]))
            pairs = [(int(i), float(s)) for i, s in zip(res.ids or [], res.similarities or [])
                     if int(i) not in self._pending and (allowed_set is None or int(i) in allowed_set)]
            if len(pairs) >= k or len(res.ids or []) < limit or limit == 16_384:
                break
            fetch *= 4  # a wide filter applied after search: ask for more
        pairs = pairs[:k]
        return np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.float32)

    def save(self, folder: Path) -> dict:
        self.store.client.flush(self.collection)
        return {"kind": self.kind, "uri": self.uri, "collection": self.collection}

    def commit(self) -> None:
        if self._pending:
            self.store.delete_nodes(node_ids=[str(i) for i in sorted(self._pending)])
            self.store.client.flush(self.collection)
            self._pending.clear()

    def drop_collection(self, name: str) -> None:
        """Drop another collection on the same server (the one a rebuilt index replaced)."""
        if name != self.collection and name in self.store.client.list_collections():
            self.store.client.drop_collection(name)

    def close(self) -> None:
        try:
            self.store.client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection is not an error worth showing
            pass


def milvus_collection_name(index_name: str) -> str:
    """A valid Milvus collection name for an index (letters, digits, underscores; starts with a letter)."""
    return "rag_" + (re.sub(r"[^0-9A-Za-z_]", "_", index_name) or "default")
