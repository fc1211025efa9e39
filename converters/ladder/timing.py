"""How fast candidate files run here: the engine call alone, in a fresh runtime-only process.

The exporting process holds TensorFlow, the Keras model and its threads: measured there, int8 and
fp32 LiteRT files of a MobileNetV2 read 3.28 vs 4.47 ms against 1.85 vs 3.45 ms in a process that
holds only the runtime, as a deployment does. So the files are timed in a child process (no
TensorFlow, no Keras), alternating call by call.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecls.converters.errors import ExportError

__all__ = ["engine_latencies_ms"]

WARMUP = 5
RUNS = 60
TIMEOUT_S = 600


def engine_latencies_ms(paths: Sequence[Path], runs: int = RUNS) -> list[float]:
    """Median milliseconds of one single-image engine call of each model, the models alternating call
    by call in a fresh runtime-only process (their ratio is what the ladder decides on).

    Raises:
        ExportError: the timing process failed (a file does not load, or it ran past ``TIMEOUT_S``).
    """
    from edgecls.runtime.probe import run_probe

    return run_probe(["-c", "from edgecls.converters.ladder.timing import main; main()", str(runs), *map(str, paths)],
                     what="timing the quantization candidates", timeout_s=TIMEOUT_S, error=ExportError)


def measure(paths: Sequence[Path], runs: int) -> list[float]:
    """In this process: each model's median call time, alternating (what the child process runs)."""
    from edgecls.runtime.backends import open_backend

    backends = []
    try:
        for path in paths:
            backends.append(open_backend(Path(path)))
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


def main() -> None:
    """The child: ``RUNS PATH...`` → one JSON line, the medians."""
    print(json.dumps(measure(sys.argv[2:], int(sys.argv[1]))))
