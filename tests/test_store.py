"""rag.store: persistence without re-embedding, atomic writes under SIGKILL, incompatible/corrupt indexes, incremental
updates and removal across every part of the index.

These tests use a small deterministic embedder (character-bigram hashing) because they test bookkeeping, not retrieval
quality; retrieval quality with the real model is in tests/test_retrieval.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import chunk_document
from rag.errors import IndexError_, RagError
from rag.records import Document
from rag.script import to_simplified
from rag.settings import Settings
from rag.store import Index
from fakes import HashEmbedder

TESTS = Path(__file__).resolve().parent


def make_doc(text: str, path: str, title: str = "", date: str | None = None, source: str | None = None) -> Document:
    return Document(doc_id=hashlib.sha256(text.encode()).hexdigest()[:16], title=title or path, text=text,
                    text_simplified=to_simplified(text), date=date, source=source, path=path, script="simplified")


def corpus(n: int, start: int = 0) -> list[Document]:
    """n synthetic multi-chunk articles with distinct words."""
    docs = []
    for i in range(start, start + n):
        body = "".join(f"第{i}号文章的第{j}句话讲述了城市{i}的科技成果转化项目{i * 7 + j}个。" for j in range(30))
        docs.append(make_doc(body, f"/data/article_{i}.txt", title=f"文章{i}", date=f"2024-01-{(i % 28) + 1:02d}"))
    return docs


def settings_for(tmp_path: Path, **over) -> Settings:
    return dataclasses.replace(Settings.from_env(), index_root=tmp_path, index_name="idx",
                               embedding_model="fake-bigram", **over)


def chunks_of(docs: list[Document], s: Settings):
    return [c for d in docs for c in chunk_document(d, s.chunk_size, s.chunk_overlap)]


def build(tmp_path: Path, docs: list[Document], **over) -> tuple[Index, Settings, HashEmbedder]:
    s = settings_for(tmp_path, **over)
    emb = HashEmbedder()
    index = Index.create(s.index_dir, s)
    index.add(docs, chunks_of(docs, s), emb, progress=False)
    return index, s, emb


def test_reopen_loads_everything_without_embedding(tmp_path):
    docs = corpus(4)
    index, s, emb = build(tmp_path, docs)
    n = len(index.chunks)
    assert emb.texts == n and n > 4
    fresh = HashEmbedder()
    again = Index.open(s.index_dir, s)
    assert [c.to_dict() for c in again.chunks] == [c.to_dict() for c in index.chunks]
    assert len(again.vectors) == len(again.lexical) == n
    assert again.manifest["embedding"] == {"setting": "fake-bigram", "model_id": "fake-bigram", "dim": 64}
    assert again.manifest["chunker"] == {"size": s.chunk_size, "overlap": s.chunk_overlap}
    assert again.documents[docs[2].doc_id]["chunk_ids"] == [c.chunk_id for c in again.chunks if c.doc_id == docs[2].doc_id]
    assert len(again.documents[docs[2].doc_id]["hash"]) == 16
    q = fresh.encode_queries(["城市2的科技成果"])[0]
    assert again.vectors.search(q, 3)[0].tolist() == index.vectors.search(q, 3)[0].tolist()
    assert again.document(docs[1].doc_id).text == docs[1].text  # full documents are kept too
    assert fresh.texts == 0
    st = again.stats()
    assert (st["documents"], st["chunks"], st["model"], st["dim"], st["store"]) == (4, n, "fake-bigram", 64, "faiss")
    assert st["size_bytes"] > 0


def test_incremental_add_change_remove(tmp_path):
    docs = corpus(3)
    index, s, emb = build(tmp_path, docs)
    n0 = len(index.chunks)
    # same documents again + one new: only the new one is embedded
    new = corpus(1, start=3)
    emb2 = HashEmbedder()
    index = Index.open(s.index_dir, s)
    status = index.add(docs + new, chunks_of(docs + new, s), emb2, progress=False)
    assert status == {**{d.doc_id: "unchanged" for d in docs}, new[0].doc_id: "added"}
    assert emb2.texts == len(chunks_of(new, s))
    # nothing new at all: no embedding call, no new generation
    gen = index.manifest["generation"]
    emb3 = HashEmbedder()
    assert set(index.add(docs, chunks_of(docs, s), emb3, progress=False).values()) == {"unchanged"}
    assert emb3.calls == 0 and index.manifest["generation"] == gen
    # a changed article at the same path replaces the old one's chunks
    changed = make_doc(docs[1].text.replace("科技成果", "技术专利") + "新增一句。", docs[1].path, title="文章1")
    emb4 = HashEmbedder()
    status = Index.open(s.index_dir, s).add([changed], chunks_of([changed], s), emb4, progress=False)
    assert status == {changed.doc_id: "updated"} and emb4.texts == len(chunks_of([changed], s))
    index = Index.open(s.index_dir, s)
    assert docs[1].doc_id not in index.documents and changed.doc_id in index.documents
    assert not any(c.doc_id == docs[1].doc_id for c in index.chunks)
    assert len(index.chunks) == len(index.vectors) == len(index.lexical) == len(index.vids)
    # remove: gone from chunks, vectors, lexical, manifest and documents.jsonl
    before = len(index.chunks)
    k = len(index.documents[docs[0].doc_id]["chunk_ids"])
    assert index.remove([docs[0].doc_id, "no-such-id"]) == [docs[0].doc_id]
    again = Index.open(s.index_dir, s)
    assert len(again.chunks) == len(again.vectors) == len(again.lexical) == before - k
    assert docs[0].doc_id not in again.documents and again.document(docs[0].doc_id) is None
    assert not any(c.doc_id == docs[0].doc_id for c in again.chunks)
    lex_rows = {r for r, _ in again.lexical.search("第0号文章", 50)}
    assert all(again.chunks[r].doc_id != docs[0].doc_id for r in lex_rows)
    assert set(again.rows_of_vids(again.vectors.search(emb.encode_queries(["第0号文章"])[0], 500)[0])) <= set(range(len(again.chunks)))
    assert again.manifest["counts"] == {"documents": 3, "chunks": before - k} and n0 > 0


def test_other_model_or_chunker_refuses_with_rebuild_hint(tmp_path):
    docs = corpus(2)
    index, s, _ = build(tmp_path, docs)
    other = dataclasses.replace(s, embedding_model="some-other-model")
    with pytest.raises(IndexError_, match=r"fake-bigram.*--rebuild"):
        Index.open(s.index_dir, other)

    class OtherDim(HashEmbedder):
        dim = 32

    with pytest.raises(IndexError_, match="cannot add vectors"):
        Index.open(s.index_dir, s).add(corpus(1, 5), chunks_of(corpus(1, 5), s), OtherDim(), progress=False)
    rechunk = dataclasses.replace(s, chunk_size=s.chunk_size + 100)
    with pytest.raises(IndexError_, match=r"chunk.*--rebuild"):
        Index.open(s.index_dir, rechunk).add(corpus(1, 5), chunks_of(corpus(1, 5), rechunk), HashEmbedder(), progress=False)
    # --rebuild: a new index replaces the old one when saved
    fresh = Index.create(s.index_dir, rechunk, overwrite=True)
    fresh.add(corpus(1, 7), chunks_of(corpus(1, 7), rechunk), HashEmbedder(), progress=False)
    reopened = Index.open(s.index_dir, rechunk)
    assert len(reopened.documents) == 1 and reopened.manifest["chunker"]["size"] == s.chunk_size + 100
    assert sorted(p.name for p in s.index_dir.glob("gen-*")) == [reopened.manifest["folder"]]


@pytest.mark.parametrize("damage", ["truncate_chunks", "garbage_manifest", "garbage_vectors", "missing_lexical",
                                    "bad_json_line"])
def test_corrupt_index_gives_a_clear_error(tmp_path, damage, capsys, monkeypatch):
    index, s, _ = build(tmp_path, corpus(2))
    gen = s.index_dir / index.manifest["folder"]
    if damage == "truncate_chunks":
        data = (gen / "chunks.jsonl").read_bytes()
        (gen / "chunks.jsonl").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_manifest":
        (s.index_dir / "manifest.json").write_bytes(b"\x00\xffnot json")
    elif damage == "garbage_vectors":
        size = (gen / "vectors.faiss").stat().st_size
        (gen / "vectors.faiss").write_bytes(os.urandom(size))
    elif damage == "missing_lexical":
        (gen / "lexical" / "bm25.npz").unlink()
    elif damage == "bad_json_line":
        lines = (gen / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
        lines[1] = "{" + "x" * (len(lines[1].encode()) - 1)  # same size, not JSON
        (gen / "chunks.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(IndexError_, match=r"damaged.*--rebuild"):
        Index.open(s.index_dir, s)
    from rag.cli import main

    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-bigram")
    code = main(["index", "stats", "--index", str(s.index_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rag: ") and "damaged" in err and "Traceback" not in err


@pytest.mark.parametrize("damage", ["digit_swap", "garble_vectors_4k", "garble_vids"])
def test_same_size_damage_is_caught_by_the_checksums(tmp_path, damage, capsys, monkeypatch):
    """Edits that keep every file's size (59 -> 95 in chunks.jsonl, 4 KB of noise in vectors.faiss or vids.npy)."""
    index, s, _ = build(tmp_path, corpus(2))
    gen = s.index_dir / index.manifest["folder"]
    if damage == "digit_swap":
        data = (gen / "chunks.jsonl").read_bytes()
        i = data.index(b"7")  # some digit of a number in the article text
        (gen / "chunks.jsonl").write_bytes(data[:i] + (b"9" if data[i:i + 1] != b"9" else b"5") + data[i + 1:])
    else:
        name = "vectors.faiss" if damage == "garble_vectors_4k" else "vids.npy"
        data = bytearray((gen / name).read_bytes())
        start = len(data) // 2 if damage == "garble_vectors_4k" else 128  # after the .npy header
        n = min(4096, len(data) - start)
        data[start:start + n] = os.urandom(n)
        (gen / name).write_bytes(bytes(data))
    with pytest.raises(IndexError_, match=r"damaged.*checksum.*--rebuild"):
        Index.open(s.index_dir, s)
    from rag.cli import main

    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-bigram")
    for argv in (["index", "verify", "--index", str(s.index_dir)], ["index", "stats", "--index", str(s.index_dir)]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("rag: ") and "checksum" in err and "Traceback" not in err


def test_index_verify_passes_on_a_sound_index(tmp_path, capsys, monkeypatch):
    index, s, _ = build(tmp_path, corpus(2))
    assert set(index.manifest["checksums"]) == set(index.manifest["files"])
    from rag.cli import main

    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-bigram")
    assert main(["index", "verify", "--index", str(s.index_dir)]) == 0
    assert "checksums match" in capsys.readouterr().out


def test_missing_index_message(tmp_path):
    s = settings_for(tmp_path)
    with pytest.raises(IndexError_, match="no index at .*rag ingest"):
        Index.open(tmp_path / "nothing", s)


def test_a_second_writer_cannot_overwrite_newer_changes(tmp_path):
    index, s, _ = build(tmp_path, corpus(2))
    a, b = Index.open(s.index_dir, s), Index.open(s.index_dir, s)
    a.add(corpus(1, 10), chunks_of(corpus(1, 10), s), HashEmbedder(), progress=False)
    with pytest.raises(RagError, match="another process"):
        b.add(corpus(1, 11), chunks_of(corpus(1, 11), s), HashEmbedder(), progress=False)
    assert len(Index.open(s.index_dir, s).documents) == 3


# ---------------------------------------------------------------- crash safety: a writer killed with SIGKILL

WRITER = textwrap.dedent("""
    import sys, time, dataclasses
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import rag.store as store
    from test_store import HashEmbedder, corpus, chunks_of, settings_for
    s = settings_for(Path({root!r}))
    pause = {pause!r}
    if pause:
        owner = store.Index if pause.startswith("Index.") else store
        pause = pause.removeprefix("Index.")
        original = getattr(owner, pause)
        def paused(*args, **kwargs):
            if pause == "_write_jsonl":  # stop half-way through writing the chunks file
                rows = list(args[1])
                original(args[0], rows[: len(rows) // 2])
            print("PAUSED", flush=True)
            time.sleep(120)
        setattr(owner, pause, paused)
    index = store.Index.open(s.index_dir, s)
    docs = corpus({n}, start=100)
    print("WRITING", flush=True)
    index.add(docs, chunks_of(docs, s), HashEmbedder(), progress=False)
    print("DONE", flush=True)
""")


def run_writer(tmp_path: Path, pause: str | None, n: int) -> subprocess.Popen:
    code = WRITER.format(tests=str(TESTS), root=str(tmp_path), pause=pause, n=n)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=str(TESTS.parent), env={**os.environ, "PYTHONPATH": str(TESTS.parent)})


