"""Readers turn evidence into an Answer; this module decides which reader runs and how they fall back (only here).

    Reader.read(evidence, ...) -> Answer            (ExtractiveReader; rag.llm_reader.LLMReader)
    read_stream(evidence, mode, ...) -> Iterator[str | Answer]

- `extractive` (fast, no model): the typed-span answerer of `rag.answering` over the entity-consistent passages.
- `llm`: the extractive answer is yielded first as a preliminary Answer (`final=False`), then the grounded LLM reader
  streams its draft and yields the final Answer; a draft that fails the grounding check is declined (falling back to
  the extractive answer instead was measured: on 60 dev questions +1 answered right, 2 more unanswerables answered).
  An LLM that cannot be loaded leaves the extractive answer, with a note.
- `auto` (the default): `llm` when a model can run here (`rag.llm.available`), else `extractive`.
- Yes/no questions (`EXTRACTIVE_KINDS`) are read by the extractive reader in every mode (measured below).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from rag.answering import answer_extractive, not_found_text
from rag.evidence import Evidence
from rag.records import Answer
from rag.settings import Settings

MODES = ("auto", "extractive", "llm")
# question kinds the extractive reader answers even in LLM mode: yes/no (it states 是/不是 with the clause that decides;
# the bundled 1.5B model answered 是 or the bare fact: dev_news yes/no 4 of 5 extractive vs 1 of 5 LLM, fresh held-out
# set 1 of 2 vs 0 of 2)
EXTRACTIVE_KINDS = ("yesno",)


class Reader(Protocol):
    name: str

    def read(self, ev: Evidence, *args: Any) -> Answer: ...


class ExtractiveReader:
    """Typed spans from the best sentences of the documents that name the question's key entities."""

    name = "extractive"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def read(self, ev: Evidence) -> Answer:
        q = ev.question
        ans, ex = answer_extractive(ev, min_score=self.settings.answerable_threshold)
        miss = ex.unasked if ans.found else ""
        if miss:  # 增长7.6% is no answer to 多少亿元, 52% none to 几项, the press conference's date none to the final's
            ans = dataclasses.replace(ans, text=not_found_text(q), found=False, citations=[], related=ans.citations,
                                      notes=[*ans.notes, f"Not found: {miss}"])
        if not ans.found and not ans.related:
            from rag.answering import related_citations

            ans.related = related_citations(ev.hits, ev.sentences)
        if not ev.hits:
            ans.notes.append("The index has no passages that match (empty index or filters exclude everything).")
        return ans


def resolve_mode(mode: str | None, settings: Settings) -> str:
    """The answer mode to run: `mode` or the setting; `auto` becomes `llm` where a model can run, else `extractive`."""
    from rag.errors import InputError

    mode = (mode or settings.answer_mode or "auto").lower()
    if mode not in MODES:
        raise InputError(f"unknown answer mode {mode!r}: use 'auto', 'extractive' or 'llm'")
    if mode == "auto":
        from rag.llm import available

        return "llm" if available(settings) is None else "extractive"
    return mode


def read_stream(ev: Evidence, mode: str, extractive: ExtractiveReader, get_llm: Callable[[], tuple[Any, str | None]],
                budget: int = 320) -> Iterator[str | Answer]:
    """Text pieces and Answers for one question: in `llm` mode a preliminary extractive Answer (final=False), the
    LLM's draft pieces, then the final Answer; in `extractive` mode the answer's pieces, then the Answer."""
    ext = extractive.read(ev)
    if mode == "llm" and ev.question.kind in EXTRACTIVE_KINDS:
        ext = dataclasses.replace(ext, notes=[*ext.notes, f"{ev.question.kind} questions are answered by the "
                                              "extractive reader, which reads them better (see rag.reader)."])
        mode = "extractive"
    if mode != "llm":
        for i in range(0, len(ext.text), 12):
            yield ext.text[i:i + 12]
        yield ext
        return
    yield dataclasses.replace(ext, final=False, notes=[*ext.notes, "Preliminary (extractive) answer; the LLM is reading."])
    llm, note = get_llm()
    if llm is None:
        yield dataclasses.replace(ext, notes=[*ext.notes, note or "LLM mode is not available; showing the extractive answer."])
        return
    from rag.llm_reader import LLMReader

    not_found = ext if not ext.found else dataclasses.replace(
        ext, text=not_found_text(ev.question), found=False, citations=[], related=ext.citations)
    yield from LLMReader(llm, budget=budget).stream(ev, not_found)

