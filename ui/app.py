"""The browser chat (Gradio Blocks): streaming answers with cited passages, filters, a document library, uploads, export.

One `Assistant` (one loaded model, one index) is shared by every browser session. Every piece of text that comes from an
article, an upload or a user is HTML-escaped before it is placed in the page. The interface speaks one language at a
time (zh or en, picked from the browser, switchable; `ui/texts.py`). The same assistant is reachable through
`gradio_client` at the named endpoint `/ask` (question, history_json) -> `Answer.to_dict()`.

A few behaviours need the browser (the `HEAD` script): the chat follows the newest answer, the copy button puts plain
text on the clipboard, message labels are text, links to an article open it in the reader, and files over the upload
limit are refused before they are sent.
"""
from __future__ import annotations

import dataclasses
import html
import importlib.util
import json
import logging
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: never phone home
if importlib.util.find_spec("matplotlib") is None:
    # Gradio tries `import matplotlib` twice around every event; without it, each try searches all of sys.path again
    # (~2 ms of CPU per request, measured with py-spy under bench/bench_serve.py). None in sys.modules makes that
    # import fail at once, as it would anyway.
    sys.modules["matplotlib"] = None  # type: ignore[assignment]

import gradio as gr

from rag.errors import InputError, RagError
from rag.records import Answer, Citation, IngestReport
from rag.script import fold_width, to_simplified
from rag.settings import Settings
from ui.texts import LANGS, tr

log = logging.getLogger("rag.ui")

