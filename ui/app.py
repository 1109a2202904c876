"""The browser chat (Gradio Blocks): streaming answers with cited passages, filters, uploads and feedback.

One `Assistant` (one loaded model, one index) is shared by every browser session. Every piece of text that comes from an
article, an upload or a user is HTML-escaped before it is placed in the page. The same assistant is reachable through
`gradio_client` at the named endpoint `/ask` (question, history_json) -> `Answer.to_dict()`.
"""
from __future__ import annotations

import html
import importlib.util
import json
import logging
import os
import re
import shutil
import threading
import uuid
from datetime import date, datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: never phone home

import gradio as gr

from rag.errors import InputError, RagError
from rag.records import Answer, Citation, IngestReport
from rag.settings import Settings

log = logging.getLogger("rag.ui")

ALLOWED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")
ALL_SOURCES = "全部 / All"
FEEDBACK_FILE = "feedback.jsonl"
UPLOADS_DIR = "uploads"
MARKER = re.compile(r"\[(\d{1,3})\]")

# Questions answerable from the bundled default corpus (shown as clickable examples).
EXAMPLES = [
    "西宁对接会签了多少个项目？",
    "西安高新区在管基金产品有多少支？",
    "南阳市副市长是谁？",
    "創新港路演大會在哪一天召開？",
    "How many projects were signed in Xining?",
]

CSS = """
.rag-header h1 {font-size: 1.4rem; margin: 0.2rem 0;}
.rag-header p {margin: 0; opacity: 0.8; font-size: 0.9rem;}
.rag-answer {line-height: 1.6; overflow-wrap: anywhere;}
.rag-text {font-size: 1.02rem;}
.rag-rewrite {font-size: 0.85rem; opacity: 0.8; margin-bottom: 0.3rem;}
.rag-badge {display: inline-block; font-size: 0.8rem; padding: 0 0.5rem; border-radius: 0.6rem; margin-bottom: 0.3rem;
  background: #fde68a; color: #78350f;}
.rag-meta {font-size: 0.78rem; opacity: 0.7; margin-top: 0.3rem;}
a.rag-cite {text-decoration: none; font-weight: 600; font-size: 0.85em; vertical-align: super;}
.rag-cards-h {font-weight: 600; font-size: 0.9rem; margin: 0.6rem 0 0.3rem;}
.rag-card {border: 1px solid var(--border-color-primary, #ddd); border-radius: 0.5rem; padding: 0.5rem 0.7rem;
  margin: 0.4rem 0; background: var(--background-fill-secondary, #fafafa); scroll-margin-top: 4rem;}
.rag-card:target {outline: 2px solid var(--color-accent, #f97316);}
.rag-related .rag-card {opacity: 0.85; border-style: dashed;}
.rag-card-h {font-weight: 600;}
.rag-num {color: var(--color-accent, #f97316); margin-right: 0.3rem;}
.rag-card-m {font-size: 0.78rem; opacity: 0.7;}
.rag-passage {font-size: 0.88rem; margin-top: 0.3rem; white-space: normal;}
.rag-passage mark {background: #fef08a; color: inherit; padding: 0 1px;}
.rag-table {width: 100%; border-collapse: collapse; font-size: 0.85rem;}
.rag-table td, .rag-table th {border-bottom: 1px solid var(--border-color-primary, #ddd); padding: 0.2rem 0.3rem;
  text-align: left; vertical-align: top; overflow-wrap: anywhere;}
.rag-error {color: #b91c1c;}
.rag-report ul {padding-left: 1.1rem; margin: 0.3rem 0;} .rag-report li {margin: 0.3rem 0; overflow-wrap: anywhere;}
.rag-small {font-size: 0.8rem; opacity: 0.75;}
.rag-table td.rag-date {white-space: nowrap;}
#rag-chat .message-row.bot-row {max-width: 100% !important;}
@media (max-width: 640px) {
  .rag-header h1 {font-size: 1.15rem;}
  .rag-passage {font-size: 0.85rem;}
}
"""
# Outside the app's scope (Gradio prefixes `css` rules with its container): narrower page margins on phones.
HEAD = "<style>@media (max-width: 640px) {.gradio-container .main {padding: 8px 6px !important;}}</style>"


# ---------------------------------------------------------------- rendering (pure functions: text in, escaped HTML out)


