"""Measure what a camera app pays per frame: preprocess, inference, postprocess, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.bench.memory import peak_rss_mb
from edgecls.bench.stats import LatencyStats

__all__ = ["BenchOptions", "BenchResult", "benchmark", "camera_frames", "peak_rss_mb"]


@dataclass(frozen=True)
class BenchOptions:
    """How to benchmark: input frames, run count, threads, backend and device."""

    image: str | Path | None = None
    size: tuple[int, int] = (640, 480)
    runs: int = 100
    duration: float | None = None
    """Seconds to keep measuring instead of ``runs`` (at least one run)."""
    warmup: int = 10
    threads: int | None = None
    batch: int = 1
    """Also measure throughput of ``classify_batch`` with this many frames per call."""
    backend: str = "auto"
    device: str = "cpu"
    data: str | Path | None = None
    """A labelled image folder: adds top-1 accuracy."""
    cold_start: bool = True
    """Probe a fresh process: import, load, first result, and its peak RSS."""


@dataclass
class BenchResult:
    """Figures for one model (and thread count)."""

    model: str
    format: str
    quantization: str
    size_bytes: int
    backend: str
    device: str
    accelerators: list[str]
    threads: int | None
    input: str
    stages: dict[str, LatencyStats]
    throughput_fps: float
    peak_rss_mb: float
    """Peak RSS of a fresh runtime-only process classifying with this model (the cold-start
    probe); without the probe, of the benchmarking process (which may hold other models)."""
    cold_start: dict[str, float] = field(default_factory=dict)
    batch: int = 1
    batch_throughput_fps: float | None = None
    accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "stages"}
        data["stages"] = {name: stats.to_dict() for name, stats in self.stages.items()}
        return data


def camera_frames(size: tuple[int, int], count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """``count`` different BGR frames of ``size`` (W×H) with camera-like smooth content and noise."""
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        base = rng.uniform(0, 255, (max(2, height // 32), max(2, width // 32), 3)).astype(np.float32)
        frame = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
        frame += rng.normal(0, 8, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


_COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
from edgecls.runtime import Classifier
from edgecls.runtime.backends import spec_for
import importlib, pathlib
path = pathlib.Path(sys.argv[1])
try:
    importlib.import_module(spec_for(path, sys.argv[2]).engine_module)
except Exception:
    pass  # a fallback engine; the load below imports it
t1 = time.perf_counter()
clf = Classifier.from_path(path, backend=sys.argv[2], num_threads=int(sys.argv[3]) or None, device=sys.argv[4])
t2 = time.perf_counter()
import numpy as np
frame = np.zeros((480, 640, 3), np.uint8)
clf.classify(frame)
t3 = time.perf_counter()
for _ in range(20):
    clf.classify(frame)
from edgecls.bench.memory import peak_rss_mb
rss = peak_rss_mb()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_result_s": t3 - t2, "total_s": t3 - t0,
                  "peak_rss_mb": rss}))
"""


def cold_start(path: Path, options: BenchOptions) -> dict[str, float]:
    """Import, load and first-result times, and peak RSS, of a fresh Python process.

    Raises:
        RuntimeError: the probe process failed.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _COLD_START, str(path), options.backend, str(options.threads or 0), options.device],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start probe failed: {proc.stderr.strip().splitlines()[-1:] }")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def benchmark(path: str | Path, options: BenchOptions | None = None) -> BenchResult:
    """Benchmark one model file.

    Raises:
        EdgeclsError: the model or image cannot be loaded (see Classifier.from_path).
    """
    from edgecls.runtime import Classifier
    from edgecls.runtime.images import to_pixels

    options = options or BenchOptions()
    path = Path(path)
    if options.image is not None:
        frames = [to_pixels(options.image).array]
        source = str(options.image)
    else:
        frames = camera_frames(options.size)
        source = f"{options.size[0]}x{options.size[1]} BGR frames (8, rotating)"
    with Classifier.from_path(path, backend=options.backend, num_threads=options.threads, device=options.device) as clf:
        for i in range(options.warmup):
            clf.classify(frames[i % len(frames)])
        stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": [], "end_to_end": []}
        start = time.perf_counter()
        i = 0
        while (i < options.runs) if options.duration is None else (i == 0 or time.perf_counter() - start < options.duration):
            t = time.perf_counter()
            result = clf.classify(frames[i % len(frames)])
            stages["end_to_end"].append((time.perf_counter() - t) * 1000)
            stages["preprocess"].append(result.timings.preprocess_ms)
            stages["inference"].append(result.timings.inference_ms)
            stages["postprocess"].append(result.timings.postprocess_ms)
            i += 1
        elapsed = time.perf_counter() - start
        b = clf.backend
        prov = clf.card.provenance
        result = BenchResult(
            model=str(path), format=prov.format or path.suffix.lstrip("."), quantization=prov.quantization or "?",
            size_bytes=path.stat().st_size, backend=b.name, device=b.device, accelerators=list(b.accelerators),
            threads=getattr(b, "num_threads", options.threads), input=source,
            stages={k: LatencyStats.of(v) for k, v in stages.items()},
            throughput_fps=i / elapsed, peak_rss_mb=peak_rss_mb(), batch=options.batch,
        )
        if options.batch > 1:
            result.batch_throughput_fps = _batch_throughput(clf, frames, options.batch, max(3, options.runs // options.batch))
        if options.data is not None:
            from edgecls.evaluate import evaluate

            result.accuracy = evaluate(clf, options.data).top1
    if options.cold_start:
        result.cold_start = cold_start(path, options)
        result.peak_rss_mb = result.cold_start.pop("peak_rss_mb")
    return result


def _batch_throughput(clf, frames: Sequence[np.ndarray], batch: int, calls: int) -> float:
    """Images per second of ``classify_batch`` on ``batch`` frames per call."""
    items = [frames[i % len(frames)] for i in range(batch)]
    clf.classify_batch(items)
    start = time.perf_counter()
    for _ in range(calls):
        clf.classify_batch(items)
    return batch * calls / (time.perf_counter() - start)
