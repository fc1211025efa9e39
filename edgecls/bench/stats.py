"""Latency statistics (milliseconds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgecls.runtime.latency import LatencyHistogram

__all__ = ["LatencyStats"]


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a latency sample in milliseconds (percentiles by linear interpolation, as numpy's default)."""

    count: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> LatencyStats:
        """Raises ValueError on an empty sample."""
        values = np.asarray(samples_ms, dtype=np.float64)
        if values.size == 0:
            raise ValueError("no latency samples")
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(int(values.size), float(values.mean()), float(values.std()), float(values.min()),
                   float(p50), float(p90), float(p99), float(values.max()))

    @classmethod
    def of_histogram(cls, hist: LatencyHistogram) -> LatencyStats:
        """From a constant-memory histogram (percentiles within 1 %). Raises ValueError when it is empty."""
        if not hist.count:
            raise ValueError("no latency samples")
        return cls(hist.count, hist.mean_ms, hist.std_ms, hist.min_ms, hist.percentile(50), hist.percentile(90),
                   hist.percentile(99), hist.max_ms)

    def to_dict(self) -> dict[str, float | str]:
        """The fields, all in milliseconds but ``count``, and ``"unit": "ms"`` saying so."""
        return {**asdict(self), "unit": "ms"}