def wait_for(proc: subprocess.Popen, marker: str, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        line = proc.stdout.readline()
        if marker in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"writer exited ({proc.returncode}) before {marker}")
    raise AssertionError(f"writer never printed {marker}")


def assert_loads_with(s: Settings, n_docs: set[int]) -> Index:
    index = Index.open(s.index_dir, s)
    assert len(index.documents) in n_docs
    assert len(index.chunks) == len(index.vectors) == len(index.lexical)
    q = HashEmbedder().encode_queries(["城市1的科技成果"])[0]
    assert index.vectors.search(q, 1)[0].size == 1
    return index


@pytest.mark.parametrize("pause,expect", [
    ("_write_jsonl", 3),  # killed half-way through writing the new chunks file
    ("_fsync_tree", 3),  # every new file written, not yet synced
    ("_write_manifest", 3),  # new generation complete, manifest not yet replaced
    ("Index._cleanup", 23),  # manifest replaced (committed), old generation not yet deleted
])
def test_sigkill_mid_write_leaves_a_loadable_index(tmp_path, pause, expect):
    index, s, _ = build(tmp_path, corpus(3))
    proc = run_writer(tmp_path, pause, n=20)
    try:
        wait_for(proc, "PAUSED")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert len(list(s.index_dir.glob("gen-*"))) == 2  # the killed write left a second generation folder
    again = assert_loads_with(s, {expect})
    # the next write works and clears the leftovers
    again.add(corpus(1, 50), chunks_of(corpus(1, 50), s), HashEmbedder(), progress=False)
    assert_loads_with(s, {expect + 1})
    assert [p.name for p in s.index_dir.glob("gen-*")] == [Index.open(s.index_dir, s).manifest["folder"]]


