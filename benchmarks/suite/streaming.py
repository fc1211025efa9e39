"""Stream throughput in video mode: the decode thread against the sequential loop and the bound.

The bound is 1 / max(decode, classify): with decoding on its own thread, a pipeline can go no
faster than its slower stage. Each stage is timed alone on the same video, then the sequential
loop (read, classify, read, ...) and ``Classifier.stream`` run over it; the four passes are
repeated in alternation and medians taken.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2
import numpy as np

__all__ = ["write_video", "stream_throughput"]


def write_video(path: Path, frames: list[np.ndarray], count: int, fps: float = 30.0) -> Path:
    """An MJPG video of ``count`` frames cycling through ``frames`` (BGR, all one size)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(count):
        writer.write(frames[i % len(frames)])
    writer.release()
    return path


def _decode(video: Path, keep: bool) -> tuple[list[np.ndarray], float]:
    """The frames (when ``keep``) and the seconds a decode-only pass took. Timed passes drop each
    frame, as a stream does: keeping hundreds of fresh 640x480 buffers costs page faults."""
    capture = cv2.VideoCapture(str(video))
    frames, start = [], time.perf_counter()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if keep:
            frames.append(frame)
    elapsed = time.perf_counter() - start
    capture.release()
    return frames, elapsed


def stream_throughput(classifier, video: Path, repeats: int = 5) -> dict:
    """Frames per second of each way through ``video``, the stage times in ms per frame, and the two
    ratios. Each round times all four passes back to back; the ratios are computed per round (so
    drift in the machine's load cancels) and their medians reported; ``per_round`` holds every round."""
    frames, _ = _decode(video, keep=True)
    n = len(frames)
    for frame in frames[:10]:
        classifier.classify(frame)  # warm-up
    rounds = []
    for _ in range(repeats):
        decode_s = _decode(video, keep=False)[1]
        start = time.perf_counter()
        for frame in frames:
            classifier.classify(frame)
        classify_s = time.perf_counter() - start
        start = time.perf_counter()
        capture = cv2.VideoCapture(str(video))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            classifier.classify(frame)
        capture.release()
        sequential_s = time.perf_counter() - start
        start = time.perf_counter()
        with classifier.stream(video) as stream:
            count = sum(1 for _ in stream)
        stream_s = time.perf_counter() - start
        if count != n:
            raise RuntimeError(f"stream classified {count} of {n} frames")
        rounds.append({"decode_ms": decode_s / n * 1000, "classify_ms": classify_s / n * 1000,
                       "sequential_fps": n / sequential_s, "stream_fps": n / stream_s,
                       "bound_fps": n / max(decode_s, classify_s),
                       "over_sequential": sequential_s / stream_s, "over_bound": max(decode_s, classify_s) / stream_s})
    out = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    return {"frames": n, "rounds": repeats} | out | {"per_round": rounds}
