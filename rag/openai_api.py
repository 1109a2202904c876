"""An OpenAI-compatible chat API over one shared Assistant: `POST /v1/chat/completions`, `GET /v1/models`.

Existing chat clients and scripts work unchanged (`base_url=http://host:7860/v1`):
- `model` picks the answer mode (`extractive`, `llm` when available; `GET /v1/models` lists them; omitted: the server's
  default mode);
- the last message is the question, earlier user/assistant messages are the conversation used for follow-ups, system
  and developer messages are ignored (the answer comes from the articles only);
- the answer text is `choices[0].message.content`; extra top-level fields carry `citations` (each as in
  `Answer.to_dict()["citations"]`) and `rag` (found, mode, confidence, standalone_question, language, kind, notes);
- `"stream": true` sends OpenAI chunks as server-sent events, citations and `rag` on the last chunk, then `data: [DONE]`;
- optional extension `"filters": {"source", "date_from", "date_to", "doc_ids"}` narrows the search;
- auth (when the server has users): `Authorization: Bearer user:password` (the client's api_key is `user:password`) or
  HTTP Basic; errors are OpenAI-style JSON `{"error": {"message", "type", "param", "code"}}` (400, 401, 404).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import itertools
import json
import threading
import time
import uuid
from typing import Any, AsyncIterator, Iterator, Literal, Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import RagError
from rag.records import Answer
from rag.settings import Settings

OWNER = "rag-techtransfer"
KEEPALIVE = ": working\n\n"  # an SSE comment (clients ignore it) sent while the answer is not ready yet
KEEPALIVE_S = 5.0  # at most this long without a byte on a stream
FIRST_PIECE_WAIT_S = 2.0  # a stream waits this long for retrieval so that a bad question is still a plain 400


class ApiError(Exception):
    """An error answered as OpenAI-style JSON (never a traceback)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# ---------------------------------------------------------------- request


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "text"
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The fields this server reads; other OpenAI fields (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    n: int = 1
    filters: dict[str, Any] | None = None


def conversation(messages: Sequence[Message]) -> tuple[str, list[tuple[str, str]]]:
    """(question, history pairs) from chat messages: the last message is the user's question; earlier user messages are
    paired with the assistant reply that follows them. ApiError 400 when there is no question."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise ApiError(400, "`messages` must end with a user message holding the question.", param="messages")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in turns[:-1]:
        if m.role == "user":
            if pending is not None:
                history.append((pending, ""))
            pending = m.text()
        elif pending is not None:
            history.append((pending, m.text()))
            pending = None
    if pending is not None:
        history.append((pending, ""))
    return turns[-1].text(), history


def parse_request(raw: bytes) -> ChatRequest:
    """The request body as a ChatRequest (any content type holding JSON); ApiError 400 naming the bad field."""
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object with `model` and `messages`.")
    try:
        req = ChatRequest.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        param = ".".join(str(x) for x in err.get("loc", ()))
        raise ApiError(400, f"Invalid request: {param or 'body'}: {err.get('msg')}", param=param or None) from None
    if req.n != 1:
        raise ApiError(400, "Only n=1 is supported.", param="n")
    return req


# ---------------------------------------------------------------- auth


def credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from `Authorization: Bearer user:password` or `Basic base64(user:password)`, else None."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    user, sep, password = value.partition(":")
    return (user, password) if sep and user else None


def authorized(header: str | None, users: Sequence[tuple[str, str]] | None) -> bool:
    """True when no users are configured, or the header names one of them with its password (constant-time compare)."""
    if not users:
        return True
    given = credentials(header)
    if given is None:
        return False
    ok = False
    for user, password in users:
        ok |= hmac.compare_digest(given[0].encode(), user.encode()) & hmac.compare_digest(given[1].encode(), password.encode())
    return ok


# ---------------------------------------------------------------- responses


def _extra(answer: Answer) -> dict[str, Any]:
    d = answer.to_dict()
    keys = ("found", "mode", "confidence", "standalone_question", "language", "kind", "notes", "timings")
    return {"citations": d["citations"], "rag": {k: d[k] for k in keys}}


def completion(answer: Answer, model: str) -> dict[str, Any]:
    """A `chat.completion` object for one Answer."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop",
                     "logprobs": None}],
        **_extra(answer),
    }


def _chunk(cid: str, created: int, model: str, delta: dict, finish: str | None = None, **extra: Any) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def stream_events(pieces: Iterator[Any], model: str, live: bool, cid: str, created: int) -> Iterator[str]:
    """SSE lines for the pieces of an ask_stream: content chunks, a last chunk with finish_reason, citations and `rag`,
    then `data: [DONE]`. With live=False (an unverified LLM draft) pieces are held back and only the verified Answer's
    text is sent, with keep-alive comments meanwhile. A RagError becomes an OpenAI error event."""
    sent, quiet_since = "", time.monotonic()
    try:
        for piece in pieces:
            if isinstance(piece, Answer) and not piece.final:  # a preliminary answer the LLM's will replace
                continue
            if isinstance(piece, Answer):
                text = piece.text
                if text.startswith(sent):
                    if text[len(sent):]:
                        yield _chunk(cid, created, model, {"content": text[len(sent):]})
                else:  # cannot happen for live (extractive) pieces; kept so the client never ends with a wrong text
                    yield _chunk(cid, created, model, {"content": "\n\n" + text})
                yield _chunk(cid, created, model, {}, "stop", **_extra(piece))
                break
            if isinstance(piece, str) and piece:
                if live:
                    sent += piece
                    yield _chunk(cid, created, model, {"content": piece})
                elif time.monotonic() - quiet_since > KEEPALIVE_S:
                    quiet_since = time.monotonic()
                    yield KEEPALIVE
        else:
            yield _error_event(ApiError(500, "No answer was produced.", type_="server_error"))
    except RagError as e:
        yield _error_event(ApiError(400, str(e)))
    yield "data: [DONE]\n\n"


