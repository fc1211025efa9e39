"""How fast a candidate file runs here: the engine call alone, through the runtime (no TensorFlow)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["engine_latencies_ms"]

WARMUP = 5
RUNS = 60


def engine_latencies_ms(paths: Sequence[Path], runs: int = RUNS) -> list[float]:
    """Median milliseconds of one single-image engine call of each model, the models alternating call
    by call (their ratio is what the ladder decides on: alternating keeps a busy moment from landing
    on one of them only).

    Raises:
        EdgeclsError: a file does not load.
    """
    from edgecls.runtime.backends import open_backend

    backends = []
    try:
        for path in paths:
            backends.append(open_backend(path))
        calls = []
        for backend in backends:
            shape = tuple(1 if d is None else d for d in backend.input.shape)
            batch = np.full(shape, 128, backend.input.dtype)
            calls.append(lambda backend=backend, batch=batch: backend.run(batch))
        for call in calls:
            for _ in range(WARMUP):
                call()
        times: list[list[float]] = [[] for _ in calls]
        for _ in range(runs):
            for i, call in enumerate(calls):
                t0 = time.perf_counter()
                call()
                times[i].append((time.perf_counter() - t0) * 1000)
        return [statistics.median(t) for t in times]
    finally:
        for backend in backends:
            backend.close()
