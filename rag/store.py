"""The persistent index under `index/<name>/`: chunks, vectors, BM25, documents and a manifest, updated atomically.

Layout of an index folder:

    manifest.json          the only file that is ever replaced in place (os.replace); names the current generation
    gen-000007/            everything else, written whole for each generation and never modified afterwards:
        chunks.jsonl       one Chunk per line, row order
        vids.npy           vector id of each row
        documents.jsonl    one cleaned Document per line (full text, for showing the article)
        lexical/           BM25 vocabulary, per-row token ids and matrix (rag.lexical)
        vectors.faiss      FAISS index (absent with the Milvus store, whose vectors live in Milvus)
    milvus.db              milvus-lite data when `--store milvus` is used without a URI

A write builds the next `gen-N` folder completely (files fsynced), then replaces `manifest.json`, then deletes older
generations: a crash at any moment leaves a manifest that names a complete generation. The manifest records the format
version, the embedding model id and dimension, the chunker settings, counts, times, and per document its content hash
and chunk ids, and per file of the generation its size and BLAKE2b checksum (checked on every open, and by
`rag index verify`); an index built with another model or chunker refuses to mix and says how to rebuild.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from rag.errors import IndexError_, RagError
from rag.lexical import LexicalIndex, tokenize
from rag.records import Chunk, Document, IngestReport
from rag.script import to_simplified
from rag.settings import Settings
from rag.tagging import encode_tags
from rag.vectors import FaissVectors, MilvusVectors, VectorStore, milvus_collection_name

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LOCK_FILE = ".lock"
GEN_PREFIX = "gen-"
MILVUS_LOCAL = "milvus.db"
INGEST_BATCH_CHUNKS = 2048  # chunks embedded per call while streaming a large ingest (one progress bar each)
COMMIT_EVERY_CHUNKS = 8192  # a long ingest saves a generation this often (~15 min of embedding on 2 cores)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def content_hash(doc: Document) -> str:
    """What decides whether a document changed: its title, date, source and cleaned text (16 hex chars)."""
    h = hashlib.sha256()
    for part in (doc.title, doc.date or "", doc.source or "", doc.text):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def passage_text(chunk: Chunk) -> str:
    """The text embedded for a chunk: its (simplified) title as context, then the simplified chunk text."""
    from rag.embedding import Embedder

    return Embedder.passage_text(to_simplified(chunk.title), chunk.text_simplified)


def lexical_text(chunk: Chunk) -> str:
    """The text BM25 indexes for a chunk: title and chunk (tokenize() simplifies)."""
    return f"{chunk.title}\n{chunk.text_simplified}" if chunk.title else chunk.text_simplified


def _rebuild_hint(folder: Path) -> str:
    return f"rebuild it with `rag ingest --index {folder} --rebuild [PATH ...]`, or delete the folder {folder}"


def _expected_model(settings: Settings) -> str:
    from rag.embedding import model_id_for

    return model_id_for(settings)


# ---------------------------------------------------------------- small file helpers


def _fsync_dir(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in sorted({p.parent for p in folder.rglob("*")} | {folder}):
        _fsync_dir(d)


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False))
            f.write("\n")


def _write_manifest(folder: Path, manifest: dict) -> None:
    """Replace manifest.json atomically (tmp file, fsync, os.replace, fsync of the folder)."""
    tmp = folder / f"{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
    _fsync_dir(folder)


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexError_(f"no index at {folder}: build one with `rag ingest --index {folder} [PATH ...]`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexError_(f"the index at {folder} is damaged (manifest.json unreadable: {e}); {_rebuild_hint(folder)}") from e
    if not isinstance(manifest, dict) or "generation" not in manifest or "documents" not in manifest:
        raise IndexError_(f"the index at {folder} is damaged (manifest.json is not an index manifest); {_rebuild_hint(folder)}")
    return manifest


_HELD: dict[str, int] = {}  # (thread, index folder) pairs holding the write lock (re-entrant: a session, then save())
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def _write_lock(folder: Path, wait: float = 0.0) -> Iterator[None]:
    """One writer at a time per index folder (readers never lock: they read whole generations). Re-entrant within a
    process. With `wait` > 0 a second writer waits up to that many seconds for the first one (saying so once on
    stderr) instead of failing at once."""
    import sys
    import time

    folder.mkdir(parents=True, exist_ok=True)
    key = f"{threading.get_ident()}:{folder.resolve()}"  # re-entrant for this thread; other threads wait like processes
    with _HELD_GUARD:
        if _HELD.get(key):
            _HELD[key] += 1
            held = True
        else:
            held = False
    if held:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key] -= 1
        return
    with open(folder / LOCK_FILE, "a+") as f:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    more = f" for {wait:.0f} s" if wait else ""
                    raise RagError(f"another process is writing the index at {folder}{more}; try again when it has "
                                   f"finished (RAG_WRITE_LOCK_TIMEOUT sets how long to wait)") from None
                if not told:
                    print(f"rag: another process is writing the index at {folder}; waiting up to {wait:.0f} s for it "
                          f"to finish…", file=sys.stderr, flush=True)
                    told = True
                time.sleep(0.2)
        with _HELD_GUARD:
            _HELD[key] = 1
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD.pop(key, None)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def writing(settings: Settings) -> Iterator[None]:
    """Hold the write lock of `settings.index_dir` for a whole write session (waiting up to
    settings.write_lock_timeout seconds for another writer): open the index inside it, so the work is never done
    against a generation another process is about to replace. Leftovers of a killed writer (generation folders the
    manifest does not name, `manifest.json.*.tmp`) are removed first."""
    folder = Path(settings.index_dir)
    with _write_lock(folder, wait=float(settings.write_lock_timeout)):
        remove_stale(folder)
        yield


def _stale_paths(folder: Path) -> list[Path]:
    """Generation folders the manifest does not name and `manifest.json.*.tmp` files (left by a killed writer).
    Nothing when the manifest is unreadable (a damaged index is only ever replaced by a rebuild)."""
    if not folder.is_dir():
        return []
    tmps = [p for p in folder.iterdir() if p.name.startswith(MANIFEST + ".") and p.name.endswith(".tmp")]
    if not (folder / MANIFEST).exists():
        return tmps
    try:
        current = str(_read_manifest(folder).get("folder") or "")
    except IndexError_:
        return tmps
    return tmps + [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(GEN_PREFIX) and p.name != current]


def remove_stale(folder: Path) -> list[str]:
    """Delete what `_stale_paths` finds (call with the write lock held); returns the names removed."""
    gone = []
    for p in _stale_paths(folder):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        gone.append(p.name)
    return gone


def file_digest(path: Path) -> str:
    """BLAKE2b (128-bit) of a file's bytes, read in 1 MB blocks (~1 GB/s: a check on every open stays cheap)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_files(gen_dir: Path, manifest: dict) -> None:
    """Every file the manifest lists is there, with its size and (when recorded) its checksum; ValueError if not."""
    sums = manifest.get("checksums") or {}
    for name, size in (manifest.get("files") or {}).items():
        p = gen_dir / name
        if not p.is_file():
            raise ValueError(f"{name} is missing")
        if p.stat().st_size != size:
            raise ValueError(f"{name} has {p.stat().st_size} bytes, the manifest says {size}")
        if name in sums and file_digest(p) != sums[name]:
            raise ValueError(f"{name} does not match its checksum in the manifest (its content changed after it was "
                             f"written)")


