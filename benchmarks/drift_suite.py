"""The drift monitor's cost, side by side: ``classify`` of a camera frame with the monitor on (reading every
frame, and one in 4) against the same classifier without it, MobileNetV2-224 int8 (weights=None, BatchNorm from real photos; its reference
profile made at export from its calibration photos), 2 engine threads.

Each round is a fresh runtime-only process holding the three classifiers of the same file, calling them in
turn frame by frame on 640×480 photo crops (so the monitor's windows close as in a stream); the ratio is
per round, with its spread. Run:

    python -m benchmarks.drift_suite [--rounds 5] [--frames 600] [--out benchmarks/results]
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.suite.publish import RESULTS, publish, spread_range
from benchmarks.suite.timing import module, probe_cli, root_env, run_json
from edgecls.bench.measure import spread_of

THREADS = 2


def probe(spec: dict) -> dict:
    """In a fresh process: the median ms of ``classify`` with and without the monitor, alternating."""
    from benchmarks.batch_suite import PHOTOS, photo, random_crop
    from edgecls.runtime import Classifier
    from edgecls.runtime.monitor import MonitorOptions

    rng = np.random.default_rng(0)
    frames = [cv2.resize(random_crop(photo(PHOTOS[i % len(PHOTOS)]), rng), (640, 480)) for i in range(60)]
    variants = {name: Classifier.from_path(spec["model"], num_threads=THREADS, monitor=options) for name, options in (
        ("without", None), ("with monitor", MonitorOptions(window=500)),
        ("every 4th", MonitorOptions(window=500, every=4)))}
    for clf in variants.values():
        for frame in frames[:20]:
            clf.classify(frame)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for n in range(spec["frames"]):
        frame = frames[n % len(frames)]
        for name, clf in variants.items():
            t0 = time.perf_counter()
            clf.classify(frame)
            times[name].append((time.perf_counter() - t0) * 1e3)
    windows = variants["with monitor"].monitor.windows
    for clf in variants.values():
        clf.close()
    return {**{name: statistics.median(ms) for name, ms in times.items()}, "windows": windows}


def measure(model: Path, rounds: int, frames: int) -> dict:
    spec = {"model": str(model), "frames": frames}
    runs = [run_json(module("benchmarks.drift_suite", "--probe", json.dumps(spec)), env=root_env())
            for _ in range(rounds)]
    ratios = {name: [r[name] / r["without"] for r in runs] for name in ("with monitor", "every 4th")}
    return {"ms": {name: statistics.median(r[name] for r in runs) for name in ("without", "with monitor", "every 4th")},
            "ratio": {name: {"median": statistics.median(v), **spread_of(v)} for name, v in ratios.items()},
            "rounds": runs}


def page(result: dict) -> str:
    ms, ratio = result["ms"], result["ratio"]
    lines = ["`classify` of a 640×480 frame by MobileNetV2-224 int8 (TFLite, 2 engine threads): without the drift "
             "monitor, with it reading every frame, and reading one frame in 4 (`every=4`), window 500, alternating "
             "frame by frame in one process per round; medians, per-round ratios with min–max.", "",
             "| variant | ms | the monitor's share µs | / without |", "|---|---|---|---|",
             f"| without | {ms['without']:.3f} | | |"]
    for name in ("with monitor", "every 4th"):
        lines.append(f"| {name} | {ms[name]:.3f} | {(ms[name] - ms['without']) * 1000:.0f} | "
                     f"{ratio[name]['median']:.4f}{spread_range(ratio[name], 4)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = probe_cli(__doc__, probe, RESULTS, rounds=(int, 5), frames=(int, 600))
    if args is None:
        return
    from benchmarks.batch_suite import mobilenet_int8

    with tempfile.TemporaryDirectory() as tmp:
        result = measure(mobilenet_int8(Path(tmp)), args.rounds, args.frames)
    stamp = dt.date.today().isoformat()
    publish(args.out, f"drift-{stamp}", {"date": stamp, "threads": THREADS, "result": result}, page(result))


if __name__ == "__main__":
    main()
