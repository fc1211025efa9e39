"""Latency statistics (milliseconds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

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

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
