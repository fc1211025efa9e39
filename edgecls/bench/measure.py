"""Measure what a camera app pays per frame: preprocess, inference, postprocess, end to end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.bench.stats import LatencyStats
from edgecls.runtime.memory import peak_rss_mb

__all__ = ["BenchOptions", "BenchResult", "benchmark", "benchmark_many", "camera_frames", "peak_rss_mb", "spread_of"]


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
    rounds: int = 1
    """Repeat the timed runs this many times, interleaving the models round by round; the spread of
    the per-round p50s (and of their ratios to the first model) says how far to trust the figures."""
    sustained_s: float | None = None
    """Instead of runs: classify without pause for this many seconds, reporting p50/p99 per window."""
    window_s: float = 60.0
    """The window of ``sustained_s`` (a minute: does the machine throttle?)."""
    profile: bool = False
    """Also time each operator over ``runs`` raw inferences (ONNX Runtime's profiler; LiteRT has none in Python)."""

    def __post_init__(self) -> None:
        from edgecls.runtime.errors import OptionError

        if self.rounds < 1:
            raise OptionError(f"rounds must be at least 1, got {self.rounds}")
        if self.sustained_s is not None and (self.sustained_s <= 0 or self.window_s <= 0):
            raise OptionError("sustained and window must be positive durations")
        if self.sustained_s is not None and self.rounds > 1:
            raise OptionError("give either rounds or sustained, not both")


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
    round_p50_ms: list[float] = field(default_factory=list)
    """End-to-end p50 of each round (one per round)."""
    round_ratios: list[float] = field(default_factory=list)
    """Per round, this model's p50 over the first model's p50 in the same round."""
    windows: list[dict[str, float]] = field(default_factory=list)
    """Sustained mode: per window, its end (s), frames, p50 and p99 (ms)."""
    operators: list[dict[str, Any]] = field(default_factory=list)
    """With ``profile``: the 10 slowest operators (node, op_type, calls, total_ms, mean_ms, share)."""
    float_nodes: int = 0
    """Nodes the file's quantization ladder kept in float (from its card)."""

    @property
    def spread(self) -> dict[str, float] | None:
        """min/median/max of the per-round p50s, their range in % of the median, and ``stable``
        (range ≤ 10 %); None with one round."""
        return spread_of(self.round_p50_ms)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "stages"}
        data["stages"] = {name: stats.to_dict() for name, stats in self.stages.items()}
        data["spread"] = self.spread
        data["ratio_spread"] = spread_of(self.round_ratios)
        return data


UNSTABLE_PCT = 10.0
"""Rounds whose p50s (or ratios) range over more than this, in % of their median, are flagged unstable."""


def spread_of(values: Sequence[float]) -> dict[str, float] | None:
    """min/median/max, range in % of the median and ``stable``; None for fewer than two values."""
    if len(values) < 2:
        return None
    low, mid, high = min(values), float(np.median(values)), max(values)
    range_pct = (high - low) / mid * 100 if mid else 0.0
    return {"min": low, "median": mid, "max": high, "range_pct": round(range_pct, 2),
            "stable": range_pct <= UNSTABLE_PCT}


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
from edgecls.runtime.memory import peak_rss_mb
rss = peak_rss_mb()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_result_s": t3 - t2, "total_s": t3 - t0,
                  "peak_rss_mb": rss}))
