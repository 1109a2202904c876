"""Concurrent users against `rag serve` on loopback: latency p50/p95/max and errors of extractive answers.

    python bench/bench_serve.py [--users 20] [--requests 5] [--concurrency N] [--index DIR] [--clients v1,rest,gradio_client]

The server runs in its own process (`rag serve`, RAG_ANSWER_MODE=extractive, RAG_CONCURRENCY_LIMIT=N, default: the
settings value). Each user is a thread that sends its requests one after another (a bounded loop: users x requests in
all), cycling through the bundled-corpus question sets (100 distinct questions; no answer is cached, only question
vectors are). Three clients measured in the same run, each against a fresh server:

- `v1`: the OpenAI-compatible `POST /v1/chat/completions` with one `httpx.Client` per user;
- `rest`: the Gradio `/ask` API through Gradio's plain HTTP call protocol (`POST /gradio_api/call/ask`, then read the
  event stream), one `httpx.Client` per user;
- `gradio_client` (the baseline, as first measured): the same `/ask` through `gradio_client.Client`, whose own
  bookkeeping costs ~60 ms CPU per request on this box, on the same two cores as the server.

Goal: p95 <= 500 ms, 0 errors at 20 users x 5 requests. The load average is printed with every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTION_SETS = [ROOT.parent / "shared" / "eval" / "dev_qa.jsonl", *sorted((ROOT / "tests" / "data").glob("seeds_qa*.jsonl"))]


def questions() -> list[str]:
    out: list[str] = []
    for path in QUESTION_SETS:
        if path.exists():
            out += [json.loads(line)["q"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(dict.fromkeys(out)) or ["西宁对接会签了多少个项目？"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _wait(url: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    import urllib.request

    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not come up")


def v1_client(url: str) -> Callable[[str], bool]:
    import httpx

    c = httpx.Client(base_url=url, timeout=60)

    def ask(q: str) -> bool:
        r = c.post("v1/chat/completions", json={"model": "extractive", "messages": [{"role": "user", "content": q}]})
        return r.status_code == 200 and bool(r.json()["choices"][0]["message"]["content"])
    return ask


def rest_client(url: str) -> Callable[[str], bool]:
    import httpx

    c = httpx.Client(base_url=url, timeout=60)

    def ask(q: str) -> bool:
        r = c.post("gradio_api/call/ask", json={"data": [q, "[]"]})
        event = r.json()["event_id"]
        with c.stream("GET", f"gradio_api/call/ask/{event}") as s:
            kind = ""
            for line in s.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind in ("complete", "error"):
                    data = json.loads(line[5:])
                    return kind == "complete" and isinstance(data, list) and "text" in data[0]
        return False
    return ask


def gradio_client(url: str) -> Callable[[str], bool]:
    from gradio_client import Client

    c = Client(url, verbose=False)

    def ask(q: str) -> bool:
        out = c.predict(q, "[]", api_name="/ask")
        return isinstance(out, dict) and "text" in out
    return ask


CLIENTS = {"v1": v1_client, "rest": rest_client, "gradio_client": gradio_client}


def run(kind: str, url: str, server_pid: int, users: int, requests: int, qs: list[str]) -> None:
    asks = [CLIENTS[kind](url) for _ in range(users)]
    asks[0]("你好，这是预热问题吗？")  # warm-up: the first question loads lazy parts (not one of the measured questions)
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def user(i: int) -> None:
        for r in range(requests):
            q = qs[(i * requests + r) % len(qs)]
            t = time.perf_counter()
            try:
                ok, why = asks[i](q), "no answer in the reply"
            except Exception as e:  # noqa: BLE001 - every failure counts as an error
                ok, why = False, repr(e)[:200]
            with lock:
                (lat.append((time.perf_counter() - t) * 1000) if ok else errors.append(why))

    load0 = os.getloadavg()
    cpu_server0, cpu_client0 = _cpu(server_pid), time.process_time()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    cpu_server, cpu_client = _cpu(server_pid) - cpu_server0, time.process_time() - cpu_client0
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    n = max(len(lat), 1)
    print(f"{kind:>13}: {len(lat)} ok, {len(errors)} errors in {wall:.1f} s ({len(lat) / wall:.1f}/s) | latency ms "
          f"p50 {p(0.5):.0f} p95 {p(0.95):.0f} max {lat[-1] if lat else float('nan'):.0f} "
          f"mean {statistics.mean(lat) if lat else float('nan'):.0f} | CPU/answer server {1000 * cpu_server / n:.0f} ms, "
          f"client {1000 * cpu_client / n:.0f} ms | load {load0[0]:.2f} -> {load1[0]:.2f}")
    for e in errors[:3]:
        print("    error:", e)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--concurrency", type=int, help="server's concurrency limit (RAG_CONCURRENCY_LIMIT)")
    ap.add_argument("--index", help="index folder to serve (default: the bundled corpus in a temporary folder)")
    ap.add_argument("--clients", default="v1,rest,gradio_client", help="comma-separated: " + ", ".join(CLIENTS))
    args = ap.parse_args()
    kinds = [k.strip() for k in args.clients.split(",") if k.strip()]
    if bad := [k for k in kinds if k not in CLIENTS]:
        ap.error(f"unknown client(s) {', '.join(bad)}; choose from {', '.join(CLIENTS)}")
    tmp = None
    index = args.index
    if not index:
        from rag.ingest import default_corpus
        from rag.settings import Settings
        from rag.store import ingest_into_index

        tmp = tempfile.TemporaryDirectory()
        index = str(Path(tmp.name) / "bench")
        s = Settings.from_env(index_root=Path(tmp.name), index_name="bench")
        ingest_into_index(default_corpus(), s, progress=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_ANSWER_MODE": "extractive"}  # the extractive p95 goal
    if args.concurrency:
        env["RAG_CONCURRENCY_LIMIT"] = str(args.concurrency)
    qs = questions()
    print(f"{args.users} users x {args.requests} requests, {len(qs)} distinct questions, server concurrency "
          f"{args.concurrency or 'settings default'}, {os.cpu_count()} cores; a fresh server per client (no vector "
          f"is cached before the run)")
    try:
        for kind in kinds:
            port = _free_port()
            server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", index, "--port", str(port)],
                                      env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            url = f"http://127.0.0.1:{port}/"
            try:
                _wait(url, server)
                run(kind, url, server.pid, args.users, args.requests, qs)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
