"""``mmsearch serve`` under load, against a library search on the same index, in one run.

    python -m benchmarks.serve [--photos 300] [--clients 8] [--requests 10000]
                               [--max-seconds 180] [--model hash|offline]

Builds an index of ``--photos`` JPEGs cut from the real photos that ship in
installed packages (plus two notes), starts a real ``mmsearch serve`` on a free
127.0.0.1 port (a subprocess, as a user runs it) and prints:

- library: ``Engine.run`` in this process on the same index, one query at a time
  (p50/p99 ms): what a search costs without HTTP;
- server, 1 client: the same queries over HTTP one at a time (p50/p99 ms), and the
  difference of the p50s (what the server adds; the target is under 10 ms);
- server, N clients: ``--clients`` threads with keep-alive connections sending
  ``--requests`` searches in all (or until ``--max-seconds``): requests/s,
  p50/p99 ms, errors (must be 0);
- the server's resident memory after a warm-up and after the load (no growth).

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np

from benchmarks.common import photo_library, scratch, table

WORDS = ("a cat", "coffee cup", "rocket launch", "red flower", "temple", "astronaut",
         "a photo of a dog", "tomatoes", "river bank", "night sky", "portrait", "city")  # fmt: skip
REPO = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _start(index: Path) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "mmsearch", "serve", "--index", str(index), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"mmsearch serve did not start: {line!r}")
    url = line[line.index("http://") :].split()[0]
    if urlsplit(url).hostname != "127.0.0.1":
        proc.kill()
        raise SystemExit(f"refusing to load anything but 127.0.0.1: {url}")
    return proc, url


def _path(i: int, k: int) -> str:
    return f"/api/search?q={quote(WORDS[i % len(WORDS)])}&k={k}"


class Client:
    """One keep-alive connection; latencies in ms, errors counted."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.latencies: list[float] = []
        self.errors = 0

    def get(self, path: str) -> None:
        t0 = time.perf_counter()
        try:
            self.conn.request("GET", path)
            response = self.conn.getresponse()
            body = response.read()
            ok = response.status == 200 and b'"results"' in body
        except (OSError, http.client.HTTPException):
            ok = False
            self.conn.close()
        self.latencies.append((time.perf_counter() - t0) * 1000)
        self.errors += not ok


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=180.0)
    parser.add_argument("--model", default="hash")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    clients = max(1, min(args.clients, 64))
    from mmsearch import Engine
    from mmsearch.search.query import Query

    with scratch() as tmp:
        folder = Path(tmp)
        lib = folder / "lib"
        photo_library(lib / "photos", args.photos, size=(640, 480))
        (lib / "notes").mkdir()
        (lib / "notes" / "garden.md").write_text("Tomatoes grow in the garden.", encoding="utf-8")
        (lib / "notes" / "fox.txt").write_text("A red fox by the river bank.", encoding="utf-8")
        with Engine.open(folder / "idx", model=args.model) as engine:
            engine.index([lib])
            assets = engine.info()["assets"]
        proc, url = _start(folder / "idx")
        try:
            one = Client(url)
            for i in range(200):  # warm-up: model, caches, thumbnails of nothing
                one.get(_path(i, args.k))
            one.latencies.clear()
            rss_before = _rss_mb(proc.pid)
            # library and server, interleaved: both see the same load on the machine
            library: list[float] = []
            with Engine.open(folder / "idx", create=False) as engine:
                for i in range(300):
                    query = Query().text(WORDS[i % len(WORDS)]).options(limit=args.k)
                    t1 = time.perf_counter()
                    engine.run(query)
                    library.append((time.perf_counter() - t1) * 1000)
                    one.get(_path(i, args.k))
            sequential = one
            workers = [Client(url) for _ in range(clients)]
            counter = iter(range(args.requests))
            lock = threading.Lock()
            deadline = time.monotonic() + args.max_seconds

            def work(client: Client) -> None:
                while time.monotonic() < deadline:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    client.get(_path(i, args.k))

            threads = [threading.Thread(target=work, args=(c,)) for c in workers]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            rss_after = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    loaded = [ms for c in workers for ms in c.latencies]
    errors = sum(c.errors for c in workers) + sequential.errors
    lib_p50, srv_p50 = _pct(library, 50), _pct(sequential.latencies, 50)
    print(f"index: {assets} files, model {args.model}, k={args.k}; {os.cpu_count()} CPUs")
    rows = [
        [
            "library Engine.run",
            "1",
            len(library),
            "",
            f"{lib_p50:.2f}",
            f"{_pct(library, 99):.2f}",
            "",
        ],
        [
            "server, 1 client",
            "1",
            len(sequential.latencies),
            "",
            f"{srv_p50:.2f}",
            f"{_pct(sequential.latencies, 99):.2f}",
            sequential.errors,
        ],
        [
            f"server, {clients} clients",
            str(clients),
            len(loaded),
            f"{len(loaded) / wall:.0f}",
            f"{_pct(loaded, 50):.2f}",
            f"{_pct(loaded, 99):.2f}",
            sum(c.errors for c in workers),
        ],
    ]
    print(table(["what", "clients", "requests", "req/s", "p50 ms", "p99 ms", "errors"], rows))
    print(f"server adds {srv_p50 - lib_p50:.2f} ms at p50 (one client; target < 10 ms)")
    print(f"server RSS: {rss_before:.0f} MB after warm-up, {rss_after:.0f} MB after the load")
    print(json.dumps({"errors": errors, "rps": round(len(loaded) / wall, 1)}))
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