"""


def cold_start(path: Path, options: BenchOptions) -> dict[str, float]:
    """Import, load and first-result times, and peak RSS, of a fresh Python process.

    Raises:
        MeasurementError: the probe process failed.
    """
    from edgecls.runtime.probe import run_probe

    return run_probe(["-c", _COLD_START, str(path), options.backend, str(options.threads or 0), options.device],
                     what="the cold-start probe", timeout_s=300)


def benchmark(path: str | Path, options: BenchOptions | None = None) -> BenchResult:
    """Benchmark one model file (see :func:`benchmark_many`).

    Raises:
        EdgeclsError: the model or image cannot be loaded (see Classifier.from_path).
    """
    options = options or BenchOptions()
    return benchmark_many([(path, options.threads)], options)[0]


_STAGES = ("preprocess", "inference", "postprocess", "end_to_end")


class _Variant:
    """One model at one thread count, open for the whole benchmark, with its samples."""

    def __init__(self, path: Path, threads: int | None, options: BenchOptions) -> None:
        from edgecls.runtime import Classifier

        self.path, self.threads = path, threads
        self.clf = Classifier.from_path(path, backend=options.backend, num_threads=threads, device=options.device)
        self.samples: dict[str, list[float]] = {name: [] for name in _STAGES}
        self.round_p50: list[float] = []
        self.classified, self.seconds = 0, 0.0

    def timed_round(self, frames: Sequence[np.ndarray], options: BenchOptions) -> None:
        """``options.runs`` classifications (or ``options.duration`` seconds, at least one); records the round's p50."""
        end_to_end: list[float] = []
        start = time.perf_counter()
        i = 0
        while (i < options.runs) if options.duration is None else (i == 0 or time.perf_counter() - start < options.duration):
            t = time.perf_counter()
            result = self.clf.classify(frames[i % len(frames)])
            end_to_end.append((time.perf_counter() - t) * 1000)
            timings = result.timings
            self.samples["preprocess"].append(timings.preprocess_ms)
            self.samples["inference"].append(timings.inference_ms)
            self.samples["postprocess"].append(timings.postprocess_ms)
            i += 1
        self.seconds += time.perf_counter() - start
        self.classified += i
        self.samples["end_to_end"] += end_to_end
        self.round_p50.append(float(np.median(end_to_end)))

    def sustained(self, frames: Sequence[np.ndarray], seconds: float, window: float) -> tuple[dict, list[dict]]:
        """Classify without pause for ``seconds``; stage histograms (constant memory) and per-window figures."""
        from edgecls.runtime.latency import LatencyHistogram

        hists = {name: LatencyHistogram() for name in _STAGES}
        windows: list[dict] = []
        current = LatencyHistogram()
        start = window_start = time.perf_counter()
        i = 0
        while (now := time.perf_counter()) - start < seconds:
            result = self.clf.classify(frames[i % len(frames)])
            done = time.perf_counter()
            latency = (done - now) * 1000
            for name, value in (("end_to_end", latency), ("preprocess", result.timings.preprocess_ms),
                                ("inference", result.timings.inference_ms),
                                ("postprocess", result.timings.postprocess_ms)):
                hists[name].add(value)
            current.add(latency)
            i += 1
            if done - window_start >= window:
                windows.append(_window(current, done - start))
                current, window_start = LatencyHistogram(), done
        if current.count:
            windows.append(_window(current, time.perf_counter() - start))
        self.seconds, self.classified = time.perf_counter() - start, i
        return hists, windows


def _window(hist: Any, end_s: float) -> dict[str, float]:
    return {"end_s": round(end_s, 2), "frames": hist.count, "p50_ms": round(hist.percentile(50), 4),
            "p99_ms": round(hist.percentile(99), 4)}


def benchmark_many(models: Sequence[tuple[str | Path, int | None]], options: BenchOptions | None = None
                   ) -> list[BenchResult]:
    """Benchmark several models (each at a thread count) side by side.

    Every model is loaded and warmed up first; then ``options.rounds`` rounds each time the models
    in turn (interleaved, so machine noise hits all alike), or with ``sustained_s`` each model for
    that long. Batch throughput, accuracy and the fresh-process cold start follow per model.

    Raises:
        EdgeclsError: a model or image cannot be loaded (see Classifier.from_path).
        OptionError: contradictory options.
    """
    options = options or BenchOptions()
    frames, source = _frames(options)
    # operator profiles first, each in its own profiling session: a model without a profiler fails fast
    profiles = [[op.to_dict() for op in operator_profile(Path(path), threads, options)] if options.profile else []
                for path, threads in models]
    variants: list[_Variant] = []
    try:
        for path, threads in models:
            variants.append(_Variant(Path(path), threads, options))
        for v in variants:
            for i in range(options.warmup):
                v.clf.classify(frames[i % len(frames)])
        stages, windows = _measure(variants, frames, options)
        results = [_result(v, options, source, stages[k], windows.get(k, []), frames, variants[0])
                   for k, v in enumerate(variants)]
        for result, operators in zip(results, profiles, strict=True):
            result.operators = operators
    finally:
        for v in variants:
            v.clf.close()
    if options.cold_start:
        for result in results:
            result.cold_start = cold_start(Path(result.model), replace(options, threads=result.threads))
            result.peak_rss_mb = result.cold_start.pop("peak_rss_mb")
    return results


