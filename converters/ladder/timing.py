"""How fast a candidate file runs here: the engine call alone, through the runtime (no TensorFlow)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

__all__ = ["engine_latency_ms"]

WARMUP = 5
RUNS = 40


def engine_latency_ms(path: Path, runs: int = RUNS) -> float:
    """Median milliseconds of one single-image engine call of the model at ``path``.

    Raises:
        EdgeclsError: the file does not load.
    """
    from edgecls.runtime.backends import open_backend

    backend = open_backend(path)
    try:
        shape = tuple(1 if d is None else d for d in backend.input.shape)
        batch = np.full(shape, 128, backend.input.dtype)
        for _ in range(WARMUP):
            backend.run(batch)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            backend.run(batch)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        backend.close()
