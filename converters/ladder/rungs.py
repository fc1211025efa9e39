"""The rungs of each format's quantization ladder, and the registry of ladders (one per format).

A ladder lists, fastest first, the ways one format can store the model: full-integer variants
(``kind="int8"``, tried in order; the first within budget is kept), the selective rung (int8 with the
layers that lose most kept in float: ``kind="selective"``), int16 activations (``kind="int16"``, used
only when it runs faster than fp32 here) and the float rungs (``kind="float"``). ``rank`` orders the
layers by their quantization error, worst first, for the selective rung.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from edgecls.converters.errors import ExportError
from edgecls.converters.formats.base import ConvertJob, get_format
from edgecls.runtime.registry import Registry

__all__ = ["Rung", "LayerError", "Ladder", "LADDERS", "register_ladder", "get_ladder", "float_rungs"]

RUNG_KINDS = ("int8", "selective", "int16", "float")


@dataclass(frozen=True)
class LayerError:
    """One layer's quantization error: ``error`` (higher is worse) as the format's debugger measures it."""

    layer: str
    op: str
    error: float
    metric: str
    nodes: tuple[str, ...] = ()
    """What stays float when this layer does (default: ``layer``; ONNX adds the unmeasured nodes fused
    into it, e.g. the Conv feeding a Relu)."""

    @property
    def float_nodes(self) -> tuple[str, ...]:
        return self.nodes or (self.layer,)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "op": self.op, "error": round(float(self.error), 6), "metric": self.metric,
                "nodes": list(self.float_nodes)}


@dataclass(frozen=True)
class Rung:
    """One way to store the model. ``build(job, base, float_layers)`` returns the file's bytes: ``base``
    is the full-int8 rung the selective rung starts from, ``float_layers`` the layers kept in float."""

    name: str
    kind: str
    build: Callable[[ConvertJob, str, Sequence[str]], bytes]
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in RUNG_KINDS:
            raise ValueError(f"rung kind must be one of {RUNG_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Ladder:
    """A format's rungs, fastest first, and its layer ranking."""

    format: str
    rungs: tuple[Rung, ...]
    rank: Callable[[ConvertJob, str], list[LayerError]]
    notes: tuple[str, ...] = field(default=())

    def of_kind(self, kind: str) -> list[Rung]:
        return [r for r in self.rungs if r.kind == kind]

    def rung(self, name: str) -> Rung:
        return next(r for r in self.rungs if r.name == name)


def float_rungs(fmt: str) -> tuple[Rung, Rung]:
    """The last rungs of every ladder: format ``fmt``'s own fp16 and fp32 conversions."""

    def converted(quantization: str) -> Callable[[ConvertJob, str, Sequence[str]], bytes]:
        return lambda job, base, layers: get_format(fmt).convert(job, quantization)

    return (Rung("fp16", "float", converted("fp16"), get_format(fmt).quantizations["fp16"]),
            Rung("fp32", "float", converted("fp32"), get_format(fmt).quantizations["fp32"]))


LADDERS: Registry[Ladder] = Registry("ladder", error=ExportError)
"""Each format's ladder, by format name."""


def register_ladder(ladder: Ladder, *, replace: bool = False) -> Ladder:
    """Add the ladder of ``ladder.format``; returns it.

    Raises:
        OptionError: that format has a ladder and ``replace`` is false.
    """
    return LADDERS.register(ladder.format, ladder, replace=replace)


def get_ladder(fmt: str) -> Ladder:
    """The ladder of format ``fmt``.

    Raises:
        ExportError: the format has none.
    """
    if fmt not in LADDERS:
        raise ExportError(f"{fmt} has no quantization ladder: an accuracy budget cannot be climbed for it")
    return LADDERS[fmt]
