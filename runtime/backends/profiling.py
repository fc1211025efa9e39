"""Per-operator timings of a model: where inference time goes (``edgecls bench --profile``).

ONNX Runtime has a profiler (``SessionOptions.enable_profiling``): a Chrome-trace JSON file with one
``Node`` event per kernel run, which :func:`slowest_operators` folds into totals per node. LiteRT's
Python API has none (only its C++ ``benchmark_model --enable_op_profiling=true`` does), so a LiteRT
backend asked to profile raises :class:`~edgecls.runtime.errors.OptionError` saying so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["OperatorTime", "slowest_operators"]


@dataclass(frozen=True)
class OperatorTime:
    """One graph node's share of inference time over the profiled runs."""

    node: str
    op_type: str
    calls: int
    total_ms: float
    mean_ms: float
    share: float
    """Fraction of the summed kernel time of every node."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slowest_operators(trace: str | Path, top: int = 10) -> list[OperatorTime]:
    """The ``top`` nodes by total kernel time in an ONNX Runtime profile (the file is left in place)."""
    with open(trace) as handle:
        events = json.load(handle)
    total_us: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    op_type: dict[str, str] = {}
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        node = event["name"].removesuffix("_kernel_time")
        total_us[node] += float(event.get("dur", 0))
        calls[node] += 1
        op_type[node] = event.get("args", {}).get("op_name", "?")
    overall = sum(total_us.values()) or 1.0
    ranked = sorted(total_us, key=total_us.get, reverse=True)[:top]
    return [OperatorTime(node, op_type[node], calls[node], total_us[node] / 1000, total_us[node] / 1000 / calls[node],
                         total_us[node] / overall) for node in ranked]
