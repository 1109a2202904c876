"""The one settings object. Every field can be overridden by an environment variable `RAG_<FIELD>` (upper case)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"  # the five bundled articles (default corpus)


def _default_index_root() -> Path:
    return PROJECT_ROOT / "index"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-techtransfer"


@dataclass
class Settings:
    # where things live
    index_root: Path = field(default_factory=_default_index_root)
    index_name: str = "default"
    cache_dir: Path = field(default_factory=_default_cache)  # models are provisioned here, outside the repo
    # chunking
    chunk_size: int = 300  # target characters per chunk
    chunk_overlap: int = 60  # characters of overlap (whole sentences) between neighbouring chunks
    # embedding
    embedding_model: str = "multilingual-e5-small"  # bundled default; or any sentence-transformers name/path
    embedding_batch_size: int = 32
    embedding_threads: int = 0  # 0 = all cores
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    embedding_quantize: str = "none"  # "none" (float32) | "int8" (dynamic int8 Linear layers; see bench/bench_embedding.py)
    # questions through a bfloat16 copy of the encoder on CPUs with bf16 instructions: ~30% less CPU per question, cosine
    # 0.99998 to float32, but 3 of 480 dev + held-out answers changed where two passages tie (README, rag.embedding)
    query_bf16: bool = False
    # retrieval
    store: str = "faiss"  # "faiss" | "milvus"
    milvus_uri: str = ""
    top_k: int = 5
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60
    fusion: str = "convex"  # "convex" (normalised scores, see rag/retrieval.py) | "rrf" (weighted reciprocal rank)
    cross_lingual_fusion: str = "rrf"  # fusion for questions without Han characters (English over Chinese text)
    # BM25 for such questions scores the first N CC-CEDICT glosses of each English word (dictionary query translation;
    # dev_news English questions: gold document first 68.6% -> 88.6% of the time, in the top 5 91.4% -> 100%)
    cross_lingual_glosses: int = 3
    dense_weight: float = 1.0
    lexical_weight: float = 1.0  # with the convex fusion's confidence scaling, 0.8-2.5 all tie on the dev sets (C)
    ann_threshold: int = 200_000  # above this many chunks FAISS switches to an approximate (HNSW) index
    # answering
    answer_mode: str = "auto"  # "auto" (llm where a model can run, else extractive) | "extractive" | "llm"
    llm_url: str = ""  # OpenAI-compatible endpoint; empty = bundled local GGUF when answer_mode == "llm"
    llm_model: str = "qwen2.5-coder-1.5b-instruct"
    llm_api_key: str = ""  # for endpoints that need one (RAG_LLM_API_KEY)
    llm_threads: int = 0  # threads for the local GGUF model; 0 = all cores
    llm_cache: str = ""  # a SQLite file of LLM replies keyed by their prompts (rag eval --llm-cache); "" = none
    answerable_threshold: float = 0.4  # rag.answerability probability an extractive answer needs (else "not found")
    evidence_chars: int = 320  # characters of sentence text the LLM reader reads (compact evidence, rag.evidence)
    answer_passages: int = 6  # passages retrieved for the answerer (the cited ones are the sentences it uses)
    max_question_chars: int = 500  # longer questions are cut (with a note), never rejected
    # serving
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: int = 20
    write_lock_timeout: int = 600  # seconds a second writer (ingest/remove) waits for the first one to finish
    # questions answered side by side (retrieval/extractive are read-only; LLM drafts are serialised); 0 = ten per CPU
    # core. Concurrent questions share one encoder pass (rag.embedding._QueryBatcher), so more slots cost no CPU:
    # bench/bench_serve.py on 2 cores, /v1 API, 20 users: p95 852 ms at 4 slots, 564 at 8, 451 at 20.
    concurrency_limit: int = 0

    @property
    def server_concurrency(self) -> int:
        return self.concurrency_limit if self.concurrency_limit > 0 else 10 * (os.cpu_count() or 1)

    @property
    def index_dir(self) -> Path:
        return Path(self.index_root) / self.index_name

    @property
    def models_dir(self) -> Path:
        return Path(self.cache_dir) / "models"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Defaults, then `RAG_*` environment variables, then explicit keyword overrides."""
        s = cls()
        env: dict = {}
        for f in fields(cls):
            raw = os.environ.get("RAG_" + f.name.upper())
            if raw is None:
                continue
            cur = getattr(s, f.name)
            if isinstance(cur, bool):
                env[f.name] = raw.lower() in ("1", "true", "yes", "on")
            elif isinstance(cur, int):
                env[f.name] = int(raw)
            elif isinstance(cur, float):
                env[f.name] = float(raw)
            elif isinstance(cur, Path):
                env[f.name] = Path(raw)
            else:
                env[f.name] = raw
        env.update({k: v for k, v in overrides.items() if v is not None})  # explicit overrides win over the environment
        return replace(s, **env)
