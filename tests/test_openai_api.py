"""The OpenAI-compatible API (`/v1`) served by rag.server beside the chat, exercised with the real `openai` client on
loopback over the bundled corpus; plus the pure request helpers of rag.openai_api."""
from __future__ import annotations

import logging
import socket

import httpx
import openai
import pytest

from rag.openai_api import Message, conversation, credentials

QUESTION = "西宁对接会签了多少个项目？"
FOLLOW_UP = "签约总资金呢？"
USER, PASSWORD = "ann", "s3cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(assistant):
    """The combined app (chat + API) behind one user, on a free loopback port, over the shared session Assistant."""
    from rag.server import serve

    handle = serve(assistant, assistant.settings, host="127.0.0.1", port=_free_port(), auth=[(USER, PASSWORD)],
                   block=False)
    try:
        yield handle.url
    finally:
        handle.close()


@pytest.fixture()
def client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served + "v1", api_key=f"{USER}:{PASSWORD}", max_retries=0)


def test_answer_with_citations_equals_python_api(client, assistant) -> None:
    r = client.chat.completions.create(model="extractive", messages=[{"role": "user", "content": QUESTION}])
    want = assistant.ask(QUESTION)
    text = r.choices[0].message.content
    assert text == want.text and "59" in text
    assert r.choices[0].message.role == "assistant" and r.choices[0].finish_reason == "stop"
    assert r.model == "extractive" and r.object == "chat.completion"
    assert r.citations == [c.to_dict() for c in want.citations]
    assert any("西宁" in c["title"] and any("59" in s for s in c["sentences"]) for c in r.citations)
    assert r.rag["found"] is True and r.rag["mode"] == "extractive"


def test_streaming_sends_openai_chunks_then_citations(client) -> None:
    whole = client.chat.completions.create(model="extractive", messages=[{"role": "user", "content": QUESTION}])
    chunks = list(client.chat.completions.create(model="extractive", stream=True,
                                                 messages=[{"role": "user", "content": QUESTION}]))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) >= 2 and "".join(pieces) == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks].count("stop") == 1 and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].citations == whole.citations and chunks[-1].rag["found"] is True