ALLOWED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json", ".jsonl")
ALL_SOURCES = ""  # the Source dropdown's "all sources" value (its label is translated)
FEEDBACK_FILE = "feedback.jsonl"
UPLOADS_DIR = "uploads"
MARKER = re.compile(r"\[(\d{1,3})\]")
OPEN_PREFIX = "#rag-open="  # href of links that open an article in the reader (handled by the HEAD script)
TICK_S = 0.4  # how often a running answer checks for news and refreshes its elapsed-time status (tenths of a second)

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
.rag-header p {margin: 0; color: var(--rag-subtle); font-size: 0.9rem;}
.rag-answer {line-height: 1.6; overflow-wrap: anywhere;}
.rag-text {font-size: 1.02rem;}
.rag-rewrite {font-size: 0.85rem; color: var(--rag-subtle); margin-bottom: 0.3rem;}
.rag-badge {display: inline-block; font-size: 0.8rem; padding: 0 0.5rem; border-radius: 0.6rem; margin-bottom: 0.3rem;
  background: #fde68a; color: #713f12;}
.rag-meta {font-size: 0.8rem; color: var(--rag-subtle); margin-top: 0.3rem; display: flex; gap: 0.6rem;
  align-items: center; flex-wrap: wrap;}
.rag-copy {font-size: 0.78rem; border: 1px solid var(--border-color-primary); border-radius: 0.4rem; padding: 0 0.5rem;
  background: transparent; color: var(--body-text-color); cursor: pointer;}
.rag-details {font-size: 0.78rem; color: var(--rag-subtle); margin-top: 0.2rem;}
.rag-details ul {margin: 0.2rem 0; padding-left: 1.1rem;}
.rag-filter-note {font-size: 0.85rem; margin-top: 0.3rem; color: var(--body-text-color);}
.rag-plain, .rag-hidden {display: none !important;}
a.rag-cite {text-decoration: none; font-weight: 600; font-size: 0.85em; vertical-align: super;}
.rag-cards-h {font-weight: 600; font-size: 0.9rem; margin: 0.6rem 0 0.3rem;}
.rag-card {border: 1px solid var(--border-color-primary, #ddd); border-radius: 0.5rem; padding: 0.5rem 0.7rem;
  margin: 0.4rem 0; background: var(--background-fill-secondary, #fafafa); scroll-margin-top: 4rem;}
.rag-card:target {outline: 2px solid var(--color-accent, #f97316);}
.rag-related .rag-card {border-style: dashed; background: transparent;}
.rag-card-h {font-weight: 600;}
.rag-num {margin-right: 0.3rem; font-weight: 700;}
.rag-card-m {font-size: 0.8rem; color: var(--rag-subtle);}
.rag-passage {font-size: 0.88rem; margin-top: 0.3rem; white-space: normal;}
.rag-answer mark, .rag-reader mark {background: #fde68a; color: #1c1917; padding: 0 1px; border-radius: 2px;}
.rag-stages {display: flex; gap: 0.8rem; list-style: none; padding: 0; margin: 0 0 0.3rem; font-size: 0.8rem;
  flex-wrap: wrap;}
.rag-stages li {color: var(--rag-subtle);}
.rag-stages li.rag-active {color: var(--body-text-color); font-weight: 600;}
.rag-status {font-size: 0.85rem; color: var(--body-text-color);}
.rag-prelim {border-left: 3px solid #fde68a; padding-left: 0.5rem; margin: 0.3rem 0;}
.rag-table {width: 100%; border-collapse: collapse; font-size: 0.85rem;}
.rag-table td, .rag-table th {border-bottom: 1px solid var(--border-color-primary, #ddd); padding: 0.2rem 0.3rem;
  text-align: left; vertical-align: top; overflow-wrap: anywhere;}
.rag-table td.rag-date, .rag-table td.rag-chunks, .rag-table td.rag-src, .rag-table th {white-space: nowrap;}
.rag-table td.rag-src {max-width: 6rem; overflow: hidden; text-overflow: ellipsis;}
.rag-error {color: var(--rag-error);}
#rag-chat .prose {opacity: 1 !important;}  /* Gradio dims message text to 0.8: below 4.5:1 for small text */
.rag-report ul {padding-left: 1.1rem; margin: 0.3rem 0;} .rag-report li {margin: 0.3rem 0; overflow-wrap: anywhere;}
.rag-small {font-size: 0.8rem; color: var(--rag-subtle);}
.rag-reader {max-height: 60vh; overflow: auto; line-height: 1.7; overflow-wrap: anywhere;}
.rag-reader h3 {margin: 0 0 0.2rem;}
#rag-chat .message-row.bot-row {max-width: 100% !important;}
#rag-lang {max-width: 16rem; margin-left: auto;} #rag-lang .wrap {flex-wrap: nowrap;}
#rag-top {flex-wrap: wrap; align-items: center;}
@media (max-width: 640px) {
  #rag-header {flex: 1 1 100% !important; min-width: 100% !important;}
  #rag-lang {margin-left: 0;}
  .rag-header h1 {font-size: 1.15rem;}
  .rag-passage {font-size: 0.85rem;}
}
"""

# The browser side (see the module docstring). Plain DOM code, no library; everything it reads was escaped server-side.
HEAD_JS = r"""
(() => {
  const S = {n: -1, follow: false};
  const $ = (sel, root) => (root || document).querySelector(sel);
  const plainOf = el => {
    const p = el.querySelector('.rag-plain');
    return ((p ? p.textContent : el.innerText) || '').replace(/\s+\n/g, '\n').trim();
  };
  function fixLabels() {
    document.querySelectorAll('#rag-chat [aria-label*="<"]').forEach(el => {
      const v = el.getAttribute('aria-label');
      const who = v.startsWith('user') ? (document.documentElement.lang === 'en' ? 'You' : '用户')
                                       : (document.documentElement.lang === 'en' ? 'Assistant' : '助手');
      el.setAttribute('aria-label', (who + ': ' + plainOf(el)).slice(0, 600));
    });
  }
  function follow() {
    const wrap = $('#rag-chat .bubble-wrap');
    if (!wrap) return;
    const qs = wrap.querySelectorAll('.rag-q');
    if (qs.length !== S.n) { S.follow = qs.length > S.n && S.n >= 0 || (S.n < 0 && qs.length > 0); S.n = qs.length; }
    if (!S.follow || !qs.length) return;
    const row = qs[qs.length - 1].closest('.message-row') || qs[qs.length - 1];
    const top = row.getBoundingClientRect().top - wrap.getBoundingClientRect().top + wrap.scrollTop - 6;
    const target = Math.max(0, Math.min(top, wrap.scrollHeight - wrap.clientHeight));
    if (Math.abs(wrap.scrollTop - target) > 2) wrap.scrollTop = target;
    const answers = wrap.querySelectorAll('.rag-answer');
    const last = answers[answers.length - 1];
    const head = last && (last.querySelector('.rag-text, .rag-status') || last);
    if (head) {  // the page itself: bring the start of the newest answer into the window
      const r = head.getBoundingClientRect();
      if (r.bottom > innerHeight) window.scrollBy(0, r.bottom - innerHeight + 16);
      else if (r.top < 0) window.scrollBy(0, r.top - 16);
    }
    if (last && !last.classList.contains('rag-streaming')) S.follow = false;  // done: leave the reader alone
  }
  let queued = false;
  const onChange = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fixLabels(); follow(); });
  };
  new MutationObserver(onChange).observe(document.documentElement,
    {childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ['aria-label']});
  const stopFollow = e => { if (e.target.closest && e.target.closest('#rag-chat')) S.follow = false; };
  ['wheel', 'touchmove'].forEach(t => document.addEventListener(t, stopFollow, {passive: true}));

  async function copyText(text) {
    try { await navigator.clipboard.writeText(text); return true; } catch (e) {
      const ta = document.createElement('textarea');
      ta.value = text; ta.style.position = 'fixed'; ta.style.left = '-9999px';
      document.body.appendChild(ta); ta.select();
      const ok = document.execCommand('copy'); ta.remove(); return ok;
    }
  }
  function bridge(id, value) {  // JS -> Python: put `value` in a hidden textbox, press its hidden button
    const box = $('#' + id + ' textarea') || $('#' + id + ' input');
    const btn = $('#' + id + '-go');
    if (!box || !btn) return;
    box.value = value;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => btn.click(), 30);
  }
  document.addEventListener('click', e => {
    const copy = e.target.closest && e.target.closest('.rag-copy');
    if (copy) {
      e.preventDefault(); e.stopPropagation();
      const box = copy.closest('.rag-answer');
      copyText(box ? plainOf(box) : '').then(ok => {
        if (!ok) return;
        const was = copy.textContent;
        copy.textContent = '✓ ' + (document.documentElement.lang === 'en' ? 'Copied' : '已复制');
        setTimeout(() => { copy.textContent = was; }, 1500);
      });
      return;
    }
    const a = e.target.closest && e.target.closest('a[href^="#rag-open="]');
    if (a) {
      e.preventDefault(); e.stopPropagation();
      bridge('rag-open-req', decodeURIComponent(a.getAttribute('href').slice('#rag-open='.length)));
    }
  }, true);
  function tooBig(files) {
    const lim = $('#rag-upload-limit');
    if (!lim || !files) return null;
    const max = Number(lim.dataset.max);
    const big = [...files].filter(f => f.size > max);
    if (!big.length) return null;
    const msg = document.documentElement.lang === 'en' ? lim.dataset.msgEn : lim.dataset.msgZh;
    return big.map(f => msg.replace('{name}', f.name)).join('\n');
  }
  function refuse(e, files) {
    const why = tooBig(files);
    if (!why) return;
    e.preventDefault(); e.stopImmediatePropagation();
    if (e.target && e.target.value !== undefined) { try { e.target.value = ''; } catch (_) {} }
    const out = $('#rag-upload-msg');
    if (out) { out.textContent = why; out.style.display = 'block'; }
  }
  document.addEventListener('change', e => {
    if (e.target.matches && e.target.matches('#rag-files input[type=file]')) refuse(e, e.target.files);
  }, true);
  document.addEventListener('drop', e => {
    if (e.target.closest && e.target.closest('#rag-files')) refuse(e, e.dataTransfer && e.dataTransfer.files);
  }, true);
  document.addEventListener('input', e => {  // a new choice clears an old refusal
    if (e.target.matches && e.target.matches('#rag-files input[type=file]')) {
      const out = $('#rag-upload-msg'); if (out && !tooBig(e.target.files)) out.style.display = 'none';
    }
  }, true);
})();
"""
# Outside the app's scope (Gradio prefixes `css` rules with its container): narrower page margins on phones.
# Theme colours with at least 4.5:1 contrast on the light and the dark theme (Gradio's subdued grey has 2.5:1).
HEAD = ("<style>@media (max-width: 640px) {.gradio-container .main {padding: 8px 6px !important;}}"
        ":root {--rag-subtle: #4b5563; --rag-error: #b91c1c;} .dark {--rag-subtle: #cbd5e1; --rag-error: #fca5a5;}</style>"
        f"<script>{HEAD_JS}</script>")

# On load: the browser's language (zh for any Chinese locale, else en) unless the page asks for one (?lang=en).
LOAD_JS = """() => {
  const asked = new URLSearchParams(location.search).get('lang');
  const prefs = asked ? [asked] : (navigator.languages || [navigator.language || 'zh']);
  const lang = prefs.some(l => String(l).toLowerCase().startsWith('zh')) ? 'zh' :
               (String(prefs[0] || '').toLowerCase().startsWith('en') ? 'en' : 'zh');
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  return lang;
}"""
LANG_JS = "(...args) => { document.documentElement.lang = args[0] === 'en' ? 'en' : 'zh-CN'; return args; }"
SCROLL_READER_JS = """() => { setTimeout(() => {
  const box = document.querySelector('#rag-reader-panel');
  if (box) box.scrollIntoView({block: 'start'});
  const m = document.querySelector('#rag-reader mark');
  const r = document.querySelector('#rag-reader .rag-reader');
  if (r) r.scrollTop = m ? r.scrollTop + m.getBoundingClientRect().top - r.getBoundingClientRect().top - r.clientHeight / 3 : 0;
}, 80); }"""


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


def open_link(c: Citation) -> str:
    """The href that opens a citation's article in the reader with its supporting sentences marked."""
    spans = ",".join(f"{int(a)}-{int(b)}" for a, b in c.spans)
    return OPEN_PREFIX + html.escape(f"{c.chunk_id}|{spans}", quote=True)


def render_card(c: Citation, anchor: str, lang: str = "zh", evidence: bool = True) -> str:
    """One source card: number, title, date, source, a link to the article and the passage. Evidence cards mark the
    supporting sentence(s); related cards show the passage plainly."""
    meta = [esc(x) for x in (c.date, c.source) if x]
    meta.append(f'<a class="rag-open" href="{open_link(c)}">{esc(tr(lang, "read_article"))}</a>')
    passage = highlight(c.passage, c.spans) if evidence else esc(c.passage)
    return (
        f'<div class="rag-card" id="{anchor}">'
        f'<div class="rag-card-h"><span class="rag-num">[{c.number}]</span><span class="rag-title">{esc(c.title)}</span></div>'
        f'<div class="rag-card-m">{" · ".join(meta)}</div>'
        f'<div class="rag-passage">{passage}</div></div>'
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


def _same_question(a: str, b: str) -> bool:
    """Equal up to script (traditional/simplified), width, punctuation and space: a conversion is not a rewrite."""
    def key(s: str) -> str:
        return re.sub(r"[\W_]+", "", to_simplified(fold_width(s or ""))).lower()

    return key(a) == key(b)


def is_rewrite(answer: Answer) -> bool:
    """True when the question was rewritten from the conversation (not merely converted to simplified script)."""
    return bool(answer.standalone_question) and not _same_question(answer.standalone_question, answer.question)


def plain_text(answer: Answer, lang: str = "zh") -> str:
    """The answer as plain text, then its numbered sources (title, date, supporting sentences): what Copy gives."""
    lines = [answer.text.strip()]
    if answer.citations:
        lines += ["", tr(lang, "sources") + ":"]
        for c in answer.citations:
            lines.append(f"[{c.number}] {c.title}" + (f" ({c.date})" if c.date else ""))
            lines += [f"    {s.strip()}" for s in c.sentences if s.strip()]
    return "\n".join(lines)


def _details(answer: Answer, lang: str) -> str:
    """Internal figures (mode, notes, timings) in a collapsed details element."""
    items = [tr(lang, "answer_mode", m=answer.mode)]
    items += [n for n in answer.notes if not n.startswith("Follow-up rewritten as")]  # the rewrite is shown once, above
    t = answer.timings or {}
    if "retrieve_ms" in t:
        items.append(tr(lang, "timings", r=round(t.get("retrieve_ms", 0)), a=round(t.get("answer_ms", 0))))
    lis = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f'<details class="rag-details"><summary>{esc(tr(lang, "details"))}</summary><ul>{lis}</ul></details>'


def answer_body(answer: Answer, turn: str, lang: str = "zh", filter_note: str = "") -> str:
    """The inside of an answer: rewrite line, not-found badge, linked text, confidence, copy, details, cards."""
    parts = []
    if is_rewrite(answer):
        parts.append(f'<div class="rag-rewrite">{esc(tr(lang, "interpreted", q=answer.standalone_question))}</div>')
    if not answer.found:
        parts.append(f'<div class="rag-badge">{esc(tr(lang, "not_found"))}</div>')
    numbers = {c.number for c in answer.citations}
    parts.append(f'<div class="rag-text">{link_markers(answer.text, numbers, turn)}</div>')
    if filter_note:
        parts.append(f'<div class="rag-filter-note">{esc(filter_note)}</div>')
    parts.append(f'<div class="rag-meta"><span class="rag-conf">{esc(tr(lang, "confidence", c=answer.confidence))}</span>'
                 f'<button class="rag-copy" type="button">{esc(tr(lang, "copy"))}</button></div>')
    parts.append(_details(answer, lang))
    if answer.citations:
        parts.append(f'<div class="rag-cards rag-sources"><div class="rag-cards-h">{esc(tr(lang, "sources"))}</div>')
        parts += [render_card(c, f"c-{turn}-{c.number}", lang) for c in answer.citations]
        parts.append("</div>")
    if answer.related:
        parts.append(f'<div class="rag-cards rag-related"><div class="rag-cards-h">{esc(tr(lang, "related"))}</div>')
        parts += [render_card(c, f"r-{turn}-{c.number}", lang, evidence=False) for c in answer.related]
        parts.append("</div>")
    plain = html.escape(plain_text(answer, lang), quote=True).replace("\r", "").replace("\n", "&#10;")
    parts.append(f'<div class="rag-plain">{plain}</div>')  # newlines as entities: the message stays one HTML block
    return "".join(parts)


def render_answer(answer: Answer, turn: str, lang: str = "zh", filter_note: str = "") -> str:
    """The whole finished assistant message."""
    cls = "rag-answer" + ("" if answer.found else " rag-notfound")
    return f'<div class="{cls}">{answer_body(answer, turn, lang, filter_note)}</div>'


def render_progress(lang: str, llm: bool, stage: str, elapsed: float, partial: str = "",
                    preliminary: Answer | None = None, turn: str = "") -> str:
    """A running answer: the stages (LLM mode), what is happening now with the seconds so far, and what has arrived."""
    parts = ['<div class="rag-answer rag-streaming">']
    names = {"search": "searching", "preliminary": "preliminary", "generate": "generating", "answer": "answering"}
    if llm:
        order = ["search", "preliminary", "generate"]
        now = order.index(stage) if stage in order else 0
        lis = "".join(f'<li class="{"rag-done" if i < now else "rag-active" if i == now else "rag-todo"}">'
                      f'{"✓ " if i < now else "● " if i == now else "○ "}{esc(tr(lang, names[s]))}</li>'
                      for i, s in enumerate(order))
        parts.append(f'<ol class="rag-stages">{lis}</ol>')
    parts.append(f'<div class="rag-status" role="status">{esc(tr(lang, names.get(stage, "searching")))}… '
                 f'{elapsed:.1f} s</div>')
    if preliminary is not None:
        parts.append(f'<div class="rag-prelim"><div class="rag-badge">{esc(tr(lang, "prelim_badge"))}</div>'
                     f'{answer_body(preliminary, turn + "p", lang)}</div>')
    if partial:
        parts.append(f'<div class="rag-text rag-partial">{esc(partial)}▌</div>')
    parts.append("</div>")
    return "".join(parts)


def render_stopped(lang: str, partial: str) -> str:
    """A stopped answer: what had arrived, marked as stopped."""
    body = f'<div class="rag-text">{esc(partial)}</div>' if partial else ""
    return f'<div class="rag-answer rag-stopped">{body}<div class="rag-status">{esc(tr(lang, "stopped"))}</div></div>'


def render_error(message: str) -> str:
    return f'<div class="rag-answer rag-error">⚠️ {esc(message)}</div>'


def render_user(question: str) -> str:
    return f'<div class="rag-q">{esc(question)}</div>'


def undated_count(documents: list[dict[str, Any]]) -> int:
    return sum(1 for d in documents if not d.get("date"))


def render_filter_note(documents: list[dict[str, Any]], lang: str = "zh") -> str:
    """The filter panel's note on undated articles (which a date filter leaves out)."""
    n = undated_count(documents)
    if not n:
        return ""
    return f'<div class="rag-small rag-undated">ⓘ {esc(tr(lang, "undated", n=n, total=len(documents)))}</div>'


def render_library(stats: dict[str, Any], documents: list[dict[str, Any]], lang: str = "zh") -> str:
    """Counts and the document list (title linking to the reader, date, source, passages, added); all escaped."""
    rows = []
    for d in sorted(documents, key=lambda d: str(d.get("date") or ""), reverse=True):
        href = OPEN_PREFIX + html.escape("doc:" + str(d.get("doc_id")), quote=True)
        added = str(d.get("added") or "")[:10]
        rows.append(
            f'<tr data-doc="{esc(d.get("doc_id"))}"><td><a class="rag-open rag-doc-title" href="{href}">'
            f'{esc(d.get("title") or d.get("doc_id"))}</a></td><td class="rag-date">{esc(d.get("date") or "—")}</td>'
            f'<td class="rag-src" title="{esc(d.get("source") or "")}">{esc(d.get("source") or "—")}</td><td class="rag-chunks">{esc(d.get("chunks", ""))}</td>'
            f'<td class="rag-date">{esc(added)}</td></tr>')
    head = "".join(f"<th>{esc(tr(lang, k))}</th>" for k in ("col_title", "col_date", "col_source", "col_chunks",
                                                              "col_added"))
    counts = tr(lang, "library_counts", docs=stats.get("documents", len(documents)), chunks=stats.get("chunks", "?"))
    return (f'<div class="rag-index"><p><b class="rag-counts" data-docs="{esc(stats.get("documents", len(documents)))}">'
            f'{esc(counts)}</b> · <span class="rag-small">{esc(tr(lang, "library_hint"))}</span></p>'
            f'<table class="rag-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def render_reader(doc: Any, spans: list[tuple[int, int]], chunks: int | None, lang: str = "zh") -> str:
    """The whole cleaned text of one document, with the cited sentence(s) marked (offsets into `doc.text`)."""
    meta = [esc(x) for x in (doc.date, doc.source) if x]
    if chunks is not None:
        meta.append(esc(tr(lang, "reader_meta", chunks=chunks)))
    return (f'<div class="rag-reader-doc" data-doc="{esc(doc.doc_id)}"><h3>{esc(doc.title)}</h3>'
            f'<div class="rag-small">{" · ".join(meta)}</div>'
            f'<div class="rag-reader">{highlight(doc.text, spans)}</div></div>')


def render_reports(reports: list[IngestReport], names: dict[str, str], lang: str = "zh") -> str:
    """The ingest report, one line per file; `names` maps stored upload file names back to the names the user picked."""
    items = []
    for r in reports:
        stored, _, line = r.path.partition("#")
        shown = names.get(Path(stored).name, Path(stored).name) + (f"#{line}" if line else "")
        status = r.status if r.ok else "error"
        facts = [esc(tr(lang, f"status_{status}") if f"status_{status}" in _STATUSES else status)]
        facts += [esc(x) for x in (r.title, r.date) if x]
        if r.ok:
            facts.append(esc(tr(lang, "chunks_n", n=r.chunks)))
        detail = r.error or "; ".join(f"{k}: {v}" for k, v in r.removed.items() if v)
        label = "" if r.error else tr(lang, "removed") + ": "
        items.append(
            f'<li class="{"rag-ok" if r.ok else "rag-error"}" data-status="{esc(status)}"><b>{esc(shown)}</b> — '
            f'{" · ".join(facts)}'
            + (f'<br><span class="rag-small">{esc(label)}{esc(detail)}</span>' if detail else "")
            + "</li>"
        )
    ok = sum(1 for r in reports if r.ok)
    return (f'<div class="rag-report"><p>{esc(tr(lang, "ingested", ok=ok, n=len(reports)))}</p>'
            f'<ul>{"".join(items)}</ul></div>')


_STATUSES = {"status_added", "status_updated", "status_unchanged", "status_skipped", "status_error"}


def export_markdown(turns: list[dict[str, Any]], lang: str = "zh") -> str:
    """The conversation as Markdown: each question, its answer with [n] markers, and the numbered sources."""
    out = [f"# {tr(lang, 'export_title')}", "", f"_{datetime.now().strftime('%Y-%m-%d %H:%M')}_", ""]
    for t in turns:
        out += [f"## {tr(lang, 'export_q')}: {t['question']}", ""]
        a = t.get("answer")
        if not a:
            out += [f"_{t.get('error') or tr(lang, 'no_answer')}_", ""]
            continue
        out += [f"**{tr(lang, 'export_a')}:** {a['text']}", ""]
        if a.get("citations"):
            out += [f"**{tr(lang, 'sources')}:**", ""]
            for c in a["citations"]:
                meta = ", ".join(x for x in (c.get("date"), c.get("source")) if x)
                out.append(f"{c['number']}. **{c['title']}**" + (f" ({meta})" if meta else ""))
                out += [f"   > {s.strip()}" for s in c.get("sentences", []) if s.strip()]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def answer_from_dict(d: dict[str, Any]) -> Answer:
    """An Answer back from `Answer.to_dict()` (used to re-render the chat in another language)."""
    names = {f.name for f in dataclasses.fields(Citation)}

    def cit(c: dict) -> Citation:
        return Citation(**{k: v for k, v in c.items() if k in names and k != "spans"},
                        spans=[tuple(s) for s in c.get("spans", [])])

    fields = {f.name for f in dataclasses.fields(Answer)} - {"citations", "related"}
    return Answer(**{k: v for k, v in d.items() if k in fields}, citations=[cit(c) for c in d.get("citations", [])],
                  related=[cit(c) for c in d.get("related", [])])


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


def parse_date(value: str | None, label: str, lang: str = "zh") -> str | None:
    """`YYYY-MM-DD` (also `YYYY/MM/DD`, `YYYY.MM.DD`) from a date box, or None when empty."""
    if value is None or not str(value).strip():
        return None
    s = str(value).strip()[:10].replace("/", "-").replace(".", "-")
    try:
        return date.fromisoformat(s).isoformat()
    except ValueError:
        raise InputError(tr(lang, "date_format", label=label, value=repr(value))) from None


def make_filters(source: str | None, date_from: str | None, date_to: str | None, doc_ids: list[str] | None = None,
                 lang: str = "zh"):
    """rag.retrieval.Filters from the filter controls, or None when none is set."""
    src = None if not source or source == ALL_SOURCES else source
    since, until = parse_date(date_from, tr(lang, "from"), lang), parse_date(date_to, tr(lang, "to"), lang)
    if since and until and since > until:
        raise InputError(tr(lang, "date_order"))
    ids = list(doc_ids) if doc_ids else None
    if not (src or since or until or ids):
        return None
    from rag.retrieval import Filters

    return Filters(source=src, date_from=since, date_to=until, doc_ids=ids)


def filter_note(filters: Any, documents: list[dict[str, Any]], lang: str = "zh") -> str:
    """For a not-found answer under active filters: how many articles were searched, and the undated ones a date
    filter left out."""
    if filters is None:
        return ""
    kept = sum(1 for d in documents if filters.accepts(d, d["doc_id"]))
    note = tr(lang, "filter_note", kept=kept, total=len(documents))
    if filters.date_from or filters.date_to:
        undated = [d for d in documents if not d.get("date")
                   and (filters.doc_ids is None or d["doc_id"] in filters.doc_ids)]
        if undated:
            note += tr(lang, "filter_undated", n=len(undated))
    return note + tr(lang, "filter_hint")


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
    """True when the LLM answer mode can be offered (`rag.llm.available`; nothing is loaded here)."""
    from rag.llm import available

    return available(settings) is None


def _index_dir(assistant: Any, settings: Settings) -> Path:
    own = getattr(assistant, "settings", None)
    return Path(own.index_dir) if isinstance(own, Settings) else settings.index_dir


def _history(turns: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(t["question"], t["answer"]["text"]) for t in turns if t.get("answer")]


def _parse_open(request: str) -> tuple[str, str | None, list[tuple[int, int]]]:
    """`doc:<doc_id>` or `<chunk_id>|a-b,c-d` (from a reader link) -> (doc_id or "", chunk_id, spans in the chunk)."""
    request = (request or "").strip()
    if request.startswith("doc:"):
        return request[4:], None, []
    chunk_id, _, spans = request.partition("|")
    out = []
    for part in spans.split(","):
        a, _, b = part.partition("-")
        if a.isdigit() and b.isdigit():
            out.append((int(a), int(b)))
    return chunk_id.rsplit(":", 1)[0], chunk_id, out


# ---------------------------------------------------------------- the app


def build_app(assistant: Any, settings: Settings, llm_modes: bool | None = None) -> gr.Blocks:
    """The chat UI around one shared Assistant (no model is loaded here). `llm_modes` overrides whether the LLM answer
    mode is offered (default: when it is installed)."""
    index_dir = _index_dir(assistant, settings)
    feedback_path = index_dir / FEEDBACK_FILE
    feedback_lock = threading.Lock()
    max_bytes = int(settings.max_upload_mb) * 1024 * 1024
    has_llm = llm_available(settings) if llm_modes is None else llm_modes
    export_dir = Path(tempfile.mkdtemp(prefix="rag-export-"))
    stops: dict[str, threading.Event] = {}  # session -> "stop the running answer"

    def documents() -> list[dict[str, Any]]:
        return assistant.documents()

    def source_choices(lang: str) -> list[tuple[str, str]]:
        return [(tr(lang, "all_sources"), ALL_SOURCES)] + [
            (s, s) for s in sorted({str(d["source"]) for d in documents() if d.get("source")})]

    def doc_choices() -> list[tuple[str, str]]:
        docs = sorted(documents(), key=lambda d: str(d.get("title") or ""))
        return [(f"{d.get('title') or d['doc_id']}" + (f" ({d['date']})" if d.get("date") else ""), d["doc_id"])
                for d in docs]

    def library_html(lang: str) -> str:
        return render_library(assistant.stats(), documents(), lang)

    def mode_choices(lang: str) -> list[tuple[str, str]]:
        return [(tr(lang, "extractive"), "extractive")] + ([(tr(lang, "llm"), "llm")] if has_llm else [])

    def lists_update(lang: str, selected: list[str] | None = None):
        """Library view, source choices, document choices and the undated note, after the index changed."""
        ids = {d["doc_id"] for d in documents()}
        keep = [d for d in (selected or []) if d in ids]
        return (library_html(lang), gr.update(choices=source_choices(lang)),
                gr.update(choices=doc_choices(), value=keep), render_filter_note(documents(), lang))

    def rerender(turns: list, lang: str) -> list[dict[str, str]]:
        """The chat messages from the stored turns, in `lang`."""
        messages = []
        for i, t in enumerate(turns):
            messages.append({"role": "user", "content": render_user(t["question"])})
            if t.get("answer"):
                content = render_answer(answer_from_dict(t["answer"]), f"t{i}", lang, t.get("filter_note", ""))
            elif t.get("stopped") is not None:
                content = render_stopped(lang, t["stopped"])
            else:
                content = render_error(t.get("error") or tr(lang, "no_answer"))
            messages.append({"role": "assistant", "content": content})
        return messages

    def export_file(turns: list, lang: str, request: gr.Request = None) -> Any:
        if not turns:
            return gr.update(value=None, interactive=False)
        key = re.sub(r"[^A-Za-z0-9]", "", getattr(request, "session_hash", "") or "") or uuid.uuid4().hex
        path = export_dir / key / "conversation.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(export_markdown(turns, lang), encoding="utf-8")
        return gr.update(value=str(path), interactive=True)

    def buttons(running: bool, turns: list) -> tuple[Any, Any, Any]:
        """Ask / Stop / Regenerate: Stop only while an answer runs, Regenerate once there is a question to redo."""
        return (gr.update(visible=not running), gr.update(visible=running),
                gr.update(interactive=not running and bool(turns)))

    def respond(question: str, messages: list, turns: list, source: str, date_from: Any, date_to: Any,
                doc_ids: list[str], mode: str, lang: str, request: gr.Request = None) -> Iterator[tuple]:
        """Stream one answer into the chat: a status that changes at least every second (stage and seconds), the
        preliminary answer and the generated text as they come, then the rendered answer and its cards."""
        question = (question or "").strip()
        messages = list(messages or [])
        turns = list(turns or [])
        if not question:
            gr.Warning(tr(lang, "empty_question"))
            yield messages, turns, "", *buttons(False, turns), gr.update()
            return
        llm = mode == "llm"
        turn = f"t{len(turns)}"
        messages.append({"role": "user", "content": render_user(question)})
        messages.append({"role": "assistant", "content": render_progress(lang, llm, "search", 0)})
        yield messages, turns, "", *buttons(True, turns), gr.update()
        try:
            filters = make_filters(source, date_from, date_to, doc_ids, lang)
        except InputError as e:
            messages[-1] = {"role": "assistant", "content": render_error(str(e))}
            turns.append({"question": question, "answer": None, "error": str(e)})
            yield messages, turns, "", *buttons(False, turns), export_file(turns, lang, request)
            return
        session = getattr(request, "session_hash", None) or uuid.uuid4().hex
        stop = stops[session] = threading.Event()
        inbox: queue.Queue = queue.Queue()

        def produce() -> None:
            stream = None
            try:
                stream = assistant.ask_stream(question, history=_history(turns), filters=filters, mode=mode or None)
                for piece in stream:
                    inbox.put(("piece", piece))
                    if stop.is_set():
                        break
            except RagError as e:
                inbox.put(("error", str(e)))
            except Exception as e:  # noqa: BLE001 - an unexpected failure: logged once, a short message in the chat
                log.exception("answering %r failed", question)
                inbox.put(("error", f"{type(e).__name__}: {e}"))
            finally:
                if stream is not None and hasattr(stream, "close"):
                    stream.close()  # stops an LLM mid-generation
                inbox.put(("end", None))

        threading.Thread(target=produce, name="rag-answer", daemon=True).start()
        t0 = time.monotonic()
        stage, partial, answers, error, shown = "search", "", [], None, ""
        last_yield = 0.0
        try:
            while True:
                try:
                    kind, piece = inbox.get(timeout=TICK_S)
                except queue.Empty:
                    kind, piece = "tick", None
                if kind == "end":
                    break
                if kind == "error":
                    error = piece
                    continue
                if stop.is_set():
                    break
                if kind == "piece":
                    if isinstance(piece, Answer):
                        answers.append(piece)
                        if llm:  # an Answer that is not the last is the preliminary one; the LLM follows
                            stage, partial = "generate", ""
                    else:
                        partial += str(piece)
                        if stage == "search":
                            stage = "generate" if llm else "answer"
                prelim = answers[-1] if (llm and answers) else None
                content = render_progress(lang, llm, stage, time.monotonic() - t0, partial, prelim, turn)
                now = time.monotonic()
                if content != shown and (kind == "tick" or now - last_yield >= 0.08):
                    shown, last_yield = content, now
                    messages[-1] = {"role": "assistant", "content": content}
                    yield messages, turns, "", *buttons(True, turns), gr.update()
        finally:
            stop.set()  # also when the browser went away: the producer stops at its next piece
            stops.pop(session, None)
        final = answers[-1] if answers and kind == "end" and error is None else None
        if final is not None:
            note = filter_note(filters, documents(), lang) if not final.found else ""
            messages[-1] = {"role": "assistant", "content": render_answer(final, turn, lang, note)}
            turns.append({"question": question, "answer": final.to_dict(), "filter_note": note})
        elif kind != "end" and answers:  # stopped after the preliminary answer: keep it, say so
            a, note = answers[-1], tr(lang, "stopped_prelim")
            messages[-1] = {"role": "assistant", "content": render_answer(a, turn, lang, note)}
            turns.append({"question": question, "answer": a.to_dict(), "filter_note": note})
        elif kind != "end":
            messages[-1] = {"role": "assistant", "content": render_stopped(lang, partial)}
            turns.append({"question": question, "answer": None, "stopped": partial})
        else:
            msg = tr(lang, "error", e=error) if error else tr(lang, "no_answer")
            messages[-1] = {"role": "assistant", "content": render_error(msg)}
            turns.append({"question": question, "answer": None, "error": msg})
        yield messages, turns, "", *buttons(False, turns), export_file(turns, lang, request)

    def regenerate(messages: list, turns: list, source, date_from, date_to, doc_ids, mode, lang,
                   request: gr.Request = None):
        """Ask the last question again (its old answer is replaced)."""
        turns = list(turns or [])
        if not turns:
            yield messages, turns, "", *buttons(False, turns), gr.update()
            return
        last = turns.pop()
        yield from respond(last["question"], list(messages or [])[:-2], turns, source, date_from, date_to, doc_ids,
                           mode, lang, request)

    def stop_answer(request: gr.Request) -> None:
        ev = stops.get(getattr(request, "session_hash", None) or "")
        if ev is not None:
            ev.set()

    def on_like(turns: list, lang: str, data: gr.LikeData) -> str:
        """Append the rated answer (question, answer, citations, rating, time) to <index>/feedback.jsonl."""
        idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        k = int(idx) // 2  # messages alternate user/assistant
        if not turns or k >= len(turns) or not turns[k].get("answer"):
            return "⚠️ " + tr(lang, "nothing_to_rate")
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
        return tr(lang, "feedback_saved", icon="👍" if rating == "up" else "👎")

    def upload(files: list[str] | None, lang: str, progress: gr.Progress = gr.Progress(track_tqdm=True)):
        """Copy accepted files under <index>/uploads with generated names and add them to the index at once; the report
        (or the reasons, in the UI's language) appears in the upload panel, and the file box is emptied."""
        if not files:
            return "", gr.update(value=None)
        updir = index_dir / UPLOADS_DIR
        updir.mkdir(parents=True, exist_ok=True)
        stored: list[Path] = []
        names: dict[str, str] = {}
        rejected: list[str] = []
        progress(0.05, desc=tr(lang, "upload"))
        for f in files:
            src = Path(f if isinstance(f, str) else f.name)
            client_name = src.name  # display only
            suffix = allowed_suffix(client_name)
            if suffix is None:
                rejected.append(tr(lang, "bad_type", name=client_name, allowed=" ".join(ALLOWED_SUFFIXES)))
                continue
            if src.stat().st_size > max_bytes:
                rejected.append(tr(lang, "too_large", name=client_name, mb=settings.max_upload_mb))
                continue
            dest = updir / f"{uuid.uuid4().hex}{suffix}"
            shutil.copyfile(src, dest)
            stored.append(dest)
            names[dest.name] = client_name
        reports: list[IngestReport] = []
        failure = ""
        if stored:
            progress(0.2, desc=tr(lang, "upload"))
            try:
                reports = assistant.add_paths(stored, progress=True)
            except RagError as e:
                for p in stored:
                    p.unlink(missing_ok=True)
                log.warning("upload: %s", e)
                failure = tr(lang, "ingest_failed", reason=str(e))
            for p in stored:  # keep a copy only when something of it went into the index
                mine = [r for r in reports if Path(r.path.partition("#")[0]).name == p.name]
                if mine and not any(r.ok and r.status in ("added", "updated") for r in mine):
                    p.unlink(missing_ok=True)
        body = render_reports(reports, names, lang) if reports else ""
        problems = rejected + ([failure] if failure else [])
        if problems:
            body += '<div class="rag-error rag-upload-error">' + "<br>".join(esc(r) for r in problems) + "</div>"
        return body, gr.update(value=None)

    def open_doc(req: str, lang: str):
        """Show a document's whole cleaned text in the reader, the cited sentences (if any) marked."""
        doc_id, chunk_id, spans = _parse_open(req)
        doc = assistant.document(doc_id) if doc_id else None
        if doc is None:
            return (f'<div class="rag-error">{esc(tr(lang, "doc_missing"))}</div>', gr.update(visible=True, open=True),
                    "", gr.update(visible=False), "")
        shift = []
        if chunk_id:
            ch = assistant.chunk(chunk_id)
            if ch is not None:
                shift = [(ch.start + a, ch.start + b) for a, b in spans]
        meta = next((d for d in documents() if d["doc_id"] == doc_id), {})
        return (render_reader(doc, shift, meta.get("chunks"), lang), gr.update(visible=True, open=True), doc_id,
                gr.update(visible=False), "")

    def ask_delete(doc_id: str, lang: str):
        meta = next((d for d in documents() if d["doc_id"] == doc_id), None)
        if not meta:
            return gr.update(visible=False), f'<p class="rag-error">{esc(tr(lang, "doc_missing"))}</p>'
        return gr.update(visible=True), f'<p class="rag-confirm-q">{esc(tr(lang, "confirm_delete", title=meta.get("title") or doc_id))}</p>'

    def delete_doc(doc_id: str, lang: str, selected: list[str] | None):
        """Remove the document from the index (Index.remove, as `rag remove`); its uploaded copy goes too."""
        meta = next((d for d in documents() if d["doc_id"] == doc_id), None)
        if meta is None:
            msg = f'<p class="rag-error">{esc(tr(lang, "doc_missing"))}</p>'
        else:
            assistant.remove([doc_id])
            src = Path(str(meta.get("path") or "").partition("#")[0])
            updir = (index_dir / UPLOADS_DIR).resolve()
            if src.parent.resolve() == updir and src.is_file() and not any(
                    Path(str(d.get("path") or "").partition("#")[0]) == src for d in documents()):
                src.unlink(missing_ok=True)
            msg = f'<p class="rag-deleted">{esc(tr(lang, "deleted", title=meta.get("title") or doc_id))}</p>'
        return (msg, gr.update(visible=False), gr.update(visible=False), "", *lists_update(lang, selected))

    def apply_lang(lang: str, turns: list, source: str, mode: str):
        """Every label in `lang`, and the chat re-rendered in it."""
        lang = lang if lang in LANGS else "zh"
        return (
            f'<div class="rag-header"><h1>{esc(tr(lang, "title"))}</h1><p>{esc(tr(lang, "subtitle"))}</p></div>',
            gr.update(placeholder=tr(lang, "chat_placeholder"), value=rerender(turns or [], lang)),
            gr.update(label=tr(lang, "ask_label"), placeholder=tr(lang, "ask_placeholder")),
            gr.update(value=tr(lang, "ask")), gr.update(value=tr(lang, "stop")),
            gr.update(value=tr(lang, "regenerate")), gr.update(value=tr(lang, "new")),
            gr.update(label=tr(lang, "export")),
            gr.update(label=tr(lang, "examples")),
            gr.update(label=tr(lang, "filters")),
            gr.update(label=tr(lang, "source"), choices=source_choices(lang), value=source or ALL_SOURCES),
            gr.update(label=tr(lang, "from")), gr.update(label=tr(lang, "to")),
            gr.update(label=tr(lang, "docs"), info=tr(lang, "docs_info")),
            render_filter_note(documents(), lang),
            gr.update(label=tr(lang, "mode"), choices=mode_choices(lang), value=mode,
                      info=None if has_llm else tr(lang, "llm_missing")),
            gr.update(label=tr(lang, "library")), library_html(lang), gr.update(value=tr(lang, "refresh")),
            gr.update(label=tr(lang, "reader")), gr.update(value=tr(lang, "only_this")),
            gr.update(value=tr(lang, "delete")), gr.update(value=tr(lang, "confirm")),
            gr.update(value=tr(lang, "cancel")),
            gr.update(label=tr(lang, "upload")),
            gr.update(label=tr(lang, "files", mb=settings.max_upload_mb)),
            gr.update(label=tr(lang, "lang")),
        )

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

    lang0 = "zh"
    from rag.reader import resolve_mode

    wanted = "llm" if has_llm and (settings.answer_mode or "auto") == "auto" else resolve_mode(None, settings)
    default_mode = wanted if wanted in dict((v, k) for k, v in mode_choices(lang0)) else "extractive"
    limit_note = (f'<div id="rag-upload-limit" class="rag-hidden" data-max="{max_bytes}" '
                  f'data-msg-zh="{esc(tr("zh", "too_large", name="{name}", mb=settings.max_upload_mb))}" '
                  f'data-msg-en="{esc(tr("en", "too_large", name="{name}", mb=settings.max_upload_mb))}"></div>'
                  '<div id="rag-upload-msg" class="rag-error" role="alert" style="display:none"></div>')

    with gr.Blocks(title=f"{tr('zh', 'title')} / {tr('en', 'title')}", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:  # Gradio's own copies of uploads do not linger
        turns = gr.State([])
        reader_doc = gr.State("")
        with gr.Row(equal_height=False, elem_id="rag-top"):
            header = gr.HTML(f'<div class="rag-header"><h1>{esc(tr(lang0, "title"))}</h1>'
                             f'<p>{esc(tr(lang0, "subtitle"))}</p></div>', elem_id="rag-header", min_width=300)
            lang = gr.Radio([("中文", "zh"), ("English", "en")], value=lang0, label=tr(lang0, "lang"),
                            elem_id="rag-lang", container=False, scale=0, min_width=230)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    show_label=False, elem_id="rag-chat", height="62vh", min_height=300, autoscroll=False,
                    latex_delimiters=[], buttons=[], feedback_options=("Like", "Dislike"), layout="bubble",
                    placeholder=tr(lang0, "chat_placeholder"),
                )
                question = gr.Textbox(label=tr(lang0, "ask_label"), placeholder=tr(lang0, "ask_placeholder"),
                                      elem_id="rag-question", lines=1, max_lines=4, max_length=2000)
                with gr.Row():
                    ask_btn = gr.Button(tr(lang0, "ask"), variant="primary", elem_id="rag-ask", scale=3, min_width=100)
                    stop_btn = gr.Button(tr(lang0, "stop"), variant="stop", elem_id="rag-stop", scale=3, min_width=100,
                                         visible=False)
                    regen_btn = gr.Button(tr(lang0, "regenerate"), elem_id="rag-regen", scale=1, min_width=100,
                                          interactive=False)
                    clear_btn = gr.Button(tr(lang0, "new"), elem_id="rag-clear", scale=1, min_width=90)
                feedback_msg = gr.Markdown(elem_id="rag-feedback")
                examples = gr.Dataset(components=[question], samples=[[q] for q in EXAMPLES],
                                      label=tr(lang0, "examples"), elem_id="rag-examples", samples_per_page=10)
                export_btn = gr.DownloadButton(tr(lang0, "export"), elem_id="rag-export", size="sm",
                                               interactive=False)
            with gr.Column(scale=2, min_width=300):
                with gr.Accordion(tr(lang0, "reader"), open=True, visible=False, elem_id="rag-reader-panel") as reader_acc:
                    reader_view = gr.HTML(elem_id="rag-reader")
                    with gr.Row():
                        only_btn = gr.Button(tr(lang0, "only_this"), size="sm", elem_id="rag-only-this")
                        delete_btn = gr.Button(tr(lang0, "delete"), size="sm", variant="stop", elem_id="rag-delete")
                    with gr.Group(visible=False, elem_id="rag-confirm") as confirm_box:
                        confirm_q = gr.HTML()
                        with gr.Row():
                            confirm_btn = gr.Button(tr(lang0, "confirm"), size="sm", variant="stop",
                                                    elem_id="rag-confirm-yes")
                            cancel_btn = gr.Button(tr(lang0, "cancel"), size="sm", elem_id="rag-confirm-no")
                with gr.Accordion(tr(lang0, "filters"), open=True, elem_id="rag-filters") as filters_acc:
                    source = gr.Dropdown(source_choices(lang0), value=ALL_SOURCES, label=tr(lang0, "source"),
                                         elem_id="rag-source")
                    date_from = gr.DateTime(include_time=False, type="string", label=tr(lang0, "from"),
                                            elem_id="rag-from")
                    date_to = gr.DateTime(include_time=False, type="string", label=tr(lang0, "to"), elem_id="rag-to")
                    undated_view = gr.HTML(render_filter_note(documents(), lang0), elem_id="rag-undated")
                    doc_filter = gr.Dropdown(doc_choices(), value=[], multiselect=True, label=tr(lang0, "docs"),
                                             info=tr(lang0, "docs_info"), elem_id="rag-docs")
                    mode = gr.Radio(mode_choices(lang0), value=default_mode, label=tr(lang0, "mode"), elem_id="rag-mode",
                                    info=None if has_llm else tr(lang0, "llm_missing"))
                with gr.Accordion(tr(lang0, "library"), open=False, elem_id="rag-library-panel") as library_acc:
                    library_view = gr.HTML(library_html(lang0), elem_id="rag-index")
                    refresh_btn = gr.Button(tr(lang0, "refresh"), size="sm")
                    deleted_msg = gr.HTML(elem_id="rag-deleted")
                with gr.Accordion(tr(lang0, "upload"), open=False, elem_id="rag-upload-panel") as upload_acc:
                    files = gr.File(file_count="multiple", type="filepath", elem_id="rag-files",
                                    label=tr(lang0, "files", mb=settings.max_upload_mb))
                    gr.HTML(limit_note)
                    report_view = gr.HTML(elem_id="rag-report")
        open_req = gr.Textbox(elem_id="rag-open-req", visible="hidden")
        open_go = gr.Button(elem_id="rag-open-req-go", visible="hidden")

        filters_in = [source, date_from, date_to, doc_filter, mode, lang]
        chat_out = [chatbot, turns, question, ask_btn, stop_btn, regen_btn, export_btn]
        ask_ev = ask_btn.click(respond, inputs=[question, chatbot, turns, *filters_in], outputs=chat_out,
                               api_visibility="private", show_progress="hidden")
        sub_ev = question.submit(respond, inputs=[question, chatbot, turns, *filters_in], outputs=chat_out,
                                 api_visibility="private", show_progress="hidden")
        ex_ev = examples.click(lambda s: s[0], inputs=[examples], outputs=[question], api_visibility="private",
                               show_progress="hidden").then(
            respond, inputs=[question, chatbot, turns, *filters_in], outputs=chat_out, api_visibility="private",
            show_progress="hidden")
        regen_ev = regen_btn.click(regenerate, inputs=[chatbot, turns, *filters_in], outputs=chat_out,
                                   api_visibility="private", show_progress="hidden")
        retry_ev = chatbot.retry(regenerate, inputs=[chatbot, turns, *filters_in], outputs=chat_out,
                                 api_visibility="private", show_progress="hidden")
        stop_btn.click(stop_answer, api_visibility="private", queue=False)
        clear_btn.click(lambda: ([], [], "", gr.update(interactive=False), gr.update(value=None, interactive=False)),
                        outputs=[chatbot, turns, feedback_msg, regen_btn, export_btn], api_visibility="private")
        chatbot.clear(lambda: ([], "", gr.update(interactive=False)), outputs=[turns, feedback_msg, regen_btn],
                      api_visibility="private")  # its own 🗑 button
        chatbot.like(on_like, inputs=[turns, lang], outputs=[feedback_msg], api_visibility="private")
        lists_out = [library_view, source, doc_filter, undated_view]
        refresh_btn.click(lambda lg, sel: lists_update(lg, sel), inputs=[lang, doc_filter], outputs=lists_out,
                          api_visibility="private")
        files.upload(upload, inputs=[files, lang], outputs=[report_view, files], api_visibility="private",
                     concurrency_limit=1, concurrency_id="index-write", show_progress_on=[report_view]).then(
            lambda lg, sel: lists_update(lg, sel), inputs=[lang, doc_filter], outputs=lists_out,
            api_visibility="private", show_progress="hidden")
        open_go.click(open_doc, inputs=[open_req, lang],
                      outputs=[reader_view, reader_acc, reader_doc, confirm_box, deleted_msg],
                      api_visibility="private", show_progress="hidden").then(
            None, js=SCROLL_READER_JS, api_visibility="private")
        only_btn.click(lambda d: gr.update(value=[d] if d else []), inputs=[reader_doc], outputs=[doc_filter],
                       api_visibility="private")
        delete_btn.click(ask_delete, inputs=[reader_doc, lang], outputs=[confirm_box, confirm_q],
                         api_visibility="private")
        cancel_btn.click(lambda: gr.update(visible=False), outputs=[confirm_box], api_visibility="private")
        confirm_btn.click(delete_doc, inputs=[reader_doc, lang, doc_filter],
                          outputs=[deleted_msg, confirm_box, reader_acc, reader_doc, *lists_out],
                          api_visibility="private", concurrency_limit=1, concurrency_id="index-write")
        lang_out = [header, chatbot, question, ask_btn, stop_btn, regen_btn, clear_btn, export_btn, examples,
                    filters_acc, source, date_from, date_to, doc_filter, undated_view, mode, library_acc,
                    library_view, refresh_btn, reader_acc, only_btn, delete_btn, confirm_btn, cancel_btn, upload_acc,
                    files, lang]
        lang.change(apply_lang, inputs=[lang, turns, source, mode], outputs=lang_out, js=LANG_JS,
                    api_visibility="private", show_progress="hidden").then(
            export_file, inputs=[turns, lang], outputs=[export_btn], api_visibility="private", show_progress="hidden")
        app.load(None, outputs=[lang], js=LOAD_JS, api_visibility="private")
        del ask_ev, sub_ev, ex_ev, regen_ev, retry_ev
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
                auth_message=f"{tr('zh', 'title')} / {tr('en', 'title')}" if auth else None)


def enable_queue(app: gr.Blocks, settings: Settings) -> gr.Blocks:
    """Gradio's queue with the settings' concurrency limit. Gradio recomputes a pandas summary of up to 10,000 past
    events after every request unless told otherwise: here once per 1,000 (bench/bench_serve.py, 800 requests: server
    CPU 32 ms per answer with the default, 23 ms with this)."""
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    return app.queue(default_concurrency_limit=settings.server_concurrency)


def start(app: gr.Blocks, settings: Settings, host: str | None = None, port: int | None = None,
          auth: list[tuple[str, str]] | None = None, block: bool = True) -> str:
    """Queue (concurrency limit from settings) and serve `app`; returns the local URL (when block=False)."""
    enable_queue(app, settings)
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
