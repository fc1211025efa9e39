"""Climb a format's quantization ladder until a file stays within the accuracy budget.

Order (each step only when the previous ones found nothing within budget):

1. full int8, each calibration variant of the format in turn; the first within budget is the answer
   (with the budget already met by the first one, this costs the one validation pass an export makes
   anyway, and one timing against fp32: an int8 file over ``INT8_SLOWER`` times fp32's time gives way
   to the float rungs, step 4);
2. selective int8 on the most accurate full-int8 variant: the layers with the worst quantization
   error (``Ladder.rank``) stay float, 1, 2, 4, … of them, then the fewest that hold by bisection;
   skipped when that variant itself runs over ``MIN_GAIN`` of fp32's time (float layers only slow it);
   the doubling gives up after ``PLATEAU`` doublings in a row that do not raise agreement;
3. int16 activations, only where they run faster than fp32 here (timed before validating);
4. fp16, then fp32.

Every decision depends on the model, the images and the calibration (all deterministic), never on
timing, except two speed guards, each measured alternating with fp32 and judged with a margin: a
selective or int16 file must run in at most ``MIN_GAIN`` of fp32's time, an fp16 file at most
``FLOAT_SLOWER`` times fp32's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from edgecls.converters.errors import ExportError
from edgecls.converters.formats.base import ConvertJob
from edgecls.converters.ladder.budget import Budget
from edgecls.converters.ladder.rungs import Ladder, LayerError, Rung
from edgecls.converters.validate import Validation
from edgecls.runtime.errors import EdgeclsError

__all__ = ["Candidate", "LadderResult", "climb", "FLOAT_SLOWER", "INT8_SLOWER", "MIN_GAIN", "MAX_FLOAT_SHARE", "MAX_RUNGS",
           "PLATEAU", "rung_level"]

MAX_RUNGS = ("int8", "int8+float", "int16", "fp16", "fp32")
"""How far a climb may go (``max_rung``): full int8 only, then float layers, int16 activations, fp16, fp32."""

FLOAT_SLOWER = 1.25
"""An fp16 file more than this many times slower than fp32 here is passed over for fp32."""
INT8_SLOWER = 1.1
"""A full-int8 file within budget that runs over this many times fp32's time here gives way to a float
file: on this x86 CPU with AVX-512, int8 gains little on small models, and nothing on some."""
MIN_GAIN = 0.95
"""A selective or int16 file must run in at most this share of fp32's time here to be chosen: one as
fast as fp32 is not worth its accuracy risk, and a margin keeps timing noise from deciding."""
BISECT_SLACK = 8
"""Bisection stops once the float-layer count is known within 1/BISECT_SLACK of itself."""
PLATEAU = 2
"""The doubling stops after this many doublings in a row that do not raise top-1 agreement (EfficientNetB0's
ONNX file hovered at 0.955-0.975 from 1 to 146 float nodes: nine candidates, 75 s, none within budget)."""
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
    vs_fp32: float | None = None
    """Its latency over fp32's, both measured in one alternating run."""
    fp32_ms: float | None = None
    """fp32's latency in that same run (what ``vs_fp32`` divides by)."""
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
            "vs_fp32": None if self.vs_fp32 is None else round(self.vs_fp32, 3),
            "fp32_latency_ms": None if self.fp32_ms is None else round(self.fp32_ms, 4),
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
    """fp32's time in the run that timed the chosen file (else the first run that timed one)."""
    worst_layers: list[LayerError] = field(default_factory=list)
    fallback: Candidate | None = None
    """When no rung held: the most accurate full-int8 candidate, whose bytes are ``data``."""

    @property
    def float_layers(self) -> tuple[str, ...]:
        """The nodes the chosen file keeps in float (none when nothing was chosen)."""
        return self.chosen.float_layers if self.chosen is not None else ()

    @property
    def written(self) -> Candidate | None:
        """The candidate whose bytes are ``data``: the chosen one, else the fallback."""
        return self.chosen or self.fallback

    def to_dict(self) -> dict[str, Any]:
        """The card's ``provenance.quantization`` and the report's ``quantization`` entry of a file."""
        c = self.chosen
        return {
            "rung": None if c is None else c.rung,
            "float_layers": list(self.float_layers),
            "budget": {"max_drop": self.budget.max_drop, "min_agreement": self.budget.min_agreement},
            "reason": self.reason,
            "fp32_latency_ms": None if self.fp32_latency_ms is None else round(self.fp32_latency_ms, 4),
            "candidates": [k.to_dict() for k in self.candidates],
            "worst_layers": [w.to_dict() for w in self.worst_layers[:10]],
        }