def esc(text: Any) -> str:
    """Escape untrusted text for HTML; line breaks become <br> so a message stays one HTML block (no Markdown inside)."""
    s = html.escape("" if text is None else str(text), quote=True)
    return s.replace("\r\n", "\n").replace("\n", "<br>")


def highlight(passage: str, spans: list[tuple[int, int]] | list[list[int]]) -> str:
    """The passage, escaped, with each supporting span wrapped in <mark> (overlapping spans merged, out-of-range clipped)."""
    n = len(passage)
    clean = sorted((max(0, int(a)), min(n, int(b))) for a, b in spans if int(b) > int(a))
    merged: list[list[int]] = []
    for a, b in clean:
        if a >= n:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    for a, b in merged:
        out.append(esc(passage[pos:a]))
        out.append(f"<mark>{esc(passage[a:b])}</mark>")
        pos = b
    out.append(esc(passage[pos:]))
    return "".join(out)


def render_card(c: Citation, anchor: str) -> str:
    """One citation card: number, title, date, source and the passage with its supporting sentence(s) marked."""
    meta = " · ".join(esc(x) for x in (c.date, c.source) if x)
    return (
        f'<div class="rag-card" id="{anchor}">'
        f'<div class="rag-card-h"><span class="rag-num">[{c.number}]</span><span class="rag-title">{esc(c.title)}</span></div>'
        f'<div class="rag-card-m">{meta}</div>'
        f'<div class="rag-passage">{highlight(c.passage, c.spans)}</div></div>'
    )


def link_markers(text: str, numbers: set[int], turn: str) -> str:
    """The answer text, escaped, with each inline marker [n] of a known citation turned into a link to its card."""
    out, pos = [], 0
    for m in MARKER.finditer(text):
        n = int(m.group(1))
        if n not in numbers:
            continue
        out.append(esc(text[pos:m.start()]))
        out.append(f'<a class="rag-cite" href="#c-{turn}-{n}">[{n}]</a>')
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def render_answer(answer: Answer, turn: str) -> str:
    """The whole assistant message: rewritten question, not-found badge, linked answer text and the citation cards."""
    parts = ['<div class="rag-answer' + ("" if answer.found else " rag-notfound") + '">']
    if answer.standalone_question and answer.standalone_question.strip() != answer.question.strip():
        parts.append(f'<div class="rag-rewrite">理解为 / Interpreted as: {esc(answer.standalone_question)}</div>')
    if not answer.found:
        parts.append('<div class="rag-badge">未找到 / Not found</div>')
    numbers = {c.number for c in answer.citations}
    parts.append(f'<div class="rag-text">{link_markers(answer.text, numbers, turn)}</div>')
    meta = [f"模式 / mode: {esc(answer.mode)}", f"置信度 / confidence: {answer.confidence:.2f}"]
    meta += [esc(n) for n in answer.notes]
    parts.append(f'<div class="rag-meta">{" · ".join(meta)}</div>')
    if answer.citations:
        parts.append('<div class="rag-cards"><div class="rag-cards-h">引用 / Sources</div>')
        parts += [render_card(c, f"c-{turn}-{c.number}") for c in answer.citations]
        parts.append("</div>")
    if answer.related:
        parts.append('<div class="rag-cards rag-related"><div class="rag-cards-h">相关段落 / Related (not support)</div>')
        parts += [render_card(c, f"r-{turn}-{c.number}") for c in answer.related]
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def render_streaming(partial: str) -> str:
    """The assistant message while the answer is still arriving."""
    shown = esc(partial) if partial else '<span class="rag-small">检索中… / Searching…</span>'
    return f'<div class="rag-answer rag-streaming"><div class="rag-text">{shown}▌</div></div>'


def render_error(message: str) -> str:
    return f'<div class="rag-answer rag-error">⚠️ {esc(message)}</div>'


def render_user(question: str) -> str:
    return f'<div class="rag-q">{esc(question)}</div>'


