"""The browser chat (ui/app.py): rendering helpers, and end to end in headless Debian Chromium against `rag serve`
(the real Assistant over a fresh index built from the bundled corpus), plus the LLM-mode stages against an in-process
app whose assistant answers in LLM mode the way the answer engine streams (preliminary answer, silence, tokens)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from rag.errors import InputError
from rag.records import Answer, Citation
from ui.app import (ALL_SOURCES, allowed_suffix, answer_from_dict, esc, export_markdown, filter_note, highlight,
                    make_filters, parse_auth, plain_text, render_answer, render_library)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWER_MS = 60_000  # bounded wait per answer
MAX_UPLOAD_MB = 1
SERVER_START_S = 300  # first start builds the index (model load + embedding the five articles)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

INJECTED = """标题: 绿洲市首届技术转移大会召开<img src=x onerror="window.__pwned=3">
发布日期: 2025-03-02
来源: 绿洲日报

2025年3月1日，绿洲市首届技术转移大会在绿洲会展中心举行。大会现场共签约17个技术转移项目，签约金额3200万元。<script>window.__pwned=1</script>
会议期间还展示了<img src=x onerror="window.__pwned=2">等新材料成果。
"""

# WCAG contrast of an element's text against the colour actually behind it (backgrounds composed up the tree).
CONTRAST_JS = """(sels) => {
  const parse = s => { const m = s && s.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (fg, bg) => [0, 1, 2].map(i => fg[i] * fg[3] + bg[i] * (1 - fg[3])).concat([1]);
  const bgOf = el => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let bg = [255, 255, 255, 1]; for (const c of layers.reverse()) bg = over(c, bg); return bg; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const opacity = el => { let o = 1; for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity); return o; };
  return sels.map(s => { const el = [...document.querySelectorAll(s)].pop(); if (!el) return [s, null];
    const bg = bgOf(el); const c = parse(getComputedStyle(el).color); if (!c) return [s, null];
    const fg = over([c[0], c[1], c[2], c[3] * opacity(el)], bg); const a = lum(fg), b = lum(bg);
    return [s, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
}"""
CONTRAST_SELECTORS = ["#rag-chat .rag-sources mark", "#rag-chat .rag-text", "#rag-chat .rag-badge",
                      "#rag-chat a.rag-cite", "#rag-chat .rag-card-m", "#rag-chat .rag-conf",
                      "#rag-chat .rag-details summary", "#rag-chat .rag-related .rag-passage", "#rag-chat .rag-q",
                      ".rag-undated"]


# ---------------------------------------------------------------- rendering helpers (no browser)


def _citation(passage: str, spans: list[tuple[int, int]], title: str = "t", number: int = 1) -> Citation:
    return Citation(number=number, doc_id="d", chunk_id="d:0", title=title, date="2024-07-29", source="s",
                    passage=passage, spans=spans)


def test_highlight_marks_spans_and_escapes_everything() -> None:
    passage = "甲<b>乙</b>。共签署59个项目。<script>x()</script>"
    s = passage.index("共")
    out = highlight(passage, [(s, passage.index("。", s) + 1), (s + 2, s + 4)])  # overlapping spans merge
    assert out.count("<mark>") == 1 and "<mark>共签署59个项目。</mark>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out and "<b>" not in out
    assert highlight("abc", [(2, 99), (5, 9)]) == "ab<mark>c</mark>"  # clipped to the passage


def test_render_answer_links_markers_escapes_and_shows_related_plainly() -> None:
    evil = '<img src=x onerror="alert(1)">'
    c = _citation("共签署59个项目。" + evil, [(0, 9)], title=evil)
    a = Answer(text="共签署59个项目 [1] [7]", question="那南阳站呢？", standalone_question="南阳站签了多少个项目？",
               found=True, citations=[c], confidence=0.75,
               notes=["Follow-up rewritten as: 南阳站签了多少个项目？", "question terms covered: passage 0.33"])
    out = render_answer(a, "t1", "zh")
    assert '<a class="rag-cite" href="#c-t1-1">[1]</a>' in out and 'id="c-t1-1"' in out
    assert "#c-t1-7" not in out  # a marker without a citation stays plain text
    assert "<img" not in out and "&lt;img" in out
    assert out.count("南阳站签了多少个项目？") == 1  # the rewrite line, once
    assert "理解为：南阳站签了多少个项目？" in out and "Follow-up rewritten" not in out
    assert "置信度 0.75" in out
    details = out[out.index("<details"):out.index("</details>")]
    assert "question terms covered" in details and "<details open" not in out  # internal figures: collapsed
    assert "\n" not in out  # one HTML block: Markdown never touches article text
    nf = Answer(text="文章未提及。", question="q", standalone_question="q", found=False, related=[c])
    out = render_answer(nf, "t2", "en")
    assert "Not found" in out and "Related passages" in out and 'id="r-t2-1"' in out
    assert "<mark>" not in out  # related passages are not evidence: no highlight
    assert "Sources" not in out


def test_traditional_question_converted_only_is_not_a_rewrite() -> None:
    a = Answer(text="2024年4月11日 [1]", question="創新港路演大會在哪一天召開？",
               standalone_question="创新港路演大会在哪一天召开?", found=True)
    assert "rag-rewrite" not in render_answer(a, "t", "zh")


def test_plain_text_has_answer_then_numbered_sources_without_markup() -> None:
    p = "第一句。共签署59个项目合作协议。第三句。"
    c1 = _citation(p, [(4, 17)], title="西宁对接会闭幕", number=1)
    c2 = dataclasses.replace(c1, number=2, title="另一篇", date=None, spans=[(0, 4)])
    a = Answer(text="共签署59个项目合作协议 [1][2]", question="q", standalone_question="q", found=True,
               citations=[c1, c2])
    text = plain_text(a, "en")
    assert text.splitlines() == ["共签署59个项目合作协议 [1][2]", "", "Sources:", "[1] 西宁对接会闭幕 (2024-07-29)",
                                 "    共签署59个项目合作协议。", "[2] 另一篇", "    第一句。"]
    out = render_answer(a, "t", "en")
    plain = out[out.index('<div class="rag-plain">'):]
    assert "&#10;" in plain and "\n" not in out


def test_export_markdown_and_answer_round_trip() -> None:
    c = _citation("共签署59个项目。", [(0, 9)], title="西宁")
    a = Answer(text="共签署59个项目 [1]", question="西宁签了多少？", standalone_question="西宁签了多少？", found=True,
               citations=[c])
    assert answer_from_dict(a.to_dict()) == a
    md = export_markdown([{"question": "西宁签了多少？", "answer": a.to_dict()},
                          {"question": "x", "answer": None, "error": "boom"}], "zh")
    assert "## 问: 西宁签了多少？" in md and "**答:** 共签署59个项目 [1]" in md
    assert "1. **西宁** (2024-07-29, s)" in md and "   > 共签署59个项目。" in md and "_boom_" in md


def test_library_lists_documents_escaped() -> None:
    docs = [{"doc_id": "a1", "title": "<b>标题</b>", "date": None, "source": "报", "chunks": 3,
             "added": "2026-01-02T03:04:05+00:00"}]
    out = render_library({"documents": 1, "chunks": 3}, docs, "en")
    assert "&lt;b&gt;标题&lt;/b&gt;" in out and "<b>标题" not in out
    assert 'href="#rag-open=doc:a1"' in out and "2026-01-02" in out and ">3<" in out and "Passages" in out


def test_upload_names_and_auth_parsing(tmp_path: Path) -> None:
    assert allowed_suffix("../../etc/x.TXT") == ".txt" and allowed_suffix("a.jsonl.gz") == ".jsonl.gz"
    assert allowed_suffix("a.exe") is None and allowed_suffix("x.gz") is None
    assert esc("a\n<b>") == "a<br>&lt;b&gt;"
    assert parse_auth("u:p:w") == [("u", "p:w")]
    f = tmp_path / "users"
    f.write_text("# users\nann:one\nbob:two\n", encoding="utf-8")
    assert parse_auth(str(f)) == [("ann", "one"), ("bob", "two")]
    with pytest.raises(InputError):
        parse_auth("no-colon")


def test_filter_controls_become_retrieval_filters_and_explain_not_found() -> None:
    assert make_filters(ALL_SOURCES, None, "") is None and make_filters(None, None, None, []) is None
    f = make_filters("財新網", "2024/04/01", "2024-12-31", ["d1"])
    assert (f.source, f.date_from, f.date_to, f.doc_ids) == ("財新網", "2024-04-01", "2024-12-31", ["d1"])
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        make_filters(None, "last week", None, lang="en")
    with pytest.raises(InputError, match="起始日期晚于截止日期"):
        make_filters(None, "2024-05-01", "2024-04-01")
    docs = [{"doc_id": "a", "date": "2024-05-01"}, {"doc_id": "b", "date": None}, {"doc_id": "c", "date": None}]
    note = filter_note(make_filters(None, "2024-01-01", None, lang="en"), docs, "en")
    assert "1 of 3 articles were searched" in note and "left out 2 articles that have no date" in note
    assert filter_note(None, docs) == ""


# ---------------------------------------------------------------- end to end in Chromium


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """`rag serve` on a free loopback port over a fresh index (built from the bundled corpus on start)."""
    base = tmp_path_factory.mktemp("ui")
    index = base / "index"
    port = _free_port()
    log_path = base / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", RAG_MAX_UPLOAD_MB=str(MAX_UPLOAD_MB),
                                     RAG_ANSWER_MODE="extractive",  # the UI's mechanics; LLM mode has its own test
                                     # the default index (only that one is built on first use)
                                     RAG_INDEX_ROOT=str(base), RAG_INDEX_NAME="index"))
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + SERVER_START_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"rag serve exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"rag serve did not answer within {SERVER_START_S} s:\n{log_path.read_text()}")
                time.sleep(0.5)
        yield {"url": url, "index": index, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _context(p, outside: list[str], base_url: str, locale: str):
    ctx = p.chromium.launch_persistent_context(tempfile.mkdtemp(prefix="rag-chromium-"), executable_path=CHROMIUM,
                                               args=CHROMIUM_ARGS, headless=True, viewport=DESKTOP, locale=locale,
                                               accept_downloads=True)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url.rstrip("/"))
    ctx.on("request", lambda r: outside.append(r.url)
           if not r.url.startswith((base_url, "data:", "blob:", "about:")) else None)
    return ctx


@pytest.fixture(scope="module")
def browser(server):
    """Headless Debian Chromium (a Chinese browser) with a fresh profile; records every request that leaves the server
    (must be none)."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        ctx = _context(p, outside, server["url"], "zh-CN")
        yield {"ctx": ctx, "outside": outside, "p": p}
        ctx.close()


def _open(ctx, url: str):
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_selector("#rag-question textarea", timeout=30_000)
    return pg, errors


@pytest.fixture()
def page(server, browser):
    """A fresh chat session (new page) with the app loaded."""
    pg, errors = _open(browser["ctx"], server["url"])
    yield pg
    pg.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def ask(page, question: str | None, click: str = "#rag-ask"):
    """Type a question (unless None), send it, wait (bounded) for the finished answer; returns that answer's locator."""
    from playwright.sync_api import expect

    done = page.locator("#rag-chat .rag-answer:not(.rag-streaming)")
    n = done.count()
    if question is not None:
        page.fill("#rag-question textarea", question)
    page.click(click)
    expect(done).to_have_count(n + 1, timeout=ANSWER_MS)
    page.wait_for_timeout(300)  # the chat scrolls on the next animation frame
    return done.nth(n)


def shot(page, name: str, full_page: bool = True) -> Path:
    """A screenshot under artifacts/screenshots (docs/screenshots holds the reviewed copies shown in the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path


def visible_in_chat(page, locator) -> bool:
    """The element's first line is inside the window AND inside the chat's scrolled area (what a person sees)."""
    return locator.evaluate("""el => {
      const r = el.getBoundingClientRect(), w = document.querySelector('#rag-chat .bubble-wrap').getBoundingClientRect();
      const line = Math.min(r.bottom, r.top + 20);
      return r.top >= Math.max(0, w.top) - 1 && line <= Math.min(innerHeight, w.bottom) + 1 && r.height > 0;
    }""")


def test_serve_binds_loopback_and_reports_index(server) -> None:
    log = server["log"].read_text()
    assert "index ready: 5 documents" in log, log
    assert "127.0.0.1" in log


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_chat_follows_the_newest_answer(page, viewport) -> None:
    page.set_viewport_size(viewport)
    questions = ["西宁对接会签了多少个项目？", "那南阳站呢？", "南阳市副市长是谁？"]
    for q in questions:
        ans = ask(page, q)
        assert visible_in_chat(page, ans.locator(".rag-text")), f"the answer to {q} is out of view"
    assert "杨曙光" in ans.locator(".rag-text").inner_text() or "楊曙光" in ans.locator(".rag-text").inner_text()
    if viewport is PHONE:
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        box = ans.locator(".rag-card").first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
        shot(page, "chat_phone.png", full_page=False)
    else:
        shot(page, "chat_desktop.png", full_page=False)


def test_copy_gives_plain_text_and_labels_are_text(page) -> None:
    ans = ask(page, "西宁对接会签了多少个项目？")
    ans.locator(".rag-copy").click()
    page.wait_for_selector("#rag-chat .rag-copy:has-text('已复制')", timeout=5_000)
    clip = page.evaluate("() => navigator.clipboard.readText()")
    assert "<" not in clip and ">" not in clip
    lines = clip.splitlines()
    assert "59" in lines[0] and "[1]" in lines[0]
    title = ans.locator(".rag-sources .rag-title").first.inner_text()
    assert "引用:" in lines and any(line.startswith("[1] ") and title in line for line in lines)
    mark = ans.locator(".rag-sources mark").first.inner_text().strip()
    assert any(line.strip() == mark for line in lines)  # the supporting sentence
    labels = page.evaluate("() => [...document.querySelectorAll('#rag-chat [aria-label]')].map(e => e.getAttribute('aria-label'))")
    assert labels and not [x for x in labels if "<" in x or "&lt;" in x]
    assert any(x.startswith("助手: ") and "59" in x for x in labels)


def test_every_theme_has_readable_contrast(server, browser) -> None:
    for theme in ("light", "dark"):
        pg, errors = _open(browser["ctx"], server["url"] + f"?__theme={theme}")
        try:
            ask(pg, "西宁对接会签了多少个项目？")
            ask(pg, "西宁对接会的主办方一共花了多少宣传费？")  # not found: badge and related passages
            assert pg.evaluate("() => document.body.classList.contains('dark')") == (theme == "dark")
            ratios = dict(pg.evaluate(CONTRAST_JS, CONTRAST_SELECTORS))
            low = {s: r for s, r in ratios.items() if r is None or r < 4.5}
            assert not low, f"{theme}: contrast below 4.5:1 for {low}"
            if theme == "dark":
                pg.locator("#rag-chat .rag-sources mark").first.scroll_into_view_if_needed()
                shot(pg, "chat_dark.png", full_page=False)
        finally:
            pg.close()
        assert not errors


def test_rewrite_once_details_collapsed_traditional_not_follow_up(page) -> None:
    ask(page, "西宁对接会签了多少个项目？")
    follow = ask(page, "那南阳站呢？")
    assert follow.locator(".rag-rewrite").count() == 1 and "南阳" in follow.locator(".rag-rewrite").inner_text()
    assert "Follow-up rewritten" not in follow.inner_text()
    assert "8" in follow.locator(".rag-text").inner_text() and "置信度" in follow.locator(".rag-conf").inner_text()
    details = follow.locator("details.rag-details")
    assert details.get_attribute("open") is None and not details.locator("li").first.is_visible()
    details.locator("summary").click()
    assert details.locator("li").first.is_visible()
    page.click("#rag-clear")
    page.wait_for_selector("#rag-chat .rag-answer", state="detached", timeout=10_000)
    trad = ask(page, "創新港路演大會在哪一天召開？")
    assert trad.locator(".rag-rewrite").count() == 0


def test_not_found_shows_related_passages_plainly(page) -> None:
    ans = ask(page, "西宁对接会的主办方一共花了多少宣传费？")
    assert ans.locator(".rag-badge").inner_text() == "未找到"
    assert ans.locator(".rag-sources .rag-card").count() == 0
    assert ans.locator(".rag-related .rag-card").count() >= 1
    assert "不是答案的依据" in ans.locator(".rag-related .rag-cards-h").inner_text()
    assert ans.locator(".rag-related mark").count() == 0


def test_date_filter_says_undated_articles_are_left_out(page) -> None:
    note = page.locator("#rag-undated").inner_text()
    assert "3 / 5 篇文章没有日期" in note
    page.fill("#rag-from input", "2024-01-01")
    page.press("#rag-from input", "Enter")
    ans = ask(page, "西宁对接会签了多少个项目？")  # the Xining article has no date
    assert ans.locator(".rag-badge").inner_text() == "未找到"
    assert "只搜索了 2 / 5 篇文章" in ans.inner_text() and "3 篇没有日期的文章被日期筛选排除" in ans.inner_text()


def test_example_question_click_asks_it(page) -> None:
    from playwright.sync_api import expect

    page.locator("#rag-examples").get_by_text("西安高新区在管基金产品有多少支？").click()
    done = page.locator("#rag-chat .rag-answer:not(.rag-streaming)")
    expect(done).to_have_count(1, timeout=ANSWER_MS)
    assert "西安高新区在管基金产品有多少支？" in page.locator("#rag-chat .rag-q").inner_text()


def test_language_from_the_browser_with_a_switch(server, browser) -> None:
    ctx = _context(browser["p"], browser["outside"], server["url"], "en-US")
    try:
        pg, errors = _open(ctx, server["url"])
        pg.wait_for_function("document.documentElement.lang === 'en'", timeout=10_000)
        pg.wait_for_selector("#rag-ask:has-text('Ask')", timeout=10_000)
        assert pg.locator("#rag-filters").get_by_text("Filters & settings").count() == 1
        assert "没有日期" not in pg.locator("#rag-undated").inner_text()
        assert pg.locator("#rag-mode input:checked").count() == 1
        ans = ask(pg, "How many projects were signed in Xining?")
        assert "confidence" in ans.locator(".rag-conf").inner_text() and ans.locator(".rag-copy").inner_text() == "Copy"
        pg.locator("#rag-lang").get_by_text("中文").click()
        pg.wait_for_function("document.documentElement.lang === 'zh-CN'", timeout=10_000)
        pg.wait_for_selector("#rag-ask:has-text('提问')", timeout=10_000)
        pg.wait_for_selector("#rag-chat .rag-conf:has-text('置信度')", timeout=10_000)  # the chat re-rendered too
        assert "59" in pg.locator("#rag-chat .rag-text").first.inner_text()
        assert pg.locator("#rag-mode input:checked").get_attribute("value") == "extractive"  # settings survive
        assert "Filters" not in pg.locator("#rag-filters").inner_text()
        pg.close()
        assert not errors
    finally:
        ctx.close()


def test_feedback_appends_a_line_per_rated_answer(page, server) -> None:
    path = server["index"] / "feedback.jsonl"
    before = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    ask(page, "西宁对接会签了多少个项目？")
    ask(page, "南阳市副市长是谁？")
    page.locator("#rag-chat button[aria-label=赞]").first.click()  # Gradio's own label, in the browser's language  # rate the FIRST answer
    page.wait_for_selector("#rag-feedback:has-text('已记录反馈（👍）')", timeout=10_000)
    page.locator("#rag-chat button[aria-label=踩]").last.click()
    page.wait_for_selector("#rag-feedback:has-text('已记录反馈（👎）')", timeout=10_000)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(before) + 2
    up, down = json.loads(lines[-2]), json.loads(lines[-1])
    assert up["rating"] == "up" and up["question"] == "西宁对接会签了多少个项目？" and "59" in up["answer"]
    assert up["citations"] and up["citations"][0]["sentences"] and up["time"]
    assert down["rating"] == "down" and down["question"] == "南阳市副市长是谁？"


def test_export_conversation_as_markdown(page) -> None:
    ask(page, "西宁对接会签了多少个项目？")
    ask(page, "那南阳站呢？")
    with page.expect_download(timeout=10_000) as dl:
        page.click("#rag-export")
    md = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "## 问: 西宁对接会签了多少个项目？" in md and "## 问: 那南阳站呢？" in md
    assert "59" in md and "**引用:**" in md and "1. **" in md and "   > " in md and "<div" not in md


def test_library_lists_documents_and_reads_a_cited_article(page) -> None:
    ans = ask(page, "西宁对接会签了多少个项目？")
    cited = ans.locator(".rag-sources mark").first.inner_text().strip()
    ans.locator(".rag-sources a.rag-open").first.click()
    reader = page.locator("#rag-reader .rag-reader")
    reader.wait_for(timeout=10_000)
    marks = reader.locator("mark").all_inner_texts()
    assert marks and marks[0].strip() == cited  # the cited sentence, marked in the whole article
    assert len(reader.inner_text()) > 3 * len(ans.locator(".rag-sources .rag-passage").first.inner_text())
    page.wait_for_function("""() => { const el = document.querySelector('#rag-reader .rag-reader');
      const m = el.querySelector('mark').getBoundingClientRect(), r = el.getBoundingClientRect();
      return m.top >= r.top && m.top < r.bottom && r.top >= 0 && r.top < innerHeight; }""", timeout=5_000)  # in view
    page.locator("#rag-library-panel").get_by_text("文档库").first.click()
    rows = page.locator("#rag-index tbody tr")
    rows.first.wait_for(timeout=10_000)
    assert rows.count() == 5
    xining = rows.filter(has_text="西宁").inner_text()
    assert "—" in xining and "2026" in xining  # no date; added today-ish
    assert page.locator("#rag-index th").all_inner_texts() == ["标题", "日期", "来源", "段落", "加入时间"]
    page.locator("#rag-index a.rag-doc-title", has_text="西安高新區").click()  # a title opens the article
    page.wait_for_selector("#rag-reader h3:has-text('西安高新區')", timeout=10_000)
    assert page.locator("#rag-reader mark").count() == 0
    page.locator("#rag-reader-panel").locator("xpath=..").screenshot(path=str(SCREENSHOTS / "library_desktop.png"))


def test_upload_in_one_step_then_read_filter_and_delete(page, server, tmp_path: Path) -> None:
    article = tmp_path / "绿洲 大会.txt"
    article.write_text(INJECTED, encoding="utf-8")
    page.locator("#rag-upload-panel").get_by_text("上传文章").click()
    page.set_input_files("#rag-files input[type=file]", str(article))  # choosing the file is the only step
    report = page.locator("#rag-upload-panel #rag-report li")
    report.wait_for(timeout=ANSWER_MS)
    assert "已加入" in report.inner_text() and "绿洲 大会.txt" in report.inner_text()
    assert page.locator("#rag-upload-panel .rag-upload-error, [data-testid=toast-body]").count() == 0
    assert not page.locator("#rag-upload-msg").is_visible()
    page.locator("#rag-library-panel").get_by_text("文档库").first.click()
    page.wait_for_selector("#rag-index .rag-counts[data-docs='6']", timeout=10_000)
    row = page.locator("#rag-index tr", has_text="绿洲市首届技术转移大会召开")
    assert "2025-03-02" in row.inner_text() and "绿洲日报" in row.inner_text()
    stored = list((server["index"] / "uploads").iterdir())
    assert len(stored) == 1 and stored[0].suffix == ".txt" and "绿洲" not in stored[0].name  # generated name

    ans = ask(page, "绿洲市技术转移大会签约了多少个项目？")
    assert "17" in ans.locator(".rag-text").inner_text()
    card = ans.locator(".rag-sources .rag-card").filter(has=page.locator(".rag-title", has_text="绿洲"))
    assert card.count() >= 1
    text = card.first.inner_text()
    assert "<script>window.__pwned=1</script>" in text and 'onerror="window.__pwned=2"' in text
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("#rag-chat img[src=x], #rag-index img, #rag-report img, #rag-chat script").count() == 0
    shot(page, "upload_desktop.png")

    # open the article from its citation: the whole cleaned text, the cited sentence marked
    card.first.locator("a.rag-open").click()
    reader = page.locator("#rag-reader .rag-reader")
    reader.wait_for(timeout=10_000)
    assert "会议期间还展示了" in reader.inner_text() and "2025年3月1日" in reader.inner_text()
    assert any("17" in m for m in reader.locator("mark").all_inner_texts())
    assert page.locator("#rag-reader img, #rag-reader script").count() == 0

    # search only this document: a question about another article is then not found
    page.click("#rag-only-this")
    page.wait_for_selector("#rag-docs :text('绿洲市首届技术转移大会召开')", timeout=10_000)
    other = ask(page, "西宁对接会签了多少个项目？")
    assert other.locator(".rag-badge").inner_text() == "未找到" and "只搜索了 1 / 6 篇文章" in other.inner_text()

    # delete, with confirmation; the document no longer answers
    page.click("#rag-delete")
    page.wait_for_selector("#rag-confirm .rag-confirm-q", timeout=10_000)
    assert "绿洲市首届技术转移大会召开" in page.locator("#rag-confirm .rag-confirm-q").inner_text()
    page.click("#rag-confirm-yes")
    page.wait_for_selector("#rag-index .rag-counts[data-docs='5']", timeout=ANSWER_MS)
    assert "已删除" in page.locator("#rag-deleted").inner_text()
    assert page.locator("#rag-index tr", has_text="绿洲").count() == 0
    assert not list((server["index"] / "uploads").iterdir())  # its uploaded copy went with it
    gone = ask(page, "绿洲市技术转移大会签约了多少个项目？")
    assert "17" not in gone.locator(".rag-text").inner_text()
    assert gone.locator(".rag-card", has=page.locator(".rag-title", has_text="绿洲")).count() == 0


def test_refused_uploads_say_why_in_the_ui_language(page, server, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("标题: 大文件\n\n" + "技术转移。" * (MAX_UPLOAD_MB * 1024 * 1024 // 10), encoding="utf-8")
    assert big.stat().st_size > MAX_UPLOAD_MB * 1024 * 1024
    uploads = server["index"] / "uploads"
    before = sorted(uploads.iterdir()) if uploads.exists() else []
    page.locator("#rag-upload-panel").get_by_text("上传文章").click()
    page.set_input_files("#rag-files input[type=file]", str(big))
    msg = page.locator("#rag-upload-msg")
    msg.wait_for(state="visible", timeout=10_000)
    assert "big.txt：超过 1 MB，未上传。" in msg.inner_text()
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x00")
    page.set_input_files("#rag-files input[type=file]", str(exe))
    err = page.locator("#rag-report .rag-upload-error")
    err.wait_for(timeout=20_000)
    assert "tool.exe：不支持的格式" in err.inner_text()
    assert not msg.is_visible()  # the earlier refusal does not linger
    page.wait_for_timeout(500)
    assert page.get_by_text("Error", exact=True).count() == 0  # no red Error badge or toast
    assert page.locator("#rag-files").get_by_text("tool.exe").count() == 0  # the file box is ready for the next one
    assert (sorted(uploads.iterdir()) if uploads.exists() else []) == before
    log = server["log"].read_text()
    assert "Traceback" not in log, log[-3000:]


def test_phone_label_does_not_cover_the_placeholder(page) -> None:
    page.set_viewport_size(PHONE)
    placeholder = page.locator("#rag-chat").get_by_text("问一个关于文章的问题")
    box = placeholder.bounding_box()
    assert box and box["width"] > 0
    covering = page.evaluate("""([x, y]) => document.elementFromPoint(x, y).closest('#rag-chat label, .block-label')""",
                             [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert covering is None
    assert page.locator("#rag-chat label, #rag-chat [data-testid=block-label]").count() == 0


def test_chinese_browser_gets_one_language_and_no_dead_slider(page) -> None:
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    labels = page.locator("label, button, .label-wrap").all_inner_texts()
    assert labels and not [x for x in labels if " / " in x]  # no doubled zh / en labels
    assert page.locator("input[type=range], #rag-topk").count() == 0  # the passages slider had no effect: removed


def test_nothing_left_the_machine(browser) -> None:
    assert browser["outside"] == []  # offline: no fonts, analytics or CDN requests


# ---------------------------------------------------------------- LLM mode: stages, stop, regenerate


class StreamingLLMAssistant:
    """The real Assistant, except that LLM mode streams like the answer engine: the extractive answer first (marked
    preliminary by coming before the final Answer), a silent pause (the model loading), tokens, then the final Answer.
    With `preliminary=False` it streams as `Assistant.ask_stream` does today (tokens, then the Answer)."""

    def __init__(self, real, silent_s: float = 2.6, token_s: float = 0.12) -> None:
        self.real, self.silent_s, self.token_s = real, silent_s, token_s
        self.preliminary = True
        self.calls = 0
        self.closed = 0

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def ask_stream(self, question, history=None, filters=None, mode=None, top_k=None):
        if mode != "llm":
            yield from self.real.ask_stream(question, history, filters, mode, top_k)
            return
        self.calls += 1
        ext = self.real.ask(question, history, filters, mode="extractive")
        try:
            if self.preliminary:
                yield ext
            time.sleep(self.silent_s)
            text = f"大模型答：{ext.text}"
            for i in range(0, len(text), 2):
                time.sleep(self.token_s)
                yield text[i:i + 2]
            yield dataclasses.replace(ext, text=text, mode="llm")
        except GeneratorExit:
            self.closed += 1
            raise


@pytest.fixture(scope="module")
def llm_app(assistant, browser):
    """The app over a StreamingLLMAssistant (wrapping the session's read-only Assistant), in this process."""
    from ui.app import build_app, start

    bot = StreamingLLMAssistant(assistant)
    settings = dataclasses.replace(assistant.settings, answer_mode="llm")
    app = build_app(bot, settings, llm_modes=True)
    url = start(app, settings, host="127.0.0.1", port=_free_port(), block=False)
    try:
        yield bot, url
    finally:
        app.close()


@pytest.fixture()
def llm_page(llm_app, browser):
    bot, url = llm_app
    pg, errors = _open(browser["ctx"], url)
    pg.evaluate("""() => { window.__changes = []; new MutationObserver(() => window.__changes.push(performance.now()))
        .observe(document.querySelector('#rag-chat'), {subtree: true, childList: true, characterData: true}); }""")
    yield bot, pg
    pg.close()
    assert not errors


def _gaps(pg, since: float) -> float:
    """The longest stretch (s) without any change in the chat, from `since` (performance.now ms) to now."""
    times = [since] + [t for t in pg.evaluate("() => window.__changes") if t >= since] + [pg.evaluate("performance.now()")]
    return max(b - a for a, b in zip(times, times[1:])) / 1000


@pytest.mark.parametrize("preliminary", [True, False], ids=["preliminary-then-llm", "llm-tokens-only"])
def test_llm_mode_shows_stages_and_never_goes_quiet(llm_page, preliminary) -> None:
    bot, pg = llm_page
    bot.preliminary = preliminary
    seen: list[str] = []
    t0 = pg.evaluate("performance.now()")
    pg.fill("#rag-question textarea", "西宁对接会签了多少个项目？")
    pg.click("#rag-ask")
    pg.wait_for_selector("#rag-stop", state="visible", timeout=10_000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = pg.evaluate("""() => { const m = document.querySelector('#rag-chat .rag-streaming');
          if (!m) return null; const a = m.querySelector('.rag-stages li.rag-active'), p = m.querySelector('.rag-prelim .rag-text');
          return {stage: a ? a.innerText : '', prelim: p ? p.innerText : null}; }""")
        if now is None and pg.locator("#rag-chat .rag-answer:not(.rag-streaming)").count():
            break
        if now and now["stage"] and (not seen or seen[-1] != now["stage"]):
            seen.append(now["stage"])
        if now and now["prelim"] is not None and "prelim" not in seen:
            seen.append("prelim")
            assert "59" in now["prelim"]
            shot(pg, "llm_stages.png", full_page=False)
        pg.wait_for_timeout(100)
    final = pg.locator("#rag-chat .rag-answer:not(.rag-streaming)").last
    assert final.locator(".rag-text").inner_text().startswith("大模型答")
    assert [s for s in seen if s != "prelim"][-1].endswith("大模型正在生成")
    assert seen[0].endswith("正在检索") or "prelim" in seen or seen[0].endswith("大模型正在生成")
    assert ("prelim" in seen) == preliminary
    # the stand-in model is silent for 2.6 s before its first token: a screen without a ticking stage shows a gap of
    # 2.6 s or more; 1.5 s leaves room for a loaded CI box (1.22 s seen while another process ran), not for silence
    assert _gaps(pg, t0) < 1.5, "more than 1.5 s without any change on screen (the model's silence was not covered)"
    assert pg.locator("#rag-stop").is_hidden() and pg.locator("#rag-ask").is_visible()


def test_llm_stop_keeps_the_preliminary_answer_and_regenerate_asks_again(llm_page) -> None:
    from playwright.sync_api import expect

    bot, pg = llm_page
    bot.preliminary = True
    closed, calls = bot.closed, bot.calls
    pg.fill("#rag-question textarea", "西宁对接会签了多少个项目？")
    pg.click("#rag-ask")
    pg.wait_for_selector("#rag-chat .rag-prelim", timeout=20_000)
    pg.click("#rag-stop")
    done = pg.locator("#rag-chat .rag-answer:not(.rag-streaming)")
    expect(done).to_have_count(1, timeout=3_000)
    assert "59" in done.first.locator(".rag-text").inner_text() and "大模型答" not in done.first.inner_text()
    assert "已停止" in done.first.inner_text()
    deadline = time.monotonic() + 10
    while bot.closed == closed and time.monotonic() < deadline:
        time.sleep(0.1)
    assert bot.closed == closed + 1  # the generation itself was stopped, not just hidden
    pg.click("#rag-regen")
    pg.wait_for_selector("#rag-chat .rag-answer:not(.rag-streaming) .rag-text:has-text('大模型答')", timeout=ANSWER_MS)
    assert pg.locator("#rag-chat .rag-q").count() == 1 and done.count() == 1  # the same question, answered again
    assert bot.calls == calls + 2