class _Climb:
    def __init__(self, ladder: Ladder, job: ConvertJob, budget: Budget, evaluate: Callable[[bytes], Validation],
                 time_files: Callable[[list[bytes]], list[float]] | None, step: Callable[[str], None]) -> None:
        self.ladder, self.job, self.budget = ladder, job, budget
        self.evaluate, self.time_files, self.step = evaluate, time_files, step
        self.result = LadderResult(budget)
        self._fp32: bytes | None = None

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
        """The candidate's latency over fp32's (measured alternating with fp32, once); 0 when the climb
        does not time (every speed guard then passes)."""
        if self.time_files is None:
            return 0.0
        if candidate.vs_fp32 is None:
            if self._fp32 is None:
                self._fp32 = self.ladder.rung("fp32").build(self.job, "fp32", ())
            if data == self._fp32:
                mine = fp32 = self.time_files([data])[0]
            else:
                mine, fp32 = self.time_files([data, self._fp32])
            candidate.latency_ms, candidate.vs_fp32, candidate.fp32_ms = mine, mine / fp32, fp32
            if self.result.fp32_latency_ms is None:
                self.result.fp32_latency_ms = fp32
        return candidate.vs_fp32

    def slower_than(self, candidate: Candidate, data: bytes, limit: float) -> bool:
        """Whether the candidate runs over ``limit`` times fp32's time, confirmed by a second timing in a
        new process before it counts against the candidate (a busy moment on a small machine read
        MobileNetV3Small's int8 file at 3x fp32's time once, and at 1.0x the next time)."""
        if self.timed(candidate, data) <= limit:
            return False
        first = (candidate.latency_ms, candidate.vs_fp32, candidate.fp32_ms)
        candidate.vs_fp32 = None
        if self.timed(candidate, data) > first[1]:  # the faster reading stands, with its own fp32 reading
            candidate.latency_ms, candidate.vs_fp32, candidate.fp32_ms = first
        return candidate.vs_fp32 > limit

    def done(self, candidate: Candidate, data: bytes, reason: str) -> LadderResult:
        self.result.chosen, self.result.data, self.result.reason = candidate, data, reason
        if candidate.fp32_ms is not None:  # fp32's time in the run that timed the chosen file
            self.result.fp32_latency_ms = candidate.fp32_ms
        return self.result


def rung_level(rung: Rung) -> int:
    """The rung's place in :data:`MAX_RUNGS` (int16 rungs of any name are ``int16``)."""
    return {"int8": 0, "selective": 1, "int16": 2}.get(rung.kind, 3 if rung.name == "fp16" else 4)