# ---------------------------------------------------------------- the index


class Index:
    """Chunks + vectors + BM25 of a set of documents, persisted atomically under one folder.

    Rows (positions in `chunks`) are shared by the lexical index; vectors are keyed by a vector id per row (`vids`).
    Not thread-safe by itself: hold `index.lock` around concurrent use (the Retriever does for searches).
    """

    def __init__(self, folder: Path, settings: Settings, manifest: dict, chunks: list[Chunk], vids: np.ndarray,
                 lexical: LexicalIndex, vectors: VectorStore | None) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.manifest = manifest
        self.chunks = chunks
        self.vids = np.asarray(vids, dtype=np.int64)
        self.lexical = lexical
        self.vectors = vectors
        self.lock = threading.RLock()
        self._base_generation = int(manifest.get("generation", 0))  # what is on disk under us
        self._new_documents: dict[str, dict] = {}  # full Document dicts not yet in documents.jsonl
        self._removed_vids: list[int] = []
        self._row_of: dict[int, int] | None = None
        self._row_docs: tuple[list[str], np.ndarray] | None = None
        self._milvus_cleaned = False
        self._overwrite = False  # created with overwrite=True: replaces whatever index is there when saved
        self._consistent = True  # False while an update is half-applied in memory
        self.changed = False

    # ------------------------------------------------------------ open / create

    @classmethod
    def exists(cls, folder: str | Path) -> bool:
        return (Path(folder) / MANIFEST).is_file()

    @classmethod
    def create(cls, folder: str | Path, settings: Settings, overwrite: bool = False) -> "Index":
        """An empty index for `folder` (written on the first save). With `overwrite`, it replaces an existing index
        there when it is saved (atomically: until then the old one stays readable)."""
        folder = Path(folder)
        base = 0
        if cls.exists(folder):
            if not overwrite:
                raise IndexError_(f"an index already exists at {folder}; open it, or {_rebuild_hint(folder)}")
            with contextlib.suppress(IndexError_):
                base = int(_read_manifest(folder)["generation"])
        store = (settings.store or "faiss").lower()
        if store not in ("faiss", "milvus"):
            raise RagError(f"unknown vector store {settings.store!r}: use faiss or milvus")
        manifest: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "generation": base,
            "created": _now(),
            "updated": _now(),
            "embedding": {"setting": settings.embedding_model, "model_id": None, "dim": None},
            "chunker": {"size": settings.chunk_size, "overlap": settings.chunk_overlap},
            "store": {"kind": store, "uri": settings.milvus_uri if store == "milvus" else "",
                      "collection": milvus_collection_name(f"{settings.index_name}_{uuid.uuid4().hex[:8]}")
                      if store == "milvus" else ""},
            "counts": {"documents": 0, "chunks": 0},
            "next_vid": 0,
            "documents": {},
        }
        index = cls(folder, settings, manifest, [], np.zeros(0, np.int64), LexicalIndex(), None)
        index._base_generation, index._overwrite = base, overwrite
        return index

    @classmethod
    def open(cls, folder: str | Path, settings: Settings) -> "Index":
        """Load an index without re-embedding anything. Raises IndexError_ (with how to fix it) when it is missing,
        damaged, or was built with another embedding model."""
        folder = Path(folder)
        for attempt in range(3):
            manifest = _read_manifest(folder)
            try:
                return cls._load(folder, settings, manifest)
            except IndexError_:
                # a writer may have replaced the generation while we read it: retry on the new manifest
                again = _read_manifest(folder)
                if again.get("generation") == manifest.get("generation") or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load(cls, folder: Path, settings: Settings, manifest: dict) -> "Index":
        damaged = f"the index at {folder} is damaged"
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexError_(f"the index at {folder} has format {manifest.get('format')}, this version reads "
                              f"{FORMAT_VERSION}; {_rebuild_hint(folder)}")
        emb = manifest.get("embedding") or {}
        want = _expected_model(settings)
        if emb.get("model_id") and emb["model_id"] != want:
            raise IndexError_(
                f"the index at {folder} was built with embedding model {emb['model_id']!r} (dimension {emb.get('dim')}), "
                f"but the settings ask for {want!r}: vectors of different models cannot be mixed. Use "
                f"`--embedding-model {emb.get('setting') or emb['model_id']}` (RAG_EMBEDDING_MODEL), or {_rebuild_hint(folder)}")
        gen_dir = folder / str(manifest.get("folder", ""))
        try:
            check_files(gen_dir, manifest)
            chunks: list[Chunk] = []
            if manifest["counts"]["chunks"] or (gen_dir / "chunks.jsonl").exists():
                with open(gen_dir / "chunks.jsonl", encoding="utf-8") as f:
                    chunks = [Chunk.from_dict(json.loads(line)) for line in f]
            vids = np.load(gen_dir / "vids.npy") if chunks else np.zeros(0, np.int64)
            if len(chunks) != manifest["counts"]["chunks"] or len(vids) != len(chunks):
                raise ValueError(f"{len(chunks)} chunks and {len(vids)} vector ids, the manifest says "
                                 f"{manifest['counts']['chunks']}")
            lexical = LexicalIndex.load(gen_dir / "lexical") if chunks else LexicalIndex()
            if len(lexical) != len(chunks):
                raise ValueError(f"the lexical index has {len(lexical)} rows for {len(chunks)} chunks")
        except IndexError_ as e:
            raise IndexError_(f"{damaged} ({e}); {_rebuild_hint(folder)}") from e
        except (OSError, ValueError, TypeError, KeyError, json.JSONDecodeError, EOFError) as e:
            raise IndexError_(f"{damaged} ({type(e).__name__}: {str(e)[:200]}); {_rebuild_hint(folder)}") from e
        index = cls(folder, settings, manifest, chunks, vids, lexical, None)
        if emb.get("dim"):
            index.vectors = index._open_vectors(int(emb["dim"]), gen_dir)
            if index.vectors.kind == "faiss" and len(index.vectors) != len(chunks):
                raise IndexError_(f"{damaged} ({len(index.vectors)} vectors for {len(chunks)} chunks); {_rebuild_hint(folder)}")
        return index

    def _milvus_uri(self) -> str:
        uri = self.manifest["store"].get("uri") or ""
        return uri or str(self.folder / MILVUS_LOCAL)

    def _open_vectors(self, dim: int, gen_dir: Path | None) -> VectorStore:
        store = self.manifest["store"]
        if store["kind"] == "milvus":
            self.folder.mkdir(parents=True, exist_ok=True)
            return MilvusVectors(self._milvus_uri(), store["collection"], dim)
        if gen_dir is None:
            return FaissVectors(dim, self.settings.ann_threshold)
        try:
            return FaissVectors.load(gen_dir, dim, self.settings.ann_threshold)
        except IndexError_ as e:
            raise IndexError_(f"the index at {self.folder} is damaged ({e}); {_rebuild_hint(self.folder)}") from e

    # ------------------------------------------------------------ reading

    @property
    def documents(self) -> dict[str, dict]:
        """doc_id -> {title, date, source, path, url, script, hash, chunk_ids, added}."""
        return self.manifest["documents"]

    @property
    def model_id(self) -> str | None:
        return self.manifest["embedding"].get("model_id")

    @property
    def dim(self) -> int | None:
        return self.manifest["embedding"].get("dim")

    def row_documents(self) -> tuple[list[str], np.ndarray]:
        """(document ids, the position in that list of each row's document): for fast per-document masks."""
        if self._row_docs is None:
            order = list(dict.fromkeys(c.doc_id for c in self.chunks))
            pos = {d: i for i, d in enumerate(order)}
            self._row_docs = (order, np.fromiter((pos[c.doc_id] for c in self.chunks), dtype=np.int64,
                                                 count=len(self.chunks)))
        return self._row_docs

    def rows_of_vids(self, vids: np.ndarray) -> list[int | None]:
        """Row of each vector id (None for ids this index does not know, e.g. leftovers of a crashed write)."""
        if self._row_of is None:
            self._row_of = {int(v): i for i, v in enumerate(self.vids)}
        return [self._row_of.get(int(v)) for v in vids]

    def document(self, doc_id: str) -> Document | None:
        """The full cleaned document (read from documents.jsonl), or None."""
        if doc_id not in self.documents:
            return None
        if doc_id in self._new_documents:
            return Document(**self._new_documents[doc_id])
        path = self.folder / str(self.manifest.get("folder", "")) / "documents.jsonl"
        if path.is_file():
            key = f'"doc_id": "{doc_id}"'
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if key in line:
                        d = json.loads(line)
                        if d.get("doc_id") == doc_id:
                            return Document(**d)
        return None

    def stats(self) -> dict[str, Any]:
        """documents, chunks, model, dim, store, size on disk, times, chunker, generation."""
        stale = set(_stale_paths(self.folder))  # a killed writer's leftovers are not part of the index
        size = sum(p.stat().st_size for p in self.folder.rglob("*")
                   if p.is_file() and not any(s == p or s in p.parents for s in stale)) if self.folder.exists() else 0
        store = self.manifest["store"]
        out = {
            "index": str(self.folder),
            "documents": len(self.documents),
            "chunks": len(self.chunks),
            "model": self.model_id or _expected_model(self.settings),
            "dim": self.dim,
            "store": store["kind"],
            "approximate": bool(getattr(self.vectors, "approximate", False)),
            "size_bytes": size,
            "size": _human(size),
            "chunker": self.manifest["chunker"],
            "created": self.manifest.get("created"),
            "updated": self.manifest.get("updated"),
            "generation": self.manifest.get("generation"),
        }
        if store["kind"] == "milvus":
            out["milvus_uri"] = self._milvus_uri()
            out["milvus_collection"] = store["collection"]
        return out

    # ------------------------------------------------------------ updates

    def _check_compatible(self, embedder) -> None:
        emb = self.manifest["embedding"]
        if emb.get("model_id") and (emb["model_id"] != embedder.model_id or emb.get("dim") != embedder.dim):
            raise IndexError_(
                f"the index at {self.folder} holds vectors of {emb['model_id']!r} (dimension {emb.get('dim')}); "
                f"cannot add vectors of {embedder.model_id!r} (dimension {embedder.dim}). {_rebuild_hint(self.folder)}")
        ch = self.manifest["chunker"]
        if self.chunks and (ch["size"], ch["overlap"]) != (self.settings.chunk_size, self.settings.chunk_overlap):
            raise IndexError_(
                f"the index at {self.folder} was chunked with size {ch['size']} / overlap {ch['overlap']}, the settings "
                f"say {self.settings.chunk_size} / {self.settings.chunk_overlap}; use the same chunk settings "
                f"(RAG_CHUNK_SIZE, RAG_CHUNK_OVERLAP), or {_rebuild_hint(self.folder)}")
        if not emb.get("model_id"):
            emb.update(model_id=embedder.model_id, dim=int(embedder.dim))
            self.manifest["chunker"] = {"size": self.settings.chunk_size, "overlap": self.settings.chunk_overlap}
        if self.vectors is None:
            self.vectors = self._open_vectors(int(emb["dim"]), None)
        if self.vectors.kind == "milvus" and not self._milvus_cleaned:
            # vectors a crashed write added (ids the manifest never handed out) or failed to delete
            self.vectors.delete_from(int(self.manifest["next_vid"]))
            self.vectors.remove(self.manifest.get("removed_vids") or [])
            self._milvus_cleaned = True

    def plan(self, documents: Iterable[Document]) -> dict[str, str]:
        """What `add` would do with each document: doc_id -> "added" | "updated" | "unchanged" (no side effects)."""
        by_path = {m.get("path"): d for d, m in self.documents.items()}
        out: dict[str, str] = {}
        for doc in documents:
            old = self.documents.get(doc.doc_id)
            if old is not None and old.get("hash") == content_hash(doc):
                out[doc.doc_id] = "unchanged"
            elif old is not None or (doc.path and doc.path in by_path):
                out[doc.doc_id] = "updated"
            else:
                out.setdefault(doc.doc_id, "added")
        return out

    def add(self, documents: list[Document], chunks: list[Chunk], embedder, progress: bool = True,
            commit: bool = True) -> dict[str, str]:
        """Add documents with their chunks: new ones are embedded, a changed one (same doc_id or same path, other
        content) replaces its old chunks, an unchanged one embeds nothing. Returns doc_id -> added/updated/unchanged.
        Saves a new generation unless `commit=False` (then call `save()`)."""
        with self.lock:
            self._check_compatible(embedder)
            plan = self.plan(documents)
            by_path = {m.get("path"): d for d, m in self.documents.items()}
            todo: list[Document] = []
            seen: set[str] = set()
            for doc in documents:
                if plan[doc.doc_id] != "unchanged" and doc.doc_id not in seen:
                    seen.add(doc.doc_id)
                    todo.append(doc)
            chunks_of: dict[str, list[Chunk]] = defaultdict(list)
            for c in chunks:
                chunks_of[c.doc_id].append(c)
            new_chunks = [c for d in todo for c in chunks_of.get(d.doc_id, [])]
            # the slow work first (embedding, tokenizing): if it fails or is interrupted, the index is untouched
            vecs = (embedder.encode_passages([passage_text(c) for c in new_chunks], progress=progress)
                    if new_chunks else np.zeros((0, int(embedder.dim)), np.float32))
            tokens = [tokenize(lexical_text(c)) for c in new_chunks]
            for c in new_chunks:  # POS tags for the readers (rag.tagging): only chunks that go into the index
                c.tags = c.tags or encode_tags(c.text_simplified)
            replaced = [d.doc_id if d.doc_id in self.documents else by_path.get(d.path) for d in todo]
            self._consistent = False  # a crash inside this block must not be saved
            self._remove_docs([r for r in replaced if r])
            start = int(self.manifest["next_vid"])
            vids = np.arange(start, start + len(new_chunks), dtype=np.int64)
            self.vectors.add(vids, vecs)
            self.lexical.add([], tokens=tokens)
            self.chunks.extend(new_chunks)
            self.vids = np.concatenate([self.vids, vids])
            self._row_of = self._row_docs = None
            self.manifest["next_vid"] = start + len(new_chunks)
            for d in todo:
                self.documents[d.doc_id] = {
                    "title": d.title, "date": d.date, "source": d.source, "path": d.path, "url": d.url,
                    "script": d.script, "hash": content_hash(d),
                    "chunk_ids": [c.chunk_id for c in chunks_of.get(d.doc_id, [])], "added": _now(),
                }
                self._new_documents[d.doc_id] = d.to_dict()
            self._consistent = True
            if todo:
                self.changed = True
            if commit and self.changed:
                self.save()
            return plan

    def remove(self, doc_ids: Iterable[str], commit: bool = True) -> list[str]:
        """Delete these documents' chunks from every part of the index; returns the ids that were present."""
        with self.lock:
            present = [d for d in dict.fromkeys(doc_ids) if d in self.documents]
            if present:
                if self.vectors is None and self.dim:
                    self.vectors = self._open_vectors(int(self.dim), None)
                self._consistent = False
                self._remove_docs(present)
                self._consistent = True
                if commit:
                    self.save()
            return present

    def _remove_docs(self, doc_ids: list[str]) -> None:
        gone = set(doc_ids)
        if not gone:
            return
        rows = [i for i, c in enumerate(self.chunks) if c.doc_id in gone]
        if rows:
            dead = self.vids[rows]
            self.vectors.remove(dead)
            self._removed_vids.extend(int(v) for v in dead)
            self.lexical.remove(rows)
            keep = np.ones(len(self.chunks), dtype=bool)
            keep[rows] = False
            self.chunks = [c for c, k in zip(self.chunks, keep) if k]
            self.vids = self.vids[keep]
            self._row_of = self._row_docs = None
        for d in gone:
            self.documents.pop(d, None)
            self._new_documents.pop(d, None)
        self.changed = True

    # ------------------------------------------------------------ saving

    def save(self) -> None:
        """Write a new generation and switch the manifest to it (atomic; see the module docstring)."""
        if not self._consistent:
            raise RagError(f"an update of the index at {self.folder} was interrupted half-way; nothing was saved "
                           f"(the index on disk is unchanged)")
        with self.lock, _write_lock(self.folder):
            prev = None
            if self.exists(self.folder):
                try:
                    prev = _read_manifest(self.folder)
                except IndexError_:
                    if not self._overwrite:  # a damaged index is only ever replaced by a rebuild
                        raise
            if prev is not None and int(prev["generation"]) != self._base_generation:
                raise RagError(f"the index at {self.folder} was changed by another process while this one was "
                               f"updating it; nothing was saved — run the command again")
            old_dir = self.folder / str(self.manifest["folder"]) if self.manifest.get("folder") else None
            gen = self._base_generation + 1
            gen_dir = self.folder / f"{GEN_PREFIX}{gen:06d}"
            if gen_dir.exists():  # left by a write that crashed before its manifest
                shutil.rmtree(gen_dir)
            gen_dir.mkdir(parents=True)
            _write_jsonl(gen_dir / "chunks.jsonl", (c.to_dict() for c in self.chunks))
            np.save(gen_dir / "vids.npy", self.vids)
            self._write_documents(old_dir, gen_dir / "documents.jsonl")
            self.lexical.save(gen_dir / "lexical")
            vec_meta = self.vectors.save(gen_dir) if self.vectors is not None else {"kind": self.manifest["store"]["kind"]}
            _fsync_tree(gen_dir)
            files = {str(p.relative_to(gen_dir)): p.stat().st_size for p in sorted(gen_dir.rglob("*")) if p.is_file()}
            checksums = {name: file_digest(gen_dir / name) for name in files}
            manifest = dict(self.manifest)
            manifest.update(
                generation=gen, folder=gen_dir.name, files=files, checksums=checksums, updated=_now(), vectors=vec_meta,
                counts={"documents": len(self.documents), "chunks": len(self.chunks)},
                removed_vids=self._removed_vids if manifest["store"]["kind"] == "milvus" else [],
            )
            _write_manifest(self.folder, manifest)  # the commit point
            self.manifest, self._base_generation, self._overwrite = manifest, gen, False
            self._new_documents.clear()
            self._removed_vids = []
            self.changed = False
            if self.vectors is not None:
                self.vectors.commit()
            self._cleanup(gen_dir.name)
            old_store = (prev or {}).get("store") or {}
            if (old_store.get("kind") == "milvus" and old_store.get("collection") != manifest["store"]["collection"]
                    and isinstance(self.vectors, MilvusVectors) and (old_store.get("uri") or "") == manifest["store"]["uri"]):
                self.vectors.drop_collection(old_store["collection"])  # the collection of the index a rebuild replaced

    def _write_documents(self, old_dir: Path | None, path: Path) -> None:
        """documents.jsonl of the new generation: the old file's lines for documents still present, then new ones."""
        with open(path, "w", encoding="utf-8") as out:
            old = old_dir / "documents.jsonl" if old_dir is not None else None
            if old is not None and old.is_file():
                with open(old, encoding="utf-8") as f:
                    for line in f:
                        d = json.loads(line)
                        if d.get("doc_id") in self.documents and d.get("doc_id") not in self._new_documents:
                            out.write(line)
            for d in self._new_documents.values():
                out.write(json.dumps(d, ensure_ascii=False))
                out.write("\n")

    def _cleanup(self, keep: str) -> None:
        for p in self.folder.iterdir():
            if p.is_dir() and p.name.startswith(GEN_PREFIX) and p.name != keep:
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith(MANIFEST + ".") and p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)

    def close(self) -> None:
        if self.vectors is not None:
            self.vectors.close()


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# ---------------------------------------------------------------- ingest into an index