def test_follow_up_uses_the_messages_history(client, assistant) -> None:
    first = client.chat.completions.create(model="extractive", messages=[{"role": "user", "content": QUESTION}])
    messages = [{"role": "system", "content": "You are helpful."},
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": FOLLOW_UP}]
    r = client.chat.completions.create(model="extractive", messages=messages)
    text = r.choices[0].message.content
    assert "11280万元" in text
    assert "西宁" in r.rag["standalone_question"] and r.rag["standalone_question"] != FOLLOW_UP
    assert text == assistant.ask(FOLLOW_UP, history=[(QUESTION, first.choices[0].message.content)]).text
    streamed = client.chat.completions.create(model="extractive", messages=messages, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text


def test_auth_is_required_and_a_wrong_password_rejected(served) -> None:
    url = served + "v1/models"
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert r.headers["www-authenticate"].startswith("Basic")
    wrong = openai.OpenAI(base_url=served + "v1", api_key=f"{USER}:wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        wrong.chat.completions.create(model="extractive", messages=[{"role": "user", "content": QUESTION}])
    assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
    assert httpx.get(url, auth=(USER, "wrong")).status_code == 401
    assert httpx.get(url, auth=(USER, PASSWORD)).status_code == 200  # HTTP Basic works too
    assert httpx.get(url, headers={"Authorization": f"Bearer {USER}:{PASSWORD}"}).status_code == 200


@pytest.fixture()
def server_log():
    """Every log record of the server while a test runs (uvicorn's loggers do not propagate to the root)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield records
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def test_bad_requests_get_openai_style_errors_without_tracebacks(client, served, server_log) -> None:
    with pytest.raises(openai.BadRequestError) as err:  # no user message
        client.chat.completions.create(model="extractive", messages=[{"role": "system", "content": "be brief"}])
    assert err.value.status_code == 400 and err.value.body["param"] == "messages"
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:  # an unknown filter, asked for as a stream: still a plain 400
        client.chat.completions.create(model="extractive", stream=True, messages=[{"role": "user", "content": QUESTION}],
                                       extra_body={"filters": {"colour": "red"}})
    assert "filter" in err.value.body["message"]
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert err.value.body["code"] == "model_not_found" and err.value.body["param"] == "model"
    auth = (USER, PASSWORD)
    r = httpx.post(served + "v1/chat/completions", content=b"{not json", auth=auth)
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = httpx.post(served + "v1/chat/completions", json={"model": "extractive", "messages": []}, auth=auth)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.post(served + "v1/embeddings", json={"input": "x"}, auth=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert httpx.get(served + "v1/models", auth=auth).status_code == 200  # after the server logged the requests above
    assert not any(rec.exc_info or rec.levelno >= logging.ERROR for rec in server_log), [r.getMessage() for r in server_log]


def test_models_lists_the_answer_modes(client, assistant) -> None:
    from rag.server import answer_modes

    ids = [m.id for m in client.models.list()]
    assert ids == answer_modes(assistant.settings) and ids[0] == "extractive"
    assert client.models.retrieve("extractive").owned_by == "rag-techtransfer"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_page_shares_the_port_and_the_users(served) -> None:
    from gradio_client import Client

    assert httpx.get(served).status_code == 200  # the page (Gradio's login, since users are set)
    with pytest.raises(Exception):
        Client(served, auth=(USER, "wrong"), verbose=False)
    got = Client(served, auth=(USER, PASSWORD), verbose=False).predict(QUESTION, "[]", api_name="/ask")
    assert "59" in got["text"]


def test_conversation_pairs_turns_and_takes_the_last_user_message() -> None:
    msgs = [Message(role="system", content="x"), Message(role="user", content="q1"), Message(role="user", content="q2"),
            Message(role="assistant", content=[{"type": "text", "text": "a2"}]), Message(role="user", content="q3")]
    assert conversation(msgs) == ("q3", [("q1", ""), ("q2", "a2")])
    for bad in ([Message(role="system", content="x")], [Message(role="user", content="q"), Message(role="assistant", content="a")],
                [Message(role="user", content="  ")]):
        with pytest.raises(Exception, match="user message"):
            conversation(bad)


def test_credentials_read_bearer_and_basic() -> None:
    import base64

    assert credentials("Bearer ann:s3:cret") == ("ann", "s3:cret")
    assert credentials("Basic " + base64.b64encode(b"ann:s3cret").decode()) == ("ann", "s3cret")
    assert credentials("Bearer sk-123") is None and credentials("Basic !!") is None and credentials(None) is None
    assert credentials("bearer ann:x") == ("ann", "x")


class ScriptedAssistant:
    """Plays a fixed ask_stream (with an optional delay before it starts) to test the streaming rules in-process."""

    def __init__(self, pieces: list, delay: float = 0.0, error: Exception | None = None) -> None:
        self.pieces, self.delay, self.error, self.calls = pieces, delay, error, []

    def ask_stream(self, question, history=None, filters=None, mode=None):
        import time

        self.calls.append((question, history, mode))
        time.sleep(self.delay)
        if self.error:
            raise self.error
        yield from self.pieces


def _in_process(assistant) -> openai.OpenAI:
    from fastapi.testclient import TestClient

    from rag.openai_api import create_app
    from rag.settings import Settings

    app = create_app(assistant, Settings(), modes=["extractive", "llm"])
    return openai.OpenAI(base_url="http://testserver", api_key="x", http_client=TestClient(app), max_retries=0)


def test_an_unverified_llm_draft_is_never_sent_only_the_verified_answer() -> None:
    from rag.records import Answer

    final = Answer(text="共签署59个项目合作协议 [1]", question="q", standalone_question="q", found=True,
                   mode="llm->extractive")
    fake = ScriptedAssistant(["签了60个", "项目 [3]", final])
    client = _in_process(fake)
    msgs = [{"role": "user", "content": "q"}]
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(model="llm", messages=msgs,
                                                                                             stream=True))
    assert text == final.text
    r = client.chat.completions.create(model="llm", messages=msgs)
    assert r.choices[0].message.content == final.text and r.rag["mode"] == "llm->extractive"
    assert [m for *_, m in fake.calls] == ["llm", "llm"]


def test_a_slow_stream_starts_at_once_and_reports_a_late_error(monkeypatch) -> None:
    import rag.openai_api as api
    from rag.errors import InputError

    monkeypatch.setattr(api, "FIRST_PIECE_WAIT_S", 0.1)
    monkeypatch.setattr(api, "KEEPALIVE_S", 0.1)
    client = _in_process(ScriptedAssistant([], delay=0.5, error=InputError("the index is being rebuilt")))
    stream = client.chat.completions.create(model="extractive", stream=True, messages=[{"role": "user", "content": "q"}])
    assert next(iter(stream)).choices[0].delta.role == "assistant"
    with pytest.raises(openai.APIError, match="being rebuilt"):
        list(stream)
