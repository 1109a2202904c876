"""`rag serve`: one FastAPI app on one port — the Gradio chat at `/` and the OpenAI-compatible API at `/v1` — over one
shared Assistant, behind the same users (Gradio's login page for the chat, Bearer/Basic `user:password` for the API)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from rag.errors import RagError
from rag.settings import Settings

API_PATH = "/v1"


def answer_modes(settings: Settings) -> list[str]:
    """The answer modes this server offers (the API's models): extractive, and llm when it can be loaded."""
    from rag.llm import available

    return ["extractive"] + (["llm"] if available(settings) is None else [])


def create_app(assistant: Any, settings: Settings, auth: list[tuple[str, str]] | None = None) -> FastAPI:
    """The combined app: the API mounted first (so `/v1/...` never reaches Gradio), then the chat at `/`."""
    import gradio as gr

    from rag import openai_api
    from ui.app import build_app, enable_queue, page_options

    blocks = build_app(assistant, settings)
    enable_queue(blocks, settings)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(API_PATH, openai_api.create_app(assistant, settings, answer_modes(settings), users=auth))
    return gr.mount_gradio_app(app, blocks, path="/", **page_options(settings, auth))


@dataclass
class Served:
    """A server running in a background thread (block=False); `close()` stops it and frees the port."""

    url: str
    server: Any
    thread: threading.Thread

    def close(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve(assistant: Any, settings: Settings, host: str | None = None, port: int | None = None,
          auth: list[tuple[str, str]] | None = None, block: bool = True, start_timeout: float = 60.0) -> Served | None:
    """Serve the combined app on host:port (settings.host/port by default). block=True runs until Ctrl-C; block=False
    returns a `Served` once the port accepts connections (RagError if it could not start, e.g. the port is taken)."""
    import uvicorn

    host, port = host or settings.host, int(port or settings.port)
    config = uvicorn.Config(create_app(assistant, settings, auth), host=host, port=port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=5)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/"

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and block:  # announced once the port is bound
                print(f"chat: {url}  ·  OpenAI-compatible API: {url[:-1]}{API_PATH}  (Ctrl-C to stop)", flush=True)

    server = Server(config)
    if block:
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; its own log line says why
            pass
        if not server.started:
            raise RagError(f"could not serve on {host}:{port} (is the port in use? try --port)")
        return None
    thread = threading.Thread(target=server.run, name="rag-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RagError(f"could not serve on {host}:{port} (is the port in use?)")
        time.sleep(0.05)
    return Served(url, server, thread)
