"""Climb a format's quantization ladder until a file stays within the accuracy budget.

Order (each step only when the previous ones found nothing within budget):

1. full int8, each calibration variant of the format in turn; the first within budget is the answer
   (with the budget already met by the first one, this costs the one validation pass an export makes
   anyway: nothing is timed or converted twice);
2. selective int8 on the most accurate full-int8 variant: the layers with the worst quantization
   error (``Ladder.rank``) stay float, 1, 2, 4, … of them, then the fewest that hold by bisection;
3. int16 activations, only where they run faster than fp32 here (timed before validating);
4. fp16, then fp32.

Every decision depends on the model, the images and the calibration (all deterministic), never on
timing, except two speed guards that compare against fp32 with a wide margin: a selective or int16
file must run faster than fp32, an fp16 file at most ``FLOAT_SLOWER`` times slower.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgecls.converters.errors import ExportError
from edgecls.converters.formats.base import ConvertJob
from edgecls.converters.ladder.budget import Budget
from edgecls.converters.ladder.rungs import Ladder, LayerError, Rung
from edgecls.converters.validate import Validation
from edgecls.runtime.errors import EdgeclsError

__all__ = ["Candidate", "LadderResult", "climb", "FLOAT_SLOWER", "MAX_FLOAT_SHARE"]

FLOAT_SLOWER = 1.25
"""An fp16 file more than this many times slower than fp32 here is passed over for fp32."""
MAX_FLOAT_SHARE = 0.5
"""The selective rung keeps at most this share of the ranked layers in float."""


@dataclass
class Candidate:
    """One file the ladder built: its rung, float layers, validation and speed."""

    rung: str
    kind: str
    float_layers: tuple[str, ...] = ()
    validation: Validation | None = None
    latency_ms: float | None = None
    size_bytes: int = 0
    within: bool = False
    note: str | None = None
    """Why it was not used, or what went wrong building it."""

    def to_dict(self) -> dict[str, Any]:
        v = self.validation
        return {
            "rung": self.rung, "kind": self.kind, "float_layers": list(self.float_layers),
            "within_budget": self.within, "size_bytes": self.size_bytes,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 4),
            "top1_agreement": None if v is None else round(v.top1_agreement, 6),
            "accuracy": None if v is None or v.accuracy is None else round(v.accuracy, 6),
            "accuracy_drop_pt": None if v is None or v.accuracy_drop is None else round(v.accuracy_drop * 100, 4),
            "note": self.note,
        }


@dataclass
class LadderResult:
    """What the climb chose (``chosen`` and its bytes ``data``; None when no rung held), everything it
    tried, and why it stopped."""

    budget: Budget
    chosen: Candidate | None = None
    data: bytes | None = None
    candidates: list[Candidate] = field(default_factory=list)
    reason: str = ""
    fp32_latency_ms: float | None = None
    worst_layers: list[LayerError] = field(default_factory=list)
    fallback: Candidate | None = None
    """When no rung held: the most accurate full-int8 candidate, whose bytes are ``data``."""

    @property
    def written(self) -> Candidate | None:
        """The candidate whose bytes are ``data``: the chosen one, else the fallback."""
        return self.chosen or self.fallback

    def to_dict(self) -> dict[str, Any]:
        """The card's ``provenance.quantization`` and the report's ``quantization`` entry of a file."""
        c = self.chosen
        return {
            "rung": None if c is None else c.rung,
            "float_layers": [] if c is None else list(c.float_layers),
            "budget": {"max_drop": self.budget.max_drop, "min_agreement": self.budget.min_agreement},
            "reason": self.reason,
            "fp32_latency_ms": None if self.fp32_latency_ms is None else round(self.fp32_latency_ms, 4),
            "candidates": [k.to_dict() for k in self.candidates],
            "worst_layers": [w.to_dict() for w in self.worst_layers[:10]],
        }


class _Climb:
    def __init__(self, ladder: Ladder, job: ConvertJob, budget: Budget, evaluate: Callable[[bytes], Validation],
                 time_file: Callable[[bytes], float], step: Callable[[str], None]) -> None:
        self.ladder, self.job, self.budget = ladder, job, budget
        self.evaluate, self.time_file, self.step = evaluate, time_file, step
        self.result = LadderResult(budget)

    def build(self, rung: Rung, base: str, layers: Sequence[str] = ()) -> tuple[Candidate, bytes | None]:
        label = rung.name + (f" ({len(layers)} float layers)" if layers else "")
        self.step(f"quantization ladder: {self.ladder.format} {label}")
        candidate = Candidate(rung.name, rung.kind, tuple(layers))
        self.result.candidates.append(candidate)
        try:
            data = rung.build(self.job, base, layers)
        except EdgeclsError as exc:  # a rung the converter cannot build is passed over, and said so
            candidate.note = f"could not be built: {exc}"
            return candidate, None
        candidate.size_bytes = len(data)
        return candidate, data

    def validate(self, candidate: Candidate, data: bytes) -> bool:
        candidate.validation = self.evaluate(data)
        candidate.within = self.budget.holds(candidate.validation)
        return candidate.within

    def timed(self, candidate: Candidate, data: bytes) -> float:
        if candidate.latency_ms is None:
            candidate.latency_ms = self.time_file(data)
        return candidate.latency_ms

    def fp32_ms(self) -> float:
        if self.result.fp32_latency_ms is None:
            fp32 = self.ladder.rung("fp32")
            self.result.fp32_latency_ms = self.time_file(fp32.build(self.job, "fp32", ()))
        return self.result.fp32_latency_ms

    def done(self, candidate: Candidate, data: bytes, reason: str) -> LadderResult:
        self.result.chosen, self.result.data, self.result.reason = candidate, data, reason
        return self.result


def climb(ladder: Ladder, job: ConvertJob, budget: Budget, evaluate: Callable[[bytes], Validation],
          time_file: Callable[[bytes], float], step: Callable[[str], None] = lambda message: None) -> LadderResult:
    """Climb ``ladder`` for ``job`` until a file holds ``budget``.

    Args:
        evaluate: validates a candidate's bytes against Keras (the export's own validation).
        time_file: median engine milliseconds of a candidate's bytes on this machine.

    Returns:
        The :class:`LadderResult`; ``chosen`` is None when no rung held (the reason says which rung it
        reached and why it stopped).

    Raises:
        ExportError: the ladder has no full-int8 or no fp32 rung.
    """
    if not ladder.of_kind("int8") or not any(r.name == "fp32" for r in ladder.rungs):
        raise ExportError(f"{ladder.format}: a quantization ladder needs int8 and fp32 rungs")
    c = _Climb(ladder, job, budget, evaluate, time_file, step)
    best: tuple[Candidate, bytes] | None = None
    for index, rung in enumerate(ladder.of_kind("int8")):
        candidate, data = c.build(rung, rung.name)
        if data is None:
            continue
        if c.validate(candidate, data):
            if index > 0:
                c.timed(candidate, data)
            return c.done(candidate, data, f"full int8 ({rung.name}) is within budget ({budget.describe()})")
        if best is None or _accuracy_key(candidate) > _accuracy_key(best[0]):
            best = (candidate, data)
    if best is not None:
        c.timed(*best)
        found = _selective(c, best[0].rung)
        if found is not None:
            return found
    for rung in ladder.of_kind("int16"):
        candidate, data = c.build(rung, rung.name)
        if data is None:
            continue
        if c.timed(candidate, data) >= c.fp32_ms():
            candidate.note = f"runs slower than fp32 here ({candidate.latency_ms:.3f} vs {c.fp32_ms():.3f} ms): not used"
            continue
        if c.validate(candidate, data):
            return c.done(candidate, data, f"{rung.name} is within budget and faster than fp32")
    last: Candidate | None = None
    for rung in ladder.of_kind("float"):
        candidate, data = c.build(rung, rung.name)
        if data is None:
            continue
        last = candidate
        slow = rung.name != "fp32" and c.timed(candidate, data) > FLOAT_SLOWER * c.fp32_ms()
        if slow:
            candidate.note = f"runs {candidate.latency_ms / c.fp32_ms():.1f}x slower than fp32 here: not used"
            continue
        if c.validate(candidate, data):
            c.timed(candidate, data)
            return c.done(candidate, data, f"no integer rung held the budget ({budget.describe()}); {rung.name} does")
    if best is not None:  # nothing held: the most accurate full-int8 file is what gets written, marked failed
        c.result.fallback, c.result.data = best
    reached = last.rung if last is not None else "none"
    c.result.reason = (f"no rung within budget ({budget.describe()}): reached {reached}"
                       + (f", top-1 agreement {last.validation.top1_agreement:.4f}" if last and last.validation else ""))
    return c.result


def _accuracy_key(candidate: Candidate) -> tuple[float, float]:
    v = candidate.validation
    return (v.accuracy if v.accuracy is not None else 0.0, v.top1_agreement) if v is not None else (-1.0, -1.0)


def _selective(c: _Climb, base: str) -> LadderResult | None:
    """The fewest worst-ranked layers in float that hold the budget: doubling, then bisection."""
    rungs = c.ladder.of_kind("selective")
    if not rungs:
        return None
    rung = rungs[0]
    c.step(f"quantization ladder: ranking {c.ladder.format} layers by quantization error")
    ranked = c.ladder.rank(c.job, base)
    c.result.worst_layers = ranked
    layers = [r.float_nodes for r in ranked]
    cap = max(1, int(len(layers) * MAX_FLOAT_SHARE))
    tried: dict[int, tuple[Candidate, bytes | None]] = {}

    def attempt(k: int) -> bool:
        candidate, data = c.build(rung, base, [node for nodes in layers[:k] for node in nodes])
        tried[k] = (candidate, data)
        return data is not None and c.validate(candidate, data)

    low, high, k = 0, None, 1
    while layers:
        if attempt(k):
            high = k
            break
        low = k
        if k >= cap:
            break
        k = min(k * 2, cap)
    if high is None:
        return None
    while high - low > 1:
        mid = (low + high) // 2
        if attempt(mid):
            high = mid
        else:
            low = mid
    candidate, data = tried[high]
    if c.timed(candidate, data) >= c.fp32_ms():
        candidate.note = f"runs slower than fp32 here ({candidate.latency_ms:.3f} vs {c.fp32_ms():.3f} ms): not used"
        return None
    return c.done(candidate, data, f"full int8 missed the budget; the {high} of {len(layers)} layers worst by "
                                   f"quantization error kept in float hold it")
