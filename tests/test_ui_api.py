"""The chat's API endpoint `/ask` through `gradio_client`: the same answers and citations as the Python API."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from rag.settings import Settings

QUESTION = "西宁对接会签了多少个项目？"
COMPARED = ("text", "question", "standalone_question", "found", "mode", "language", "kind", "citations", "related")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """One Assistant over a fresh default-corpus index, served in this process on a free loopback port."""
    from gradio_client import Client

    from rag.assistant import Assistant
    from ui.app import build_app, start

    settings = Settings.from_env(index_root=tmp_path_factory.mktemp("ui_api"), index_name="index",
                                 answer_mode="extractive")
    assistant = Assistant.default(settings)
    app = build_app(assistant, settings)
    url = start(app, settings, host="127.0.0.1", port=_free_port(), block=False)
    try:
        yield assistant, Client(url, verbose=False), app, settings
    finally:
        app.close()


def _same(got: dict, want: dict) -> None:
    for key in COMPARED:
        assert got[key] == want[key], key
    assert got["confidence"] == pytest.approx(want["confidence"])


def test_client_answer_equals_python_api(served) -> None:
    assistant, client, *_ = served
    got = client.predict(QUESTION, "[]", api_name="/ask")
    want = assistant.ask(QUESTION).to_dict()
    _same(got, want)
    assert got["found"] and "59" in got["text"]
    assert any("西宁" in c["title"] and any("59" in s for s in c["sentences"]) for c in got["citations"])


def test_client_follow_up_with_history(served) -> None:
    assistant, client, *_ = served
    first = client.predict(QUESTION, "[]", api_name="/ask")
    history = [[QUESTION, first["text"]]]
    got = client.predict("那南阳站呢？", json.dumps(history, ensure_ascii=False), api_name="/ask")
    want = assistant.ask("那南阳站呢？", history=[(QUESTION, first["text"])]).to_dict()
    _same(got, want)
    assert "8" in got["text"] and got["standalone_question"] != "那南阳站呢？"


def test_client_gets_clear_errors(served) -> None:
    from gradio_client.exceptions import AppError

    _, client, *_ = served
    with pytest.raises(AppError, match="history_json"):
        client.predict(QUESTION, "{not json", api_name="/ask")
    with pytest.raises(AppError) as err:
        client.predict("   ", "[]", api_name="/ask")
    assert str(err.value).strip()  # the library's message reaches the client


def test_user_errors_log_one_line_not_a_traceback(served, capfd, caplog) -> None:
    import logging

    from gradio_client.exceptions import AppError

    _, client, *_ = served
    capfd.readouterr()
    with caplog.at_level(logging.WARNING, logger="rag.ui"):
        for bad in ("   ", "😀😀"):
            with pytest.raises(AppError):
                client.predict(bad, "[]", api_name="/ask")
        with pytest.raises(AppError):
            client.predict(QUESTION, "{not json", api_name="/ask")
    out, err = capfd.readouterr()
    assert "Traceback" not in err + out
    lines = [r.getMessage() for r in caplog.records if r.name == "rag.ui"]
    assert len(lines) == 3 and all(m.startswith("/ask: ") and "\n" not in m for m in lines)


def test_api_lists_only_the_ask_endpoint(served) -> None:
    _, client, *_ = served
    info = client.view_api(print_info=False, return_format="dict")
    assert list(info["named_endpoints"]) == ["/ask"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["question", "history_json"]


def test_auth_guards_the_app_and_the_api(served) -> None:
    """--auth: the same shared Assistant served behind a login; the client needs the password."""
    from gradio_client import Client

    from ui.app import build_app, start

    assistant, *_, settings = served
    app = build_app(assistant, settings)
    url = start(app, settings, host="127.0.0.1", port=_free_port(), auth=[("ann", "s3cret")], block=False)
    try:
        with pytest.raises(Exception):
            Client(url, verbose=False)
        with pytest.raises(Exception):
            Client(url, auth=("ann", "wrong"), verbose=False)
        got = Client(url, auth=("ann", "s3cret"), verbose=False).predict(QUESTION, "[]", api_name="/ask")
        assert "59" in got["text"]
    finally:
        app.close()


def test_running_server_sees_a_cli_remove_and_ingest(tmp_path) -> None:
    """`rag remove` / `rag ingest` from another process while `rag serve` runs: the next answer uses the new index."""
    import subprocess
    import sys

    from gradio_client import Client

    from rag.assistant import Assistant
    from rag.ingest import default_corpus
    from ui.app import build_app, start

    root = Path(__file__).resolve().parent.parent
    settings = Settings.from_env(index_root=tmp_path, index_name="live", answer_mode="extractive")
    assistant = Assistant.default(settings, progress=False)
    xining = [d for d, m in assistant.index.documents.items() if "西宁" in (m.get("title") or "")]
    assert len(xining) == 1
    app = build_app(assistant, settings)
    url = start(app, settings, host="127.0.0.1", port=_free_port(), block=False)
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    cli = [sys.executable, "-m", "rag.cli"]
    try:
        client = Client(url, verbose=False)
        assert "59" in client.predict(QUESTION, "[]", api_name="/ask")["text"]
        done = subprocess.run(cli + ["remove", xining[0], "--index", str(settings.index_dir)], env=env, cwd=root,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        gone = client.predict(QUESTION, "[]", api_name="/ask")
        assert not gone["found"] and "59" not in gone["text"]
        source = next(p for p in default_corpus() if p.name.startswith("002_"))
        done = subprocess.run(cli + ["ingest", str(source), "--index", str(settings.index_dir)], env=env, cwd=root,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        back = client.predict(QUESTION, "[]", api_name="/ask")
        assert back["found"] and "59" in back["text"]
    finally:
        app.close()