def render_index(stats: dict[str, Any], documents: list[dict[str, Any]]) -> str:
    """Document and chunk counts and the list of documents (escaped)."""
    n_docs = stats.get("documents", len(documents))
    n_chunks = stats.get("chunks", "?")
    rows = "".join(
        f"<tr><td>{esc(d.get('title') or d.get('doc_id'))}</td><td class=\"rag-date\">{esc(d.get('date') or '')}</td>"
        f"<td>{esc(d.get('source') or '')}</td></tr>"
        for d in sorted(documents, key=lambda d: str(d.get("date") or ""), reverse=True)
    )
    return (
        f'<div class="rag-index"><p><b>文档 / Documents: <span class="rag-ndocs">{esc(n_docs)}</span></b> · '
        f'<b>段落 / Chunks: <span class="rag-nchunks">{esc(n_chunks)}</span></b></p>'
        '<table class="rag-table"><thead><tr><th>标题 / Title</th><th>日期 / Date</th><th>来源 / Source</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def render_reports(reports: list[IngestReport], names: dict[str, str]) -> str:
    """The ingest report, one line per file; `names` maps stored upload file names back to the names the user picked."""
    items = []
    for r in reports:
        stored, _, line = r.path.partition("#")
        shown = names.get(Path(stored).name, Path(stored).name) + (f"#{line}" if line else "")
        facts = [esc(r.status if r.ok else "error")]
        facts += [esc(x) for x in (r.title, r.date) if x]
        if r.ok:
            facts.append(f"段落 / chunks: {r.chunks}")
        detail = r.error or "; ".join(f"{k}: {v}" for k, v in r.removed.items() if v)
        items.append(
            f'<li class="{"rag-ok" if r.ok else "rag-error"}"><b>{esc(shown)}</b> — {" · ".join(facts)}'
            + (f'<br><span class="rag-small">{"" if r.error else "清理 / removed: "}{esc(detail)}</span>' if detail else "")
            + "</li>"
        )
    ok = sum(1 for r in reports if r.ok)
    return f'<div class="rag-report"><p>导入 / Ingested: {ok} / {len(reports)}</p><ul>{"".join(items)}</ul></div>'


# ---------------------------------------------------------------- helpers


def allowed_suffix(name: str) -> str | None:
    """The allowed extension of a client-supplied file name (`.txt`, `.jsonl.gz`, ...), or None. Nothing else is used."""
    lower = Path(name).name.lower()
    for suf in ALLOWED_SUFFIXES:
        if lower.endswith(suf):
            return suf
        if lower.endswith(suf + ".gz"):
            return suf + ".gz"
    return None


def parse_date(value: str | None, label: str) -> str | None:
    """`YYYY-MM-DD` (also `YYYY/MM/DD`, `YYYY.MM.DD`) from a date box, or None when empty."""
    if value is None or not str(value).strip():
        return None
    s = str(value).strip()[:10].replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(s).isoformat()
    except ValueError:
        raise InputError(f"{label}: 日期格式应为 YYYY-MM-DD / date must be YYYY-MM-DD (got {value!r})") from None


def make_filters(source: str | None, date_from: str | None, date_to: str | None):
    """rag.retrieval.Filters from the filter controls, or None when none is set."""
    src = None if not source or source == ALL_SOURCES else source
    since, until = parse_date(date_from, "起始日期 / From"), parse_date(date_to, "截止日期 / To")
    if since and until and since > until:
        raise InputError("起始日期晚于截止日期 / 'From' is after 'To'")
    if not (src or since or until):
        return None
    from rag.retrieval import Filters

    return Filters(source=src, date_from=since, date_to=until)


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """`user:password`, or a file with one `user:password` per line, as Gradio's auth list."""
    if not value:
        return None
    if not Path(value).is_file() and (":" not in value or "/" in value.partition(":")[0]):
        raise InputError(f"--auth file {value} not found (give user:password, or a file of user:password lines)")
    lines = Path(value).read_text(encoding="utf-8").splitlines() if Path(value).is_file() else [value]
    pairs = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise InputError("--auth expects user:password (or a file of user:password lines)")
        pairs.append((user, password))
    if not pairs:
        raise InputError(f"--auth file {value} holds no user:password line")
    return pairs


def llm_available(settings: Settings) -> bool:
    """True when the LLM answer mode can be offered: rag.llm importable and an endpoint set, or llama-cpp-python and the
    bundled model's part packages installed (nothing is loaded here; the model loads on the first LLM question)."""
    try:
        import rag.llm as llm
    except Exception:
        return False
    if settings.llm_url:
        return True
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        for pkg in getattr(llm, "PART_PACKAGES", []):
            metadata.distribution(pkg)
    except metadata.PackageNotFoundError:
        return False
    return True


def _index_dir(assistant: Any, settings: Settings) -> Path:
    own = getattr(assistant, "settings", None)
    return Path(own.index_dir) if isinstance(own, Settings) else settings.index_dir


def _history(turns: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(t["question"], t["answer"]["text"]) for t in turns if t.get("answer")]


# ---------------------------------------------------------------- the app


def build_app(assistant: Any, settings: Settings) -> gr.Blocks:
    """The chat UI around one shared Assistant (no model is loaded here)."""
    index_dir = _index_dir(assistant, settings)
    feedback_path = index_dir / FEEDBACK_FILE
    feedback_lock = threading.Lock()
    max_bytes = int(settings.max_upload_mb) * 1024 * 1024
    has_llm = llm_available(settings)

    def sources() -> list[str]:
        return [ALL_SOURCES] + sorted({str(d["source"]) for d in assistant.documents() if d.get("source")})

    def index_html() -> str:
        return render_index(assistant.stats(), assistant.documents())

    def respond(question: str, messages: list, turns: list, source: str, date_from: str, date_to: str, mode: str,
                top_k: float) -> Iterator[tuple[list, list, str]]:
        """Stream one answer into the chat, then replace it with the rendered answer and its cards."""
        question = (question or "").strip()
        messages = list(messages or [])
        turns = list(turns or [])
        if not question:
            gr.Warning("请输入问题 / Please type a question")
            yield messages, turns, ""
            return
        messages.append({"role": "user", "content": render_user(question)})
        messages.append({"role": "assistant", "content": render_streaming("")})
        yield messages, turns, ""
        turn = uuid.uuid4().hex[:6]
        partial, answer = "", None
        try:
            filters = make_filters(source, date_from, date_to)
            stream = assistant.ask_stream(question, history=_history(turns), filters=filters,
                                          mode=mode or None, top_k=int(top_k) if top_k else None)
            for piece in stream:
                if isinstance(piece, Answer):
                    answer = piece
                else:
                    partial += str(piece)
                    messages[-1] = {"role": "assistant", "content": render_streaming(partial)}
                    yield messages, turns, ""
            if answer is None:
                raise RagError("no answer was produced / 未得到回答")
        except RagError as e:
            messages[-1] = {"role": "assistant", "content": render_error(str(e))}
            turns.append({"question": question, "answer": None, "error": str(e)})
            yield messages, turns, ""
            return
        messages[-1] = {"role": "assistant", "content": render_answer(answer, turn)}
        turns.append({"question": question, "answer": answer.to_dict()})
        yield messages, turns, ""

    def on_like(turns: list, data: gr.LikeData) -> str:
        """Append the rated answer (question, answer, citations, rating, time) to <index>/feedback.jsonl."""
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        k = int(idx) // 2  # messages alternate user/assistant
        if not turns or k >= len(turns) or not turns[k].get("answer"):
            return "⚠️ 无法记录 / nothing to rate"
        a = turns[k]["answer"]
        rating = "up" if data.liked is True else "down" if data.liked is False else str(data.liked)
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rating": rating,
            "question": turns[k]["question"],
            "standalone_question": a.get("standalone_question"),
            "answer": a.get("text"),
            "found": a.get("found"),
            "mode": a.get("mode"),
            "citations": [{k2: c.get(k2) for k2 in ("number", "doc_id", "chunk_id", "title", "date", "sentences")}
                          for c in a.get("citations", [])],
        }
        with feedback_lock:
            feedback_path.parent.mkdir(parents=True, exist_ok=True)
            with feedback_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return f"已记录反馈 / Feedback saved ({'👍' if rating == 'up' else '👎'})"

    def upload(files: list[str] | None, progress: gr.Progress = gr.Progress(track_tqdm=True)):
        """Copy accepted files under <index>/uploads with generated names, add them to the index, show the report."""
        if not files:
            raise gr.Error("请先选择文件 / Choose files first")
        updir = index_dir / UPLOADS_DIR
        updir.mkdir(parents=True, exist_ok=True)
        stored: list[Path] = []
        names: dict[str, str] = {}
        rejected: list[str] = []
        progress(0.05, desc="保存文件 / Saving files")
        for f in files:
            src = Path(f if isinstance(f, str) else f.name)
            client_name = src.name  # display only
            suffix = allowed_suffix(client_name)
            if suffix is None:
                rejected.append(f"{client_name}: 不支持的格式 / unsupported type (allowed: {', '.join(ALLOWED_SUFFIXES)}, +.gz)")
                continue
            size = src.stat().st_size
            if size > max_bytes:
                rejected.append(f"{client_name}: 超过 {settings.max_upload_mb} MB / larger than {settings.max_upload_mb} MB")
                continue
            dest = updir / f"{uuid.uuid4().hex}{suffix}"
            shutil.copyfile(src, dest)
            stored.append(dest)
            names[dest.name] = client_name
        reports: list[IngestReport] = []
        if stored:
            progress(0.2, desc="导入并建立索引 / Ingesting and indexing")
            try:
                reports = assistant.add_paths(stored, progress=True)
            except RagError as e:
                for p in stored:
                    p.unlink(missing_ok=True)
                log.warning("upload: %s", e)
                raise gr.Error(str(e), print_exception=False) from None
            for p in stored:  # keep a copy only when something of it went into the index
                mine = [r for r in reports if Path(r.path.partition("#")[0]).name == p.name]
                if mine and not any(r.ok and r.status in ("added", "updated") for r in mine):
                    p.unlink(missing_ok=True)
        progress(1.0, desc="完成 / Done")
        body = render_reports(reports, names) if reports else ""
        if rejected:
            body += '<div class="rag-error">' + "<br>".join(esc(r) for r in rejected) + "</div>"
        return body, index_html(), gr.update(choices=sources())

    def api_ask(question: str, history_json: str = "[]") -> dict:
        """Answer one question; history_json is a JSON list of [question, answer] pairs or {role, content} messages."""
        try:
            history = json.loads(history_json or "[]")
        except json.JSONDecodeError as e:
            log.warning("/ask: history_json is not valid JSON: %s", e)
            raise gr.Error(f"history_json is not valid JSON: {e}", print_exception=False) from None
        if not isinstance(history, list):
            log.warning("/ask: history_json is not a JSON list")
            raise gr.Error("history_json must be a JSON list", print_exception=False)
        try:
            return assistant.ask(question, history=history or None).to_dict()
        except RagError as e:  # a user error: one log line, not a traceback
            log.warning("/ask: %s", e)
            raise gr.Error(str(e), print_exception=False) from None

    modes = [("抽取式 / Extractive", "extractive")] + ([("大模型 / LLM", "llm")] if has_llm else [])
    default_mode = settings.answer_mode if settings.answer_mode in dict((v, k) for k, v in modes) else "extractive"

    with gr.Blocks(title="科技成果转化问答 / Tech-transfer Q&A", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:  # Gradio's own copies of uploads do not linger
        turns = gr.State([])
        gr.HTML(
            '<div class="rag-header"><h1>科技成果转化问答 / Tech-transfer Q&amp;A</h1>'
            "<p>回答均标注出处，点击 [n] 查看原文 / Every answer cites its sources; click [n] to see the passage.</p></div>"
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label="对话 / Chat", elem_id="rag-chat", height=None, min_height=320, max_height="75vh",
                    latex_delimiters=[], buttons=["copy"], feedback_options=("Like", "Dislike"), layout="bubble",
                    placeholder="问一个关于文章的问题 / Ask a question about the articles",
                )
                question = gr.Textbox(label="提问 / Ask", placeholder="例如 / e.g. 西宁对接会签了多少个项目？",
                                      elem_id="rag-question", lines=1, max_lines=4, max_length=2000)
                with gr.Row():
                    ask_btn = gr.Button("提问 / Ask", variant="primary", elem_id="rag-ask", scale=3, min_width=120)
                    clear_btn = gr.Button("新对话 / New", elem_id="rag-clear", scale=1, min_width=100)
                feedback_msg = gr.Markdown(elem_id="rag-feedback")
                gr.Examples(EXAMPLES, inputs=question, label="示例问题 / Example questions")
            with gr.Column(scale=2, min_width=300):
                with gr.Accordion("筛选与设置 / Filters & settings", open=True):
                    source = gr.Dropdown(sources(), value=ALL_SOURCES, label="来源 / Source", elem_id="rag-source")
                    date_from = gr.DateTime(include_time=False, type="string", label="起始日期 / From", elem_id="rag-from")
                    date_to = gr.DateTime(include_time=False, type="string", label="截止日期 / To", elem_id="rag-to")
                    mode = gr.Radio(modes, value=default_mode, label="回答模式 / Answer mode", elem_id="rag-mode",
                                    info=None if has_llm else "大模型未安装 / LLM not installed (pip install '.[llm]')")
                    top_k = gr.Slider(1, 20, value=settings.top_k, step=1, label="段落数 / Passages", elem_id="rag-topk")
                with gr.Accordion("索引 / Index", open=False, elem_id="rag-index-panel"):
                    index_view = gr.HTML(index_html(), elem_id="rag-index")
                    refresh_btn = gr.Button("刷新 / Refresh", size="sm")
                with gr.Accordion("上传文章 / Upload articles", open=False, elem_id="rag-upload-panel"):
                    files = gr.File(file_count="multiple", type="filepath", elem_id="rag-files",
                                    file_types=list(ALLOWED_SUFFIXES) + [".gz"],
                                    label=f"文章文件 / Article files (≤ {settings.max_upload_mb} MB)")
                    upload_btn = gr.Button("加入索引 / Add to index", variant="secondary", elem_id="rag-upload")
                    report_view = gr.HTML(elem_id="rag-report")

        chat_io = dict(inputs=[question, chatbot, turns, source, date_from, date_to, mode, top_k],
                       outputs=[chatbot, turns, question], api_visibility="private")
        ask_btn.click(respond, **chat_io)
        question.submit(respond, **chat_io)
        clear_btn.click(lambda: ([], [], ""), outputs=[chatbot, turns, feedback_msg], api_visibility="private")
        chatbot.clear(lambda: ([], ""), outputs=[turns, feedback_msg], api_visibility="private")  # its own 🗑 button
        chatbot.like(on_like, inputs=[turns], outputs=[feedback_msg], api_visibility="private")
        refresh_btn.click(lambda: (index_html(), gr.update(choices=sources())), outputs=[index_view, source],
                          api_visibility="private")
        upload_btn.click(upload, inputs=[files], outputs=[report_view, index_view, source], api_visibility="private",
                         concurrency_limit=1, concurrency_id="index-write")
        gr.api(api_ask, api_name="ask")
    return app


def theme() -> gr.themes.Base:
    """System fonts only (no web-font download: the app works offline)."""
    sys_fonts = ["system-ui", "-apple-system", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "sans-serif"]
    return gr.themes.Soft(font=sys_fonts, font_mono=["ui-monospace", "monospace"])


def page_options(settings: Settings, auth: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The page's look, login and upload limit: keyword arguments shared by `Blocks.launch` and `gr.mount_gradio_app`
    (rag.server mounts the app beside the OpenAI-compatible API)."""
    return dict(auth=auth, max_file_size=f"{settings.max_upload_mb}mb", show_error=True, ssr_mode=False, theme=theme(),
                css=CSS, head=HEAD, footer_links=["api", "settings"],
                auth_message="科技成果转化问答 / Tech-transfer Q&A" if auth else None)


def start(app: gr.Blocks, settings: Settings, host: str | None = None, port: int | None = None,
          auth: list[tuple[str, str]] | None = None, block: bool = True) -> str:
    """Queue (concurrency limit from settings) and serve `app`; returns the local URL (when block=False)."""
    app.queue(default_concurrency_limit=settings.server_concurrency)
    _, url, _ = app.launch(server_name=host or settings.host, server_port=port or settings.port, quiet=not block,
                           prevent_thread_lock=not block, **page_options(settings, auth))
    return url


def launch(settings: Settings | None = None, host: str | None = None, port: int | None = None,
           auth: str | list[tuple[str, str]] | None = None, assistant: Any = None, block: bool = True) -> str:
    """Open (or build) the index once, then serve the chat. Binds settings.host (127.0.0.1) unless told otherwise."""
    settings = settings or Settings.from_env()
    if assistant is None:
        from rag.assistant import Assistant

        assistant = Assistant.default(settings)
    pairs = parse_auth(auth) if isinstance(auth, str) else auth
    return start(build_app(assistant, settings), settings, host, port, pairs, block)