CHECKPOINT_DIR = "embed-checkpoint"
CHECKPOINT_CHUNKS = 1000  # a long ingest keeps its embedded vectors on disk this often (~2 min of embedding on 2 cores)


class CheckpointEmbedder:
    """Wraps an embedder so that passage vectors are appended to `<index>/embed-checkpoint/` every CHECKPOINT_CHUNKS
    texts: an ingest killed mid-way (SIGKILL, power loss) re-embeds nothing it had already embedded when run again.
    Vectors are keyed by a hash of the model id and the passage text; `clear()` drops them once a generation holding
    them is saved."""

    def __init__(self, embedder, folder: Path) -> None:
        self._e = embedder
        self.folder = Path(folder) / CHECKPOINT_DIR
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self._vecs: dict[str, np.ndarray] = {}
        self._load()

    def __getattr__(self, name: str):
        return getattr(self._e, name)

    def _key(self, text: str) -> str:
        return hashlib.blake2b(f"{self.model_id}\x00{text}".encode("utf-8"), digest_size=16).hexdigest()

    def _load(self) -> None:
        for p in sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []:
            try:
                with np.load(p) as z:
                    keys, vecs = z["keys"], z["vecs"]
                if vecs.ndim == 2 and vecs.shape[1] == int(self.dim) and len(keys) == len(vecs):
                    self._vecs.update(zip(keys.tolist(), vecs))
            except (OSError, ValueError, KeyError, EOFError):
                p.unlink(missing_ok=True)  # a batch cut short by the kill: embedded again

    def __len__(self) -> int:
        return len(self._vecs)

    def encode_passages(self, texts, progress: bool = False) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        first = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        missing = [i for k, i in first.items() if k not in self._vecs]  # each text not embedded yet, once
        for lo in range(0, len(missing), CHECKPOINT_CHUNKS):
            part = missing[lo:lo + CHECKPOINT_CHUNKS]
            vecs = np.asarray(self._e.encode_passages([texts[i] for i in part], progress=progress), dtype=np.float32)
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{len(list(self.folder.glob('*.npz'))):06d}-{uuid.uuid4().hex[:8]}"
            tmp = self.folder / f"{name}.tmp.npz"
            np.savez(tmp, keys=np.array([keys[i] for i in part]), vecs=vecs)
            os.replace(tmp, self.folder / f"{name}.npz")
            self._vecs.update(zip((keys[i] for i in part), vecs))
        if not texts:
            return np.zeros((0, int(self.dim)), np.float32)
        return np.stack([self._vecs[k] for k in keys]).astype(np.float32)

    def clear(self) -> None:
        """Forget the checkpoint (its vectors are in a saved generation now)."""
        self._vecs.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def open_or_create(settings: Settings, rebuild: bool = False) -> Index:
    """The index at `settings.index_dir`: opened if it exists (unless `rebuild`), else a new empty one."""
    folder = settings.index_dir
    if Index.exists(folder) and not rebuild:
        return Index.open(folder, settings)
    return Index.create(folder, settings, overwrite=rebuild)


