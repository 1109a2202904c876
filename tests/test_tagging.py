"""POS tags computed when chunks go into the index: stored compactly per chunk, and a sentence cut from them equals the sentence tagged alone."""
from __future__ import annotations

from rag import tagging
from rag.chunking import chunk_document, split_sentences
from rag.evidence import collect_sentences
from rag.records import Document, Hit

TEXT = ("合肥市科技局局长王建国介绍，本次对接会共签约12个项目，金额3.5亿元。德劳帕迪·穆尔穆出席了开幕式。\n"
        "会上发布了《长三角技术转移报告》，AI与5G成果引人关注；活动持续到10月18日。")


def _doc(text: str = TEXT) -> Document:
    return Document(doc_id="d1", title="合肥对接会", text=text, text_simplified=text, date=None, source=None,
                    path="x.txt", script="simplified")


def _alone(piece: str) -> tuple:
    return tagging._split_aspect(tagging._raw(piece))


def test_tags_round_trip_and_cover_the_whole_text():
    tags = tagging.encode_tags(TEXT)
    words = tagging.decode_tags(TEXT, tags)
    assert words is not None and "".join(w for _, w, _ in words) == TEXT
    assert ("王建国", "nr") in [(w, f) for _, w, f in words]
    assert all(TEXT[start : start + len(w)] == w for start, w, _ in words)


def test_stale_or_damaged_tags_are_ignored():
    tags = tagging.encode_tags(TEXT)
    assert tagging.decode_tags(TEXT + "多", tags) is None  # the text changed: lengths no longer add up
    assert tagging.decode_tags(TEXT, "") is None


def test_each_sentence_seeded_from_the_chunk_equals_tagging_it_alone():
    words = tagging.decode_tags(TEXT, tagging.encode_tags(TEXT))
    seeded = 0
    for a, b in split_sentences(TEXT):
        tagging._CACHE.pop(TEXT[a:b], None)
        if tagging.seed_sentence(TEXT, words, a, b):
            seeded += 1
            assert tagging._CACHE[TEXT[a:b]] == _alone(TEXT[a:b])
            assert tagging.pos_tokens(TEXT[a:b]) == list(_alone(TEXT[a:b]))
    assert seeded == len(split_sentences(TEXT))


def test_a_cut_inside_a_run_of_han_characters_is_not_seeded():
    words = tagging.decode_tags(TEXT, tagging.encode_tags(TEXT))
    cut = TEXT.index("局长") + 1  # between 局 and 长: jieba would tag the two halves differently
    tagging._CACHE.pop(TEXT[:cut], None)
    assert not tagging.seed_sentence(TEXT, words, 0, cut)
    assert TEXT[:cut] not in tagging._CACHE


def test_indexed_chunks_carry_their_tags_and_retrieved_sentences_are_tagged_from_them(monkeypatch, tmp_path):
    from fakes import HashEmbedder
    from rag.settings import Settings
    from rag.store import Index

    assert all(not c.tags for c in chunk_document(_doc(), size=300, overlap=60))  # chunking alone tags nothing
    settings = Settings(index_root=tmp_path, index_name="idx", embedding_model="fake-bigram")
    index = Index.create(settings.index_dir, settings)
    index.add([_doc()], chunk_document(_doc(), size=300, overlap=60), HashEmbedder(), progress=False)
    chunks = Index.open(settings.index_dir, settings).chunks  # tagged, and saved so
    assert chunks and all(tagging.decode_tags(c.text_simplified, c.tags) for c in chunks)
    for a, b in split_sentences(chunks[0].text):
        tagging._CACHE.pop(chunks[0].text_simplified[a:b], None)
    calls: list[str] = []
    real = tagging._raw
    monkeypatch.setattr(tagging, "_raw", lambda text: calls.append(text) or real(text))
    sents = collect_sentences([Hit(chunk=chunks[0], score=1.0)])
    assert sents and all(tagging.pos_tokens(s.simp) == list(_alone(s.simp)) for s in sents)
    assert calls == [s.simp for s in sents]  # only the check above tagged anything: gathering used the stored tags
