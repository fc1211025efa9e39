"""Side-by-side timing helpers: medians of interleaved runs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["median_ms", "interleaved", "run_json"]


def median_ms(fn: Callable[[int], object], runs: int, warmup: int = 10) -> float:
    """Median milliseconds of ``fn(i)`` over ``runs`` calls after ``warmup`` calls."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(runs):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[int], object]], runs: int, rounds: int = 5, warmup: int = 10) -> dict[str, float]:
    """Median ms of each function, measured in alternating rounds so machine noise hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        for i in range(warmup):
            fn(i)
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            for i in range(per_round):
                t = time.perf_counter()
                fn(i)
                samples[name].append((time.perf_counter() - t) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def run_json(argv: list[str], timeout: int = 600, env: dict | None = None) -> dict:
    """Run a process that prints one JSON object on its last line. Raises RuntimeError on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


PYTHON = sys.executable


def run_measured(argv: list[str], stdout: Path, stderr: Path, *, cwd: Path | None = None,
                 env: dict | None = None) -> tuple[int, float, float]:
    """Run ``argv`` with its output in two files; returns (exit code, seconds, peak RSS MB of that process).

    The peak comes from ``wait4``; a child's ru_maxrss starts from its parent's peak at fork (Linux keeps
    it across exec), so call this from a small parent.
    """
    import os

    t0 = time.perf_counter()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0, usage.ru_maxrss / 1024