def ingest_into_index(paths: list[str | Path], settings: Settings, progress: bool = True, limit: int | None = None,
                      rebuild: bool = False, embedder=None) -> list[IngestReport]:
    """Load, clean and chunk `paths` (streaming, via rag.ingest.iter_ingest) into the index at `settings.index_dir`.

    Holds the index's write lock for the whole run (a second writer waits, see `writing`). Chunks are embedded in
    batches of ~2048, checkpointed to disk every ~1000 (CheckpointEmbedder: a killed run resumes without re-embedding);
    the index is saved every ~8192 new chunks and at the end (also when interrupted with Ctrl-C: what was embedded is
    kept). `limit` stops after that many articles. Each report's status becomes added/updated/unchanged.
    `rebuild` starts a fresh index that replaces the old one when saved.
    """
    with writing(settings):  # a second writer waits here, before doing any work
        return _ingest_locked(paths, settings, progress, limit, rebuild, embedder)


def _ingest_locked(paths, settings: Settings, progress: bool, limit: int | None, rebuild: bool,
                   embedder) -> list[IngestReport]:
    from rag.ingest import iter_ingest

    index = open_or_create(settings, rebuild=rebuild)
    if embedder is None:
        from rag.embedding import get_embedder

        embedder = get_embedder(settings)
    embedder = CheckpointEmbedder(embedder, settings.index_dir)
    reports: list[IngestReport] = []
    pending: list[tuple[Document, list[Chunk], IngestReport]] = []
    since_commit = 0

    def flush() -> None:
        nonlocal since_commit
        if not pending:
            return
        docs = [d for d, _, _ in pending]
        status = index.add(docs, [c for _, cs, _ in pending for c in cs], embedder, progress=progress, commit=False)
        for d, cs, r in pending:
            r.status = status.get(d.doc_id, r.status)
            since_commit += len(cs) if r.status != "unchanged" else 0
        pending.clear()
        if since_commit >= COMMIT_EVERY_CHUNKS:
            index.save()
            embedder.clear()
            since_commit = 0

    finished = False
    try:
        for doc, chunks, report in iter_ingest(paths, settings, progress=progress, limit=limit):
            reports.append(report)
            if doc is None or not report.ok or report.status == "skipped":  # unreadable, or a repeat within the run
                continue
            pending.append((doc, chunks, report))
            if sum(len(cs) for _, cs, _ in pending) >= INGEST_BATCH_CHUNKS:
                flush()
        flush()
        finished = True
    finally:
        # normal end, error or Ctrl-C: keep everything already embedded
        pending.clear()
        if index._consistent and (index.changed or (rebuild and reports)):
            index.save()
        if finished:
            embedder.clear()  # everything embedded is in the saved index; an interrupted run keeps its checkpoint
        index.close()
    return reports


def open_or_build_default(settings: Settings | None = None, progress: bool = True) -> Index:
    """The index at `settings.index_dir`; on first use it is built from the bundled corpus (rag/corpus)."""
    from rag.ingest import default_corpus

    settings = settings or Settings.from_env()
    if Index.exists(settings.index_dir):
        return Index.open(settings.index_dir, settings)
    reports = ingest_into_index(default_corpus(), settings, progress=progress)
    if not Index.exists(settings.index_dir):
        failed = "; ".join(f"{r.path}: {r.error}" for r in reports if not r.ok)
        raise RagError(f"could not build the default index at {settings.index_dir}" + (f" ({failed})" if failed else ""))
    return Index.open(settings.index_dir, settings)