def test_sigkill_at_random_moments_never_breaks_the_index(tmp_path):
    s = settings_for(tmp_path)
    outcomes = set()
    for delay in (0.5, 2.0, 6.0):
        shutil.rmtree(s.index_dir, ignore_errors=True)
        build(tmp_path, corpus(3))
        proc = run_writer(tmp_path, None, n=60)
        try:
            wait_for(proc, "WRITING")
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            proc.kill()
        outcomes.add(len(assert_loads_with(s, {3, 63}).documents))
    assert 3 in outcomes  # at least one kill landed before the commit


def test_ingest_into_index_and_default_build(tmp_path):
    from rag.ingest import default_corpus
    from rag.store import ingest_into_index, open_or_build_default

    s = settings_for(tmp_path)
    emb = HashEmbedder()
    reports = ingest_into_index(default_corpus(), s, progress=False, embedder=emb)
    assert [r.status for r in reports if r.ok] == ["added"] * 5
    n = len(Index.open(s.index_dir, s).chunks)
    assert emb.texts == n
    emb2 = HashEmbedder()
    reports = ingest_into_index(default_corpus(), s, progress=False, embedder=emb2)
    assert [r.status for r in reports if r.ok] == ["unchanged"] * 5 and emb2.calls == 0
    index = open_or_build_default(s, progress=False)  # exists: opened, nothing embedded
    assert len(index.chunks) == n
    reports = ingest_into_index(default_corpus()[:2], s, progress=False, embedder=HashEmbedder(), rebuild=True)
    assert len(Index.open(s.index_dir, s).documents) == 2 and all(r.status == "added" for r in reports if r.ok)