def _error_event(e: ApiError) -> str:
    return f"data: {json.dumps(e.body(), ensure_ascii=False)}\n\n"


async def sse(first: asyncio.Future, rest: Iterator[Any], model: str, live: bool) -> AsyncIterator[str]:
    """The whole event stream: the role chunk at once, keep-alives until the first piece is ready, then stream_events."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    yield _chunk(cid, created, model, {"role": "assistant", "content": ""})
    while not (await asyncio.wait({first}, timeout=KEEPALIVE_S))[0]:
        yield KEEPALIVE
    try:
        head = first.result()
    except RagError as e:
        yield _error_event(ApiError(400, str(e)))
        yield "data: [DONE]\n\n"
        return
    async for line in iterate_in_threadpool(stream_events(itertools.chain([head], rest), model, live, cid, created)):
        yield line


# ---------------------------------------------------------------- the app


def router(assistant: Any, settings: Settings, modes: Sequence[str],
           users: Sequence[tuple[str, str]] | None = None) -> APIRouter:
    """The routes (`/models`, `/models/{id}`, `/chat/completions`), answering through `assistant`; at most
    settings.server_concurrency answers are computed at once (further requests wait)."""
    modes = list(modes)
    from rag.reader import resolve_mode

    wanted = resolve_mode(None, settings)
    default = wanted if wanted in modes else modes[0]
    slots = threading.BoundedSemaphore(max(1, int(settings.server_concurrency)))

    def check_auth(request: Request) -> None:
        if not authorized(request.headers.get("authorization"), users):
            raise ApiError(401, "Missing or wrong credentials: send `Authorization: Bearer user:password` (the "
                           "client's api_key) or HTTP Basic auth.", code="invalid_api_key")

    def model_of(name: str | None) -> str:
        if name is None or name == "":
            return default
        if name not in modes:
            raise ApiError(404, f"The model {name!r} does not exist; available: {', '.join(modes)}.", param="model",
                           code="model_not_found")
        return name

    def model_card(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": OWNER}

    r = APIRouter()

    @r.get("/models")
    def list_models(request: Request) -> dict[str, Any]:
        check_auth(request)
        return {"object": "list", "data": [model_card(m) for m in modes]}

    @r.get("/models/{name}")
    def get_model(name: str, request: Request) -> dict[str, Any]:
        check_auth(request)
        return model_card(model_of(name))

    def answers(question: str, history: list[tuple[str, str]], filters: Any, mode: str) -> Iterator[Any]:
        with slots:
            yield from assistant.ask_stream(question, history=history, filters=filters, mode=mode)

    @r.post("/chat/completions")
    async def chat_completions(request: Request):
        check_auth(request)
        req = parse_request(await request.body())
        mode = model_of(req.model)
        question, history = conversation(req.messages)
        gen = answers(question, history, req.filters, mode)
        if req.stream:
            first = asyncio.ensure_future(run_in_threadpool(next, gen, None))
            first.add_done_callback(lambda f: f.cancelled() or f.exception())  # read even if the client went away
            done, _ = await asyncio.wait({first}, timeout=FIRST_PIECE_WAIT_S)
            if done and isinstance(first.exception(), RagError):  # a bad question or filter: a plain 400, not a stream
                raise ApiError(400, str(first.exception()))
            return StreamingResponse(sse(first, gen, mode, live=mode == "extractive"), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})

        def finish() -> Answer | None:
            return next((p for p in reversed(list(gen)) if isinstance(p, Answer) and p.final), None)

        try:
            final = await run_in_threadpool(finish)
        except RagError as e:
            raise ApiError(400, str(e)) from None
        if final is None:
            raise ApiError(500, "No answer was produced.", type_="server_error")
        return completion(final, mode)

    return r


def create_app(assistant: Any, settings: Settings, modes: Sequence[str] = ("extractive",),
               users: Sequence[tuple[str, str]] | None = None) -> FastAPI:
    """The API as its own FastAPI app (mount it at `/v1`): OpenAI-style JSON for every error, including unknown paths
    and malformed requests; expected errors are not logged as tracebacks."""
    app = FastAPI(title="rag-techtransfer OpenAI-compatible API", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router(assistant, settings, modes, users))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Basic realm="rag"'} if e.status == 401 else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        message = f"Unknown endpoint {request.method} {request.url.path}." if e.status_code in (404, 405) else str(e.detail)
        return JSONResponse(ApiError(e.status_code, message, code=code).body(), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:  # a bug: the server still logs it
        return JSONResponse(ApiError(500, "Internal server error.", type_="server_error").body(), status_code=500)

    return app


__all__ = ["ApiError", "ChatRequest", "authorized", "completion", "conversation", "create_app", "credentials", "router"]
