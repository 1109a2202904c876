"""The browser chat (ui/app.py): rendering helpers, and end to end in headless Debian Chromium against `rag serve`
(the real Assistant over a fresh index built from the bundled corpus)."""
from __future__ import annotations

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
from ui.app import ALL_SOURCES, allowed_suffix, esc, highlight, make_filters, parse_auth, render_answer

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWER_MS = 60_000  # bounded wait per answer
MAX_UPLOAD_MB = 1
SERVER_START_S = 300  # first start builds the index (model load + embedding the five articles)

INJECTED = """标题: 绿洲市首届技术转移大会召开<img src=x onerror="window.__pwned=3">
发布日期: 2025-03-02
来源: 绿洲日报

2025年3月1日，绿洲市首届技术转移大会在绿洲会展中心举行。大会现场共签约17个技术转移项目，签约金额3200万元。<script>window.__pwned=1</script>
会议期间还展示了<img src=x onerror="window.__pwned=2">等新材料成果。
"""


# ---------------------------------------------------------------- rendering helpers (no browser)


def _citation(passage: str, spans: list[tuple[int, int]], title: str = "t") -> Citation:
    return Citation(number=1, doc_id="d", chunk_id="d:0", title=title, date="2024-07-29", source="s", passage=passage,
                    spans=spans)


def test_highlight_marks_spans_and_escapes_everything() -> None:
    passage = "甲<b>乙</b>。共签署59个项目。<script>x()</script>"
    s = passage.index("共")
    out = highlight(passage, [(s, passage.index("。", s) + 1), (s + 2, s + 4)])  # overlapping spans merge
    assert out.count("<mark>") == 1 and "<mark>共签署59个项目。</mark>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out and "<b>" not in out
    assert highlight("abc", [(2, 99), (5, 9)]) == "ab<mark>c</mark>"  # clipped to the passage


def test_render_answer_links_markers_escapes_and_labels_related() -> None:
    evil = '<img src=x onerror="alert(1)">'
    c = _citation("共签署59个项目。" + evil, [(0, 9)], title=evil)
    a = Answer(text="共签署59个项目 [1] [7]", question="那南阳站呢？", standalone_question="南阳站签了多少个项目？",
               found=True, citations=[c])
    out = render_answer(a, "t1")
    assert '<a class="rag-cite" href="#c-t1-1">[1]</a>' in out and 'id="c-t1-1"' in out
    assert "#c-t1-7" not in out  # a marker without a citation stays plain text
    assert "<img" not in out and "&lt;img" in out
    assert "理解为 / Interpreted as: 南阳站签了多少个项目？" in out
    assert "\n\n" not in out  # one HTML block: Markdown never touches article text
    nf = Answer(text="文章未提及。", question="q", standalone_question="q", found=False, related=[c])
    out = render_answer(nf, "t2")
    assert "未找到 / Not found" in out and "相关段落 / Related (not support)" in out and 'id="r-t2-1"' in out
    assert "引用 / Sources" not in out


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


def test_filter_controls_become_retrieval_filters() -> None:
    assert make_filters(ALL_SOURCES, None, "") is None
    f = make_filters("財新網", "2024/04/01", "2024-12-31")
    assert (f.source, f.date_from, f.date_to) == ("財新網", "2024-04-01", "2024-12-31")
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        make_filters(None, "last week", None)
    with pytest.raises(InputError, match="after"):
        make_filters(None, "2024-05-01", "2024-04-01")


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


@pytest.fixture(scope="module")
def browser(server):
    """Headless Debian Chromium with a fresh profile; records every request that leaves the server (must be none)."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                                                   viewport={"width": 1280, "height": 900})
        ctx.on("request", lambda r: outside.append(r.url)
               if not r.url.startswith((server["url"], "data:", "blob:", "about:")) else None)
        yield {"ctx": ctx, "outside": outside}
        ctx.close()


@pytest.fixture()
def page(server, browser):
    """A fresh chat session (new page) with the app loaded."""
    pg = browser["ctx"].new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server["url"])
    pg.wait_for_selector("#rag-question textarea", timeout=30_000)
    yield pg
    pg.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def ask(page, question: str):
    """Type a question, send it, wait (bounded) for the finished answer; returns that answer's locator."""
    from playwright.sync_api import expect

    done = page.locator("#rag-chat .rag-answer:not(.rag-streaming)")
    n = done.count()
    page.fill("#rag-question textarea", question)
    page.click("#rag-ask")
    expect(done).to_have_count(n + 1, timeout=ANSWER_MS)
    return done.nth(n)


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_serve_binds_loopback_and_reports_index(server) -> None:
    log = server["log"].read_text()
    assert "index ready: 5 documents" in log, log
    assert "127.0.0.1" in log