def test_interrupted_ingest_keeps_what_was_embedded(tmp_path, monkeypatch):
    import rag.store as store

    src = tmp_path / "articles"
    src.mkdir()
    for i in range(6):
        body = "".join(f"第{i}篇报道的第{j}段介绍了城市{i}科技成果转化的新进展，签约项目{i * 10 + j}个。" for j in range(12))
        (src / f"news_{i}.txt").write_text(f"城市{i}科技成果转化报道\n\n{body}\n", encoding="utf-8")

    class Interrupted(HashEmbedder):
        def encode_passages(self, texts, progress=False):
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().encode_passages(texts, progress)

    monkeypatch.setattr(store, "INGEST_BATCH_CHUNKS", 1)  # one article per embedding call
    s = settings_for(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.ingest_into_index([src], s, progress=False, embedder=Interrupted())
    index = Index.open(s.index_dir, s)  # Ctrl-C during the 4th article: the first three were saved
    assert len(index.documents) == 3 and len(index.chunks) == len(index.vectors) == len(index.lexical)
    emb = HashEmbedder()
    reports = store.ingest_into_index([src], s, progress=False, embedder=emb)  # running again finishes the job
    assert sorted(r.status for r in reports) == ["added"] * 3 + ["unchanged"] * 3
    assert len(Index.open(s.index_dir, s).documents) == 6


# ---------------------------------------------------------------- checkpoints and a second writer (issue 13)


def _articles(tmp_path: Path, n: int = 4) -> Path:
    src = tmp_path / "articles"
    src.mkdir()
    for i in range(n):
        body = "".join(f"第{i}篇报道的第{j}段介绍了城市{i}科技成果转化的新进展，签约项目{i * 10 + j}个。" for j in range(12))
        (src / f"news_{i}.txt").write_text(f"城市{i}科技成果转化报道\n\n{body}\n", encoding="utf-8")
    return src


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (no except/finally of the ingest code saves anything)."""


def test_killed_ingest_resumes_from_its_embedding_checkpoint(tmp_path, monkeypatch):
    import rag.store as store

    src = _articles(tmp_path, 8)

    class KilledAfterTwoBatches(HashEmbedder):
        def encode_passages(self, texts, progress=False):
            if self.calls == 2:
                raise Killed
            return super().encode_passages(texts, progress)

    monkeypatch.setattr(store, "CHECKPOINT_CHUNKS", 4)  # checkpoint every 4 chunks
    s = settings_for(tmp_path)
    with pytest.raises(Killed):
        store.ingest_into_index([src], s, progress=False, embedder=KilledAfterTwoBatches())
    assert not Index.exists(s.index_dir)  # nothing was committed ...
    assert len(list((s.index_dir / store.CHECKPOINT_DIR).glob("*.npz"))) == 2  # ... but 8 vectors are on disk
    emb = HashEmbedder()
    store.ingest_into_index([src], s, progress=False, embedder=emb)
    index = Index.open(s.index_dir, s)
    assert len(index.documents) == 8 and emb.texts == len(index.chunks) - 8  # the 8 were not embedded again
    assert not (s.index_dir / store.CHECKPOINT_DIR).exists()  # a finished run leaves no checkpoint
    fresh = settings_for(tmp_path / "fresh")
    store.ingest_into_index([src], fresh, progress=False, embedder=HashEmbedder())
    q = HashEmbedder().encode_queries(["城市2科技成果转化"])
    a, b = index.vectors.search(q[0], 5, None), Index.open(fresh.index_dir, fresh).vectors.search(q[0], 5, None)
    assert np.allclose(a[1], b[1])  # resumed vectors are the same vectors


def test_a_second_writer_waits_for_the_lock(tmp_path, capsys):
    import threading

    import rag.store as store

    src = _articles(tmp_path, 2)
    s = settings_for(tmp_path, write_lock_timeout=60)
    held, release = threading.Event(), threading.Event()

    def first_writer():
        with store.writing(s):
            held.set()
            release.wait(30)

    t = threading.Thread(target=first_writer)
    t.start()
    held.wait(10)
    threading.Timer(1.5, release.set).start()
    t0 = time.monotonic()
    reports = store.ingest_into_index([src], s, progress=False, embedder=HashEmbedder())
    t.join()
    assert time.monotonic() - t0 >= 1.0 and all(r.status == "added" for r in reports)
    assert "waiting up to 60 s" in capsys.readouterr().err
    assert len(Index.open(s.index_dir, s).documents) == 2
    # with a short timeout the second writer gives up with a message, having done no work
    held.clear(), release.clear()
    t = threading.Thread(target=first_writer)
    t.start()
    held.wait(10)
    emb = HashEmbedder()
    try:
        with pytest.raises(RagError, match="another process is writing .* for 1 s"):
            store.ingest_into_index([src], settings_for(tmp_path, write_lock_timeout=1), progress=False, embedder=emb)
    finally:
        release.set()
        t.join()
    assert emb.calls == 0


def test_next_writer_removes_a_killed_writers_leftovers(tmp_path, monkeypatch, capsys):
    index, s, _ = build(tmp_path, corpus(2))
    size = index.stats()["size_bytes"]
    stale = s.index_dir / "gen-999999"
    stale.mkdir()
    (stale / "chunks.jsonl").write_bytes(b"x" * 100_000)
    (s.index_dir / "manifest.json.4242.tmp").write_bytes(b"{" * 5000)
    assert Index.open(s.index_dir, s).stats()["size_bytes"] == size  # leftovers are not "size on disk"
    from rag.cli import main

    monkeypatch.setenv("RAG_EMBEDDING_MODEL", "fake-bigram")
    assert main(["remove", "no-such-doc", "--index", str(s.index_dir)]) == 1  # any writer run cleans up
    assert not stale.exists() and not list(s.index_dir.glob("manifest.json.*.tmp"))
    assert len(Index.open(s.index_dir, s).documents) == 2
