"""A ratio measured over rounds in several fresh processes, with its spread, re-run once when unstable.

Each *attempt* runs ``processes`` probe processes one after another (each does several rounds that
interleave its variants); every round gives one value of the ratio. The reported value is the median
over all rounds, next to their min/median/max. When the rounds range over more than
``UNSTABLE_PCT`` of their median, the whole attempt is run again; if the second attempt is no better,
both are pooled and the ratio is flagged ``stable: false``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable

from benchmarks.suite.timing import module, root_env, run_json
from edgecls.bench.measure import spread_of

__all__ = ["child_rounds", "over_processes"]


def child_rounds(spec: dict, engines: tuple[str, ...] = ()) -> list[dict[str, float]]:
    """Run ``benchmarks.suite.child`` with ``spec`` in a fresh process and return its rounds.

    Raises:
        RuntimeError: the probe failed, or its process held TensorFlow/Keras or an engine outside
            ``engines`` (the probe would not be runtime-only).
    """
    out = run_json(module("benchmarks.suite.child", json.dumps(spec)), env=root_env())
    extra = set(out["modules"]) - set(engines)
    if extra:
        raise RuntimeError(f"probe {spec['probe']} was not runtime-only: it held {sorted(extra)}")
    return out["rounds"]


def over_processes(attempt: Callable[[], list[dict[str, float]]], ratio: Callable[[dict[str, float]], float],
                   processes: int = 2, unstable_pct: float = 10.0) -> dict:
    """Measure ``ratio`` over the rounds of ``processes`` calls of ``attempt`` (one fresh process, or one
    pair of processes whose rounds are zipped, per call).

    Returns ``value`` (median of the per-round ratios), ``spread`` (min/median/max/range_pct/stable),
    ``figures`` (median of each per-round figure), ``rounds`` (how many the value pools), ``attempts``
    and ``processes`` (calls of ``attempt`` in all).
    """
    def one_attempt() -> list[dict[str, float]]:
        return [r for _ in range(processes) for r in attempt()]

    rounds, attempts = one_attempt(), 1
    spread = spread_of([ratio(r) for r in rounds])
    if spread and spread["range_pct"] > unstable_pct:
        again = one_attempt()
        attempts = 2
        retry = spread_of([ratio(r) for r in again])
        rounds = again if retry and retry["range_pct"] <= unstable_pct else rounds + again
        spread = spread_of([ratio(r) for r in rounds])
    values = [ratio(r) for r in rounds]
    figures = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]
               if isinstance(rounds[0][key], (int, float))}
    return {"value": statistics.median(values), "spread": spread, "figures": figures, "rounds": len(rounds),
            "attempts": attempts, "processes": processes * attempts}