def test_answer_cites_xining_with_highlight_then_follow_up(page) -> None:
    ans = ask(page, "西宁对接会签了多少个项目？")
    assert "59" in ans.locator(".rag-text").inner_text()
    cards = ans.locator(".rag-cards:not(.rag-related) .rag-card")
    assert cards.count() >= 1
    xining = cards.filter(has=page.locator(".rag-title", has_text="西宁"))
    assert xining.count() >= 1, ans.inner_text()
    assert any("59" in m for m in xining.locator("mark").all_inner_texts()), "supporting sentence with 59 not highlighted"
    # the inline marker links to its card, in the page
    marker = ans.locator("a.rag-cite").first
    href = marker.get_attribute("href")
    assert href and href.startswith("#c-") and ans.locator(href).count() == 1
    marker.click()
    assert page.url.endswith(href)
    shot(page, "chat_desktop.png")

    follow = ask(page, "那南阳站呢？")
    rewrite = follow.locator(".rag-rewrite").inner_text()
    assert rewrite.startswith("理解为 / Interpreted as:") and "南阳" in rewrite
    shot(page, "followup_desktop.png")
    assert "8" in follow.locator(".rag-text").inner_text()


def test_not_found_answer_shows_related_passages_only(page) -> None:
    ans = ask(page, "西宁对接会的主办方一共花了多少宣传费？")
    assert ans.locator(".rag-badge").inner_text() == "未找到 / Not found"
    assert ans.locator(".rag-cards:not(.rag-related) .rag-card").count() == 0
    if ans.locator(".rag-related .rag-card").count():
        assert "相关段落 / Related (not support)" in ans.inner_text()


def test_feedback_appends_a_line_per_rated_answer(page, server) -> None:
    path = server["index"] / "feedback.jsonl"
    before = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    ask(page, "西宁对接会签了多少个项目？")
    ask(page, "南阳市副市长是谁？")
    page.locator("#rag-chat button[aria-label=Like]").first.click()  # rate the FIRST answer
    page.wait_for_selector("#rag-feedback:has-text('Feedback saved (👍)')", timeout=10_000)
    page.locator("#rag-chat button[aria-label=Dislike]").last.click()
    page.wait_for_selector("#rag-feedback:has-text('Feedback saved (👎)')", timeout=10_000)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(before) + 2
    up, down = json.loads(lines[-2]), json.loads(lines[-1])
    assert up["rating"] == "up" and up["question"] == "西宁对接会签了多少个项目？" and "59" in up["answer"]
    assert up["citations"] and up["citations"][0]["sentences"] and up["time"]
    assert down["rating"] == "down" and down["question"] == "南阳市副市长是谁？"


def test_upload_with_injected_markup_is_added_and_shown_as_text(page, server, tmp_path: Path) -> None:
    article = tmp_path / "绿洲 大会.txt"
    article.write_text(INJECTED, encoding="utf-8")
    page.get_by_text("上传文章 / Upload articles").click()
    page.set_input_files("#rag-files input[type=file]", str(article))
    page.locator("#rag-files").get_by_text("绿洲").first.wait_for(timeout=20_000)  # the upload reached the server
    page.click("#rag-upload")
    report = page.locator("#rag-report li")
    report.wait_for(timeout=ANSWER_MS)
    assert "added" in report.inner_text() and "绿洲 大会.txt" in report.inner_text()
    page.get_by_text("索引 / Index").click()
    assert page.locator("#rag-index .rag-ndocs").inner_text() == "6"
    assert "绿洲市首届技术转移大会召开" in page.locator("#rag-index").inner_text()
    stored = list((server["index"] / "uploads").iterdir())
    assert len(stored) == 1 and stored[0].suffix == ".txt" and "绿洲" not in stored[0].name  # generated name

    ans = ask(page, "绿洲市技术转移大会签约了多少个项目？")
    assert "17" in ans.locator(".rag-text").inner_text()
    card = ans.locator(".rag-card").filter(has=page.locator(".rag-title", has_text="绿洲"))
    assert card.count() >= 1
    text = card.first.inner_text()
    assert "<script>window.__pwned=1</script>" in text and 'onerror="window.__pwned=2"' in text
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator("#rag-chat img[src=x], #rag-index img, #rag-report img, #rag-chat script").count() == 0
    shot(page, "upload_desktop.png")


def test_oversized_upload_is_refused(page, server, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("标题: 大文件\n\n" + "技术转移。" * (MAX_UPLOAD_MB * 1024 * 1024 // 10), encoding="utf-8")
    assert big.stat().st_size > MAX_UPLOAD_MB * 1024 * 1024
    uploads = server["index"] / "uploads"
    before = sorted(uploads.iterdir()) if uploads.exists() else []
    page.get_by_text("上传文章 / Upload articles").click()
    page.set_input_files("#rag-files input[type=file]", str(big))
    page.get_by_text("exceed the maximum allowed size").first.wait_for(timeout=20_000)  # Gradio refuses it
    page.click("#rag-upload")
    page.get_by_text("请先选择文件 / Choose files first").first.wait_for(timeout=10_000)  # nothing reached the server
    assert (sorted(uploads.iterdir()) if uploads.exists() else []) == before


def test_phone_width_is_readable(page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    ans = ask(page, "西宁对接会签了多少个项目？")
    assert "59" in ans.inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    box = ans.locator(".rag-card").first.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(page, "chat_phone.png")


def test_nothing_left_the_machine(browser) -> None:
    assert browser["outside"] == []  # offline: no fonts, analytics or CDN requests