def _frames(options: BenchOptions) -> tuple[list[np.ndarray], str]:
    """The frames classified, and how the results name them. Raises ImageError for an unreadable image."""
    from edgecls.runtime.images import to_pixels

    if options.image is not None:
        return [to_pixels(options.image).array], str(options.image)
    return camera_frames(options.size), f"{options.size[0]}x{options.size[1]} BGR frames (8, rotating)"


def _measure(variants: list[_Variant], frames: list[np.ndarray], options: BenchOptions
             ) -> tuple[dict[int, dict[str, Any]], dict[int, list[dict]]]:
    """Each variant's per-stage latency statistics (and windows, when sustained): interleaved rounds, or
    each variant for ``sustained_s`` in turn."""
    from edgecls.bench.stats import LatencyStats

    windows: dict[int, list[dict]] = {}
    stages: dict[int, dict[str, Any]] = {}
    if options.sustained_s is not None:
        for k, v in enumerate(variants):
            hists, windows[k] = v.sustained(frames, options.sustained_s, options.window_s)
            stages[k] = {name: LatencyStats.of_histogram(h) for name, h in hists.items()}
        return stages, windows
    for _ in range(options.rounds):
        for v in variants:
            v.timed_round(frames, options)
    return {k: {name: LatencyStats.of(s) for name, s in v.samples.items()} for k, v in enumerate(variants)}, windows


def _result(v: _Variant, options: BenchOptions, source: str, stages: dict, windows: list[dict],
            frames: Sequence[np.ndarray], first: _Variant) -> BenchResult:
    b = v.clf.backend
    prov = v.clf.card.provenance
    result = BenchResult(
        model=str(v.path), format=prov.format or v.path.suffix.lstrip("."), quantization=prov.quantization or "?",
        float_nodes=prov.float_nodes,
        size_bytes=v.path.stat().st_size, backend=b.name, device=b.device, accelerators=list(b.accelerators),
        threads=getattr(b, "num_threads", v.threads), input=source, stages=stages,
        throughput_fps=v.classified / v.seconds if v.seconds else 0.0, peak_rss_mb=peak_rss_mb(),
        batch=options.batch, round_p50_ms=v.round_p50 if options.rounds > 1 else [],
        round_ratios=([mine / base for mine, base in zip(v.round_p50, first.round_p50, strict=True)]
                      if options.rounds > 1 else []),
        windows=windows,
    )
    if options.batch > 1:
        result.batch_throughput_fps = _batch_throughput(v.clf, frames, options.batch, max(3, options.runs // options.batch))
    if options.data is not None:
        from edgecls.evaluate import evaluate

        result.accuracy = evaluate(v.clf, options.data).top1
    return result


def operator_profile(path: Path, threads: int | None, options: BenchOptions, top: int = 10) -> list:
    """The ``top`` slowest operators over ``options.runs`` inferences of a prepared input tensor.

    Raises:
        OptionError: the model's backend has no operator profiler (LiteRT).
    """
    from edgecls.runtime.backends import BackendConfig, open_backend

    backend = open_backend(path, config=BackendConfig(num_threads=threads, device=options.device, profile=True),
                           backend=options.backend)
    try:
        shape = tuple(d or 1 for d in backend.input.shape)
        tensor = np.random.default_rng(0).integers(0, 256, shape).astype(backend.input.dtype)
        for _ in range(options.runs):
            backend.run(tensor)
        return backend.operator_times(top)
    finally:
        backend.close()


def _batch_throughput(clf, frames: Sequence[np.ndarray], batch: int, calls: int) -> float:
    """Images per second of ``classify_batch`` on ``batch`` frames per call."""
    items = [frames[i % len(frames)] for i in range(batch)]
    clf.classify_batch(items)
    start = time.perf_counter()
    for _ in range(calls):
        clf.classify_batch(items)
    return batch * calls / (time.perf_counter() - start)
