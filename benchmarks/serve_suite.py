"""``edgecls serve`` against the in-process runtime, side by side in one run.

For a 640×480 JPEG (a scikit-image photo with sensor-like noise) and MobileNetV2-224 int8 (``weights=None``,
BatchNorm statistics from real photos) and the seed CNN int8:

Clients: the standard library's ``http.client``, keep-alive, in this process (on the same two cores).

- latency: ``POST /v1/classify`` (raw JPEG body, one keep-alive client, server with 1 worker) against
  ``Classifier.classify(jpeg_bytes)`` in this process, in alternating blocks of 50 calls, 5 rounds;
  p50 and p99 of each and the added p50;
- throughput: 8 concurrent clients (threads, each its own keep-alive connection) against a server with
  2 workers, against 2 threads in this process each with its own Classifier, both for a fixed count of
  images; the ratio per round;
- memory: the server's RSS after 1,000 and after 5,000 requests (growth per 1,000 requests).

    python -m benchmarks.serve_suite [--rounds 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.batch_suite import PHOTOS, camera_jpeg, mobilenet_int8, photo, random_crop, seed_int8
from benchmarks.suite.publish import publish, spread_range
from edgecls.bench.measure import spread_of


def start_server(model: Path, workers: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "edgecls", "serve", f"m={model}", "--port", "0",
                             "--workers", str(workers), "--max-queue", "64"], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "listening on " in line:
            return proc, line.split("listening on ")[1].split()[0]
    raise RuntimeError("the server did not start")


class Client:
    """A keep-alive HTTP/1.1 client on the standard library's ``http.client``: light, as the C and .NET
    clients of camera apps are (httpx cost 2.0 ms of CPU per request here, on the server's two cores)."""

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(self, path: str, body: bytes, kind: str) -> bytes:
        self.conn.request("POST", path, body=body, headers={"Content-Type": kind})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {data[:200]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1000
    return float("nan")


def latency(model: Path, jpeg: bytes, rounds: int) -> dict:
    from edgecls.runtime import Classifier

    proc, url = start_server(model, 1)
    try:
        client = Client(url)
        with Classifier.from_path(model, num_threads=1) as clf:
            for _ in range(20):  # warm both
                client.post("/v1/classify", jpeg, "image/jpeg")
                clf.classify(jpeg)
            http, local, added = [], [], []
            for _ in range(rounds):
                h, l_ = [], []
                for _ in range(4):
                    for _ in range(50):
                        t0 = time.perf_counter()
                        client.post("/v1/classify", jpeg, "image/jpeg")
                        h.append((time.perf_counter() - t0) * 1000)
                    for _ in range(50):
                        t0 = time.perf_counter()
                        clf.classify(jpeg)
                        l_.append((time.perf_counter() - t0) * 1000)
                http += h
                local += l_
                added.append(float(np.percentile(h, 50) - np.percentile(l_, 50)))
        client.close()
    finally:
        proc.terminate()
        proc.wait()
    return {"http_p50_ms": float(np.percentile(http, 50)), "http_p99_ms": float(np.percentile(http, 99)),
            "local_p50_ms": float(np.percentile(local, 50)), "local_p99_ms": float(np.percentile(local, 99)),
            "added_p50_ms": statistics.median(added), "added_spread": spread_of(added)}


def _run_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _http_run(url: str, jpeg: bytes, count: int, client_ms: list[float]) -> float:
    """``count`` requests from 8 client threads; requests per second (and the clients' CPU ms per request)."""
    left = [count]
    lock = threading.Lock()

    def client() -> None:
        c = Client(url)
        while True:
            with lock:
                if left[0] == 0:
                    c.close()
                    return
                left[0] -= 1
            c.post("/v1/classify", jpeg, "image/jpeg")

    t0, c0 = time.perf_counter(), time.process_time()
    _run_threads([threading.Thread(target=client) for _ in range(8)])
    client_ms.append((time.process_time() - c0) * 1000 / count)
    return count / (time.perf_counter() - t0)


def _local_run(clfs: list, jpeg: bytes, count: int) -> float:
    """The same images classified in this process by the classifiers, one thread each; images per second."""
    def work(clf) -> None:
        for _ in range(count // 2):
            clf.classify(jpeg)

    t0 = time.perf_counter()
    _run_threads([threading.Thread(target=work, args=(c,)) for c in clfs])
    return count / (time.perf_counter() - t0)


def throughput(model: Path, jpeg: bytes, rounds: int, count: int) -> dict:
    from edgecls.runtime import Classifier

    proc, url = start_server(model, 2)
    clfs = [Classifier.from_path(model, num_threads=1) for _ in range(2)]
    client_ms: list[float] = []
    try:
        def http_run() -> float:
            return _http_run(url, jpeg, count, client_ms)

        def local_run() -> float:
            return _local_run(clfs, jpeg, count)

        http_run(), local_run()  # warm
        pairs = [(http_run(), local_run()) for _ in range(rounds)]
        before = rss_mb(proc.pid)
        for _ in range(4):
            http_run()
        after = rss_mb(proc.pid)
    finally:
        for clf in clfs:
            clf.close()
        proc.terminate()
        proc.wait()
    ratios = [h / lo for h, lo in pairs]
    served = count * (rounds + 1)
    return {"http_per_s": statistics.median(h for h, _ in pairs), "local_per_s": statistics.median(lo for _, lo in pairs),
            "ratio": statistics.median(ratios), "ratio_spread": spread_of(ratios),
            "client_cpu_ms_per_request": statistics.median(client_ms), "rss_mb_before": before, "rss_mb_after": after, "requests_before": served + count,
            "requests_between": 4 * count, "growth_mb_per_1000": (after - before) / (4 * count / 1000)}


def markdown(data: dict) -> str:
    lines = [f"# edgecls serve against the in-process runtime ({data['date']})", "",
             f"Produced by `python -m benchmarks.serve_suite`; one 640×480 JPEG of a scikit-image photo; {data['rounds']} "
             "rounds; 2-core x86-64, the clients in the same machine as the server.", "",
             "| model | in-process p50 / p99 ms | POST /v1/classify p50 / p99 ms | added p50 ms (goal ≤ 2) | in-process img/s (2 threads) | HTTP img/s (8 clients, 2 workers) | ratio (goal ≥ 0.8) | clients' CPU per request | server RSS growth per 1,000 requests |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, d in data["models"].items():
        lat, thr = d["latency"], d["throughput"]
        sp, rs = lat["added_spread"], thr["ratio_spread"]
        lines.append(f"| {name} | {lat['local_p50_ms']:.2f} / {lat['local_p99_ms']:.2f} | {lat['http_p50_ms']:.2f} / "
                     f"{lat['http_p99_ms']:.2f} | {lat['added_p50_ms']:.2f}{spread_range(sp)} | "
                     f"{thr['local_per_s']:.0f} | {thr['http_per_s']:.0f} | {thr['ratio']:.2f}{spread_range(rs)} "
                     f"| {thr['client_cpu_ms_per_request']:.2f} ms | {thr['growth_mb_per_1000']:+.2f} MB ({thr['rss_mb_before']:.0f} → {thr['rss_mb_after']:.0f} MB "
                     f"over {thr['requests_between']:,}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    date = dt.date.today().isoformat()
    rng = np.random.default_rng(3)
    jpeg = camera_jpeg(random_crop(photo(PHOTOS[1]), rng), (640, 480), rng)
    data: dict = {"date": date, "rounds": args.rounds, "jpeg_bytes": len(jpeg), "models": {}}
    with tempfile.TemporaryDirectory(prefix="edgecls-serve-") as tmp:
        work = Path(tmp)
        for name, build, count in (("MobileNetV2-224 int8", mobilenet_int8, 400), ("seed CNN int8", seed_int8, 1000)):
            model = build(work)
            data["models"][name] = {"latency": latency(model, jpeg, args.rounds),
                                    "throughput": throughput(model, jpeg, args.rounds, count)}
            print(name, json.dumps(data["models"][name]), flush=True)
    publish(args.out, f"serve-{date}", data, markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
