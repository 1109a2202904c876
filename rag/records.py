"""Small typed records passed between pipeline stages (one direction: files -> Document -> Chunk -> Hit -> Answer)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RawDocument:
    """One article as loaded from disk, before cleaning."""

    text: str
    path: str  # origin file; `file.jsonl#12` for the 12th line of a JSON-lines file
    encoding: str  # detected encoding, e.g. "utf-8", "gb18030", "big5", "utf-16"
    fmt: str  # "txt" | "md" | "html" | "json" | "jsonl"
    fields: dict[str, Any] = field(default_factory=dict)  # id/title/date/source/url/... given by the file itself


@dataclass
class Document:
    """A cleaned article. `text` keeps the article's own script; `text_simplified` is what BM25 and the embedder see."""

    doc_id: str  # stable content hash of the cleaned text (16 hex chars)
    title: str
    text: str
    text_simplified: str
    date: str | None  # ISO 8601 (YYYY-MM-DD) when the article gives one, else None
    source: str | None
    path: str
    script: str  # "simplified" | "traditional"
    encoding: str = "utf-8"
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cleaning: dict[str, int] = field(default_factory=dict)  # cleaning step -> characters removed or changed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Chunk:
    """A retrievable passage: `text == document.text[start:end]`."""

    chunk_id: str  # f"{doc_id}:{n}"
    doc_id: str
    text: str
    text_simplified: str
    start: int
    end: int
    title: str = ""
    date: str | None = None
    source: str | None = None
    tags: str = ""  # jieba POS of text_simplified, "2ns 1v …" (rag.tagging.encode_tags); "" in indexes built before it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        return cls(**d)

    def to_node(self):
        """The same chunk as a llama-index TextNode (metadata + SOURCE relationship to its document)."""
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        node = TextNode(
            id_=self.chunk_id,
            text=self.text,
            start_char_idx=self.start,
            end_char_idx=self.end,
            metadata={"doc_id": self.doc_id, "title": self.title, "date": self.date, "source": self.source},
            excluded_embed_metadata_keys=["doc_id", "date", "source"],
        )
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=self.doc_id)
        return node


@dataclass
class IngestReport:
    """What ingestion did to one file (or one line of a JSON-lines file)."""

    path: str
    ok: bool
    encoding: str | None = None
    title: str | None = None
    date: str | None = None
    doc_id: str | None = None
    chunks: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    status: str = "added"  # "added" | "updated" | "unchanged" | "skipped"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Hit:
    """A retrieved chunk with its fused score and the per-retriever scores/ranks behind it."""

    chunk: Chunk
    score: float
    rank: int = 0
    scores: dict[str, float] = field(default_factory=dict)  # e.g. {"dense": 0.83, "lexical": 12.1}


@dataclass
class Citation:
    """One numbered source of an answer. `spans` are [start, end) offsets of supporting sentences inside `passage`."""

    number: int
    doc_id: str
    chunk_id: str
    title: str
    date: str | None
    source: str | None
    passage: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    score: float = 0.0

    @property
    def sentences(self) -> list[str]:
        return [self.passage[a:b] for a, b in self.spans]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spans"] = [list(s) for s in self.spans]
        d["sentences"] = self.sentences
        return d


@dataclass
class Answer:
    """The answer to one question. `found=False` means the articles do not say; `related` then holds the closest passages."""

    text: str
    question: str
    standalone_question: str
    found: bool
    mode: str = "extractive"  # "extractive" | "llm" | "llm->extractive" (LLM draft failed verification)
    confidence: float = 0.0
    language: str = "zh-Hans"  # "zh-Hans" | "zh-Hant" | "en"
    kind: str = "what"  # question type: number | who | when | where | list | yesno | what
    citations: list[Citation] = field(default_factory=list)
    related: list[Citation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    final: bool = True  # False for a preliminary answer that a slower reader (the LLM) will replace

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["citations"] = [c.to_dict() for c in self.citations]
        d["related"] = [c.to_dict() for c in self.related]
        return d