def climb(ladder: Ladder, job: ConvertJob, budget: Budget, evaluate: Callable[[bytes], Validation],
          time_files: Callable[[list[bytes]], list[float]] | None, step: Callable[[str], None] = lambda message: None,
          max_rung: str = "fp32") -> LadderResult:
    """Climb ``ladder`` for ``job`` until a file holds ``budget``, no further than ``max_rung``.

    Args:
        evaluate: validates a candidate's bytes against Keras (the export's own validation).
        time_files: median engine milliseconds of each of several files' bytes on this machine, measured
            alternating (a candidate is timed with fp32, and judged on the ratio); None: decide on
            accuracy alone (this machine is not the one the model will run on).
        max_rung: one of :data:`MAX_RUNGS`: rungs above it are not tried.

    Returns:
        The :class:`LadderResult`; ``chosen`` is None when no rung held (the reason says which rung it
        reached and why it stopped).

    Raises:
        ExportError: the ladder has no full-int8 or no fp32 rung.
    """
    if not ladder.of_kind("int8") or not any(r.name == "fp32" for r in ladder.rungs):
        raise ExportError(f"{ladder.format}: a quantization ladder needs int8 and fp32 rungs")
    if max_rung not in MAX_RUNGS:
        raise ExportError(f"max_rung must be one of {', '.join(MAX_RUNGS)}, got {max_rung!r}")
    top = MAX_RUNGS.index(max_rung)
    ladder = replace(ladder, rungs=tuple(r for r in ladder.rungs if rung_level(r) <= top or r.name == "fp32"))
    allowed = {r.name for r in ladder.rungs if rung_level(r) <= top}
    c = _Climb(ladder, job, budget, evaluate, time_files, step)
    done, best, slow_int8 = _full_int8(c, ladder, budget)
    if done is None and best is not None and not slow_int8 and top >= MAX_RUNGS.index("int8+float"):
        done = _with_float_layers(c, ladder, best)
    if done is None and not slow_int8:
        done = _int16(c, ladder, allowed)
    if done is None:
        done = _float(c, ladder, allowed, budget, slow_int8)
    return done if done is not None else _failed(c, best, max_rung, budget)


def _full_int8(c: _Climb, ladder: Ladder, budget: Budget) -> tuple[LadderResult | None, tuple | None, bool]:
    """The full-int8 rungs in turn: the first within budget (and not slower than fp32) is the answer; else
    the most accurate one, and whether a rung within budget was only too slow."""
    best: tuple[Candidate, bytes] | None = None
    for rung in ladder.of_kind("int8"):
        candidate, data = c.build(rung, rung.name)
        if data is None:
            continue
        if c.validate(candidate, data):
            if not c.slower_than(candidate, data, INT8_SLOWER):
                return c.done(candidate, data, f"full int8 ({rung.name}) is within budget ({budget.describe()})"), \
                    best, False
            candidate.note = f"within budget, but runs {candidate.vs_fp32:.2f}x fp32's time here: a float file is faster"
            return None, (candidate, data), True
        if best is None or _accuracy_key(candidate) > _accuracy_key(best[0]):
            best = (candidate, data)
    return None, best, False


def _with_float_layers(c: _Climb, ladder: Ladder, best: tuple[Candidate, bytes]) -> LadderResult | None:
    """The selective rung (int8 with the worst layers in float), unless full int8 is already too slow."""
    if c.timed(*best) > MIN_GAIN:
        # float nodes only add to full int8's time: a selective file cannot meet MIN_GAIN either
        c.step(f"quantization ladder: {ladder.format} int8 runs {best[0].vs_fp32:.2f}x fp32's time here; "
               "no float layers tried")
        best[0].note = (f"runs {best[0].vs_fp32:.2f}x fp32's time here: int8 with float layers would be no "
                        "faster than fp32, not tried")
        return None
    return _selective(c, best[0].rung)


def _int16(c: _Climb, ladder: Ladder, allowed: set[str]) -> LadderResult | None:
    """int16 activations, used only when within budget and faster than fp32 here."""
    for rung in (r for r in ladder.of_kind("int16") if r.name in allowed):
        candidate, data = c.build(rung, rung.name)
        if data is None:
            continue
        if c.slower_than(candidate, data, MIN_GAIN):
            candidate.note = f"runs {candidate.vs_fp32:.2f}x fp32's time here: not used"
            continue
        if c.validate(candidate, data):
            return c.done(candidate, data, f"{rung.name} is within budget and faster than fp32")
    return None


