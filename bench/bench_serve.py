"""Concurrent users against `rag serve` on loopback: latency p50/p95/max and errors of the `/ask` API (extractive).

    python bench/bench_serve.py [--users 20] [--requests 5] [--concurrency N] [--index DIR]

The server runs in its own process (`rag serve`, RAG_CONCURRENCY_LIMIT=N, default: the settings value); each user is
a thread with its own gradio_client that sends its requests one after another (a bounded loop: users x requests in
all). Without --index, the bundled corpus is indexed into a temporary folder first. Goal: p95 <= 500 ms, 0 errors at
20 users x 5 requests. The load average is printed before and after (the machine is shared).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ["西宁对接会签了多少个项目？", "西宁对接会签约总资金是多少？", "南阳站签了几项？", "创新港研讨会是哪天召开的？",
             "硬科技创新大会在哪里举办？", "How many projects were signed in Xining?"]


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--concurrency", type=int, help="server's concurrency limit (RAG_CONCURRENCY_LIMIT)")
    ap.add_argument("--index", help="index folder to serve (default: the bundled corpus in a temporary folder)")
    args = ap.parse_args()
    from gradio_client import Client

    tmp = None
    index = args.index
    if not index:
        from rag.settings import Settings
        from rag.store import ingest_into_index
        from rag.ingest import default_corpus

        tmp = tempfile.TemporaryDirectory()
        index = str(Path(tmp.name) / "bench")
        s = Settings.from_env(index_root=Path(tmp.name), index_name="bench")
        ingest_into_index(default_corpus(), s, progress=False)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_ANSWER_MODE": "extractive"}  # the extractive p95 goal
    if args.concurrency:
        env["RAG_CONCURRENCY_LIMIT"] = str(args.concurrency)
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", index, "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait(url, server)
        clients = [Client(url, verbose=False) for _ in range(args.users)]
        clients[0].predict(QUESTIONS[0], "[]", api_name="/ask")  # warm-up (first question loads lazy parts)
        lat: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def user(i: int) -> None:
            for r in range(args.requests):
                q = QUESTIONS[(i + r) % len(QUESTIONS)]
                t = time.perf_counter()
                try:
                    out = clients[i].predict(q, "[]", api_name="/ask")
                    ok = isinstance(out, dict) and "text" in out
                except Exception as e:  # noqa: BLE001 - every failure counts as an error
                    ok, out = False, repr(e)[:200]
                with lock:
                    (lat.append((time.perf_counter() - t) * 1000) if ok else errors.append(str(out)))

        load0 = os.getloadavg()
        cpu_server0, cpu_client0 = _cpu(server.pid), time.process_time()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()
        cpu_server, cpu_client = _cpu(server.pid) - cpu_server0, time.process_time() - cpu_client0
        lat.sort()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
        conc = args.concurrency or "settings default"
        print(f"{args.users} users x {args.requests} requests, server concurrency {conc}: {len(lat)} ok, "
              f"{len(errors)} errors in {wall:.1f} s ({len(lat) / wall:.1f} answers/s)")
        print(f"latency ms: p50 {p(0.5):.0f}  p95 {p(0.95):.0f}  max {lat[-1] if lat else float('nan'):.0f}  "
              f"mean {statistics.mean(lat) if lat else float('nan'):.0f}")
        print(f"CPU per answer: server {1000 * cpu_server / max(len(lat), 1):.0f} ms, clients (this process) "
              f"{1000 * cpu_client / max(len(lat), 1):.0f} ms")
        print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} ({os.cpu_count()} cores)")
        for e in errors[:5]:
            print("  error:", e)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