def _float(c: _Climb, ladder: Ladder, allowed: set[str], budget: Budget, slow_int8: bool) -> LadderResult | None:
    """fp16, then fp32: the first within budget (fp16 only when not slower than fp32 here)."""
    for rung in (r for r in ladder.of_kind("float") if r.name in allowed):
        candidate, data = c.build(rung, rung.name)
        if data is None:
            continue
        if rung.name != "fp32" and c.slower_than(candidate, data, FLOAT_SLOWER):
            candidate.note = f"runs {candidate.vs_fp32:.2f}x fp32's time here: not used"
            continue
        if c.validate(candidate, data):
            c.timed(candidate, data)
            why = ("full int8 is within budget but slower than fp32 here" if slow_int8
                   else f"no integer rung held the budget ({budget.describe()})")
            return c.done(candidate, data, f"{why}; {rung.name} does")
    return None


def _failed(c: _Climb, best: tuple[Candidate, bytes] | None, max_rung: str, budget: Budget) -> LadderResult:
    """Nothing held: the most accurate full-int8 file is what gets written, marked failed, with why."""
    if best is not None:
        c.result.fallback, c.result.data = best
    tried = [k for k in c.result.candidates if k.validation is not None]
    reached = tried[-1] if tried else None
    c.result.reason = (f"no rung up to {max_rung} held the budget ({budget.describe()}); the last tried, "
                       f"{_label(reached)}, reached {_figures(reached)}" if reached else
                       f"no rung up to {max_rung} could be built")
    return c.result


def _label(candidate: Candidate) -> str:
    return candidate.rung + (f" with {len(candidate.float_layers)} float nodes" if candidate.float_layers else "")


def _figures(candidate: Candidate) -> str:
    v = candidate.validation
    drop = "" if v.accuracy_drop is None else f", {v.accuracy_drop * 100:+.2f} pt against Keras"
    return f"top-1 agreement {v.top1_agreement:.4f}{drop}"


def _accuracy_key(candidate: Candidate) -> tuple[float, float]:
    v = candidate.validation
    return (v.accuracy if v.accuracy is not None else 0.0, v.top1_agreement) if v is not None else (-1.0, -1.0)


def _selective(c: _Climb, base: str) -> LadderResult | None:
    """The fewest worst-ranked layers in float that hold the budget (within an eighth): doubling, then
    bisection."""
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
    held: dict[tuple[str, ...], bool] = {}

    def attempt(k: int) -> bool:
        # regions of neighbouring layers overlap: each node once, in rank order
        nodes = tuple(dict.fromkeys(node for region in layers[:k] for node in region))
        if nodes in held:  # another count of layers gave these same nodes: built and validated already
            tried[k] = next(t for t in tried.values() if t[0].float_layers == nodes)
            return held[nodes]
        candidate, data = c.build(rung, base, list(nodes))
        tried[k] = (candidate, data)
        held[nodes] = data is not None and c.validate(candidate, data)
        return held[nodes]

    low, high, k = 0, None, 1
    best, flat = -1.0, 0
    while layers:
        if attempt(k):
            high = k
            break
        low = k
        agreement = tried[k][0].validation.top1_agreement if tried[k][0].validation is not None else -1.0
        flat = 0 if agreement > best else flat + 1
        best = max(best, agreement)
        if flat >= PLATEAU:
            tried[k][0].note = f"agreement did not rise over {PLATEAU} doublings: no more float layers tried"
        if k >= cap or flat >= PLATEAU:
            break
        k = min(k * 2, cap)
    if high is None:
        return None
    while high - low > max(1, high // BISECT_SLACK):  # within an eighth of the fewest: not worth more passes
        mid = (low + high) // 2
        if attempt(mid):
            high = mid
        else:
            low = mid
    candidate, data = tried[high]
    if c.slower_than(candidate, data, MIN_GAIN):
        candidate.note = f"runs {candidate.vs_fp32:.2f}x fp32's time here: not used"
        return None
    return c.done(candidate, data, f"full int8 missed the budget; the {high} of {len(layers)} layers worst by "
                                   f"quantization error kept in float hold it")
