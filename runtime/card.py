"""The model card: the versioned metadata contract between converters and runtime.

A card travels inside every exported model file (see ``docs/card.md``):
in a ``.tflite`` file as ``edgecls_card.json`` in the zip archive appended to the
flatbuffer (next to the standard TFLite metadata), in an ``.onnx`` file as the
``edgecls.card`` entry of ``metadata_props``. It is plain JSON so any reader can
use it without TensorFlow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from edgecls.runtime.errors import CardError, EdgeclsError, OptionError, engine_message

__all__ = ["CARD_SCHEMA_VERSION", "CARD_FILE_NAME", "CARD_METADATA_KEY", "MAX_CARD_BYTES", "MAX_INPUT_SIDE",
           "MAX_INPUT_PIXELS", "MAX_CLASSES", "LAYOUTS", "COLORS", "RESIZE_MODES", "SCORE_KINDS", "OUTPUT_KINDS",
           "Quantization", "Normalization", "checked_mean_std", "float_node_count", "holds_text", "InputSpec",
           "OutputSpec", "Provenance", "ModelCard"]

CARD_SCHEMA_VERSION = 1
CARD_FILE_NAME = "edgecls_card.json"
CARD_METADATA_KEY = "edgecls.card"

MAX_CARD_BYTES = 1 << 20
"""A card's JSON text may be at most 1 MiB (a real one is a few KB); a larger one is refused unread."""
MAX_INPUT_SIDE = 8192
MAX_INPUT_PIXELS = 16_000_000
"""A card's input: each side ≤ 8192, height × width ≤ 16 megapixels (a float32 RGB input of 192 MB at most)."""
MAX_CLASSES = 100_000
"""At most this many classes (ImageNet-21k has 21,843)."""

LAYOUTS = ("NHWC", "NCHW")
COLORS = ("rgb", "bgr", "gray")
RESIZE_MODES = ("stretch", "crop", "letterbox")
SCORE_KINDS = ("probabilities", "logits")
OUTPUT_KINDS = ("single-label", "multi-label")
"""``single-label``: one class per image (scores sum to 1); ``multi-label``: each label on its own (a
score per label, the label present at or over its threshold)."""
DTYPES = ("uint8", "int8", "float32", "float16")


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise CardError(f"card field {name!r} is {value!r}; expected one of {', '.join(allowed)}")
    return value


def _positive_int(value: Any, name: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CardError(f"card field {name!r} must be a positive integer, got {value!r}")
    if value > most:
        raise CardError(f"card field {name!r} is {value}; at most {most} is accepted")
    return value


def _numbers(value: Any, label: str, error: type[EdgeclsError]) -> tuple[float, ...]:
    """A number or a non-empty list of finite numbers, as a tuple. Raises ``error`` naming ``label``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise error(f"{label} must be a list of numbers, got {value!r}"[:300]) from None
    except OverflowError:  # an integer beyond any float
        raise error(f"{label} must hold finite numbers, got {value!r}"[:300]) from None
    if not out:
        raise error(f"{label} must not be empty")
    if not all(math.isfinite(v) for v in out):
        raise error(f"{label} must hold finite numbers, got {value!r}"[:300])
    return out


def _profile(value: Any) -> dict[str, Any] | None:
    """A card's ``profile``: an object (read in full by ``Profile`` when a monitor uses it), or absent."""
    if value is not None and not isinstance(value, dict):
        raise CardError(f"card field 'profile' must be an object, got {type(value).__name__}")
    return value


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise CardError(f"card field 'version' must be a non-negative integer, got {value!r}")
    return value


def _floats(value: Any, name: str) -> tuple[float, ...]:
    return _numbers(value, f"card field {name!r}", CardError)


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, name: str) -> Quantization | None:
        if data is None:
            return None
        try:
            scale, zero_point = float(data["scale"]), int(data["zero_point"])
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: beyond a float, or an infinity
            raise CardError(f"card field {name!r} needs numeric 'scale' and 'zero_point'") from None
        if not (scale > 0 and math.isfinite(scale)):
            raise CardError(f"card field {name!r} has a non-positive scale {scale} (it must be positive and finite)")
        if not -2**31 <= zero_point < 2**31:
            raise CardError(f"card field {name!r} has a zero_point outside 32-bit integers")
        return cls(scale, zero_point)


@dataclass(frozen=True)
class Normalization:
    """How 0-255 pixels become model input: ``(pixel - mean) / std`` per channel.

    ``baked=True`` means the graph applies it itself (edgecls exports do), so the
    runtime feeds raw pixels and ``mean``/``std`` only record what was baked.
    """

    baked: bool = True
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalization:
        mean, std = checked_mean_std(data.get("mean", (0.0,)), data.get("std", (1.0,)), error=CardError,
                                     what="card field 'input.normalization'")
        return cls(baked=bool(data.get("baked", True)), mean=mean, std=std)


def checked_mean_std(mean: Any, std: Any, *, channels: int | None = None, error: type[EdgeclsError] = OptionError,
                     what: str = "mean/std") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The one check of a per-channel mean and std on 0-255 pixels (options, cards and exports alike): both
    given, finite numbers, 1 or ``channels`` values each (any count while ``channels`` is None), no zero std.

    Raises:
        OptionError: (or ``error``: CardError for a card, ExportError for an export) naming ``what``.
    """
    if (mean is None) != (std is None):
        raise error("give mean and std together", options=("mean", "std"))
    values = {}
    for name, given in (("mean", mean), ("std", std)):
        numbers = _numbers(given, f"{what}: {name}", error)
        if channels is not None and len(numbers) not in (1, channels):
            raise error(f"{what}: {name} needs 1 or {channels} values, got {len(numbers)}")
        values[name] = numbers
    if any(v == 0 for v in values["std"]):
        raise error(f"{what}: std must not contain 0")
    return values["mean"], values["std"]


def _crop_text(value: Any) -> str | None:
    """A card's ``input.crop``, checked to be a policy the runtime reads. Raises CardError."""
    if value is None:
        return None
    from edgecls.runtime.regions import CropPolicy

    try:
        return CropPolicy.parse(value).to_text()
    except OptionError as exc:
        raise CardError(f"card field 'input.crop': {exc}") from None


@dataclass(frozen=True)
class InputSpec:
    """What the model's image input expects."""

    height: int
    width: int
    channels: int = 3
    layout: str = "NHWC"
    dtype: str = "float32"
    quantization: Quantization | None = None
    color: str = "rgb"
    resize: str = "stretch"
    normalization: Normalization = field(default_factory=Normalization)
    crop: str | None = None
    """How a region of a frame becomes this input (``--crop`` text, see :mod:`edgecls.runtime.regions`);
    None: the default policy."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputSpec:
        channels = _positive_int(data.get("channels", 3), "input.channels", MAX_INPUT_SIDE)
        if channels not in (1, 3):
            raise CardError(f"card field 'input.channels' must be 1 or 3, got {channels}")
        height = _positive_int(data.get("height"), "input.height", MAX_INPUT_SIDE)
        width = _positive_int(data.get("width"), "input.width", MAX_INPUT_SIDE)
        if height * width > MAX_INPUT_PIXELS:
            raise CardError(f"card input size {height}x{width} is over {MAX_INPUT_PIXELS // 1_000_000} megapixels")
        color = _choice(data.get("color", "rgb"), COLORS, "input.color")
        if (color == "gray") != (channels == 1):
            raise CardError(f"card field 'input.color' is {color!r} for a {channels}-channel input")
        normalization = Normalization.from_dict(data.get("normalization") or {})
        for key in ("mean", "std"):
            if len(getattr(normalization, key)) not in (1, channels):
                raise CardError(f"card field 'input.normalization.{key}' needs 1 or {channels} values, "
                                f"got {len(getattr(normalization, key))}")
        return cls(
            height=height,
            width=width,
            channels=channels,
            layout=_choice(data.get("layout", "NHWC"), LAYOUTS, "input.layout"),
            dtype=_choice(data.get("dtype", "float32"), DTYPES, "input.dtype"),
            quantization=Quantization.from_dict(data.get("quantization"), "input.quantization"),
            color=color,
            resize=_choice(data.get("resize", "stretch"), RESIZE_MODES, "input.resize"),
            normalization=normalization,
            crop=_crop_text(data.get("crop")),
        )


@dataclass(frozen=True)
class OutputSpec:
    """What the model's classification output holds.

    ``kind``: ``single-label`` or ``multi-label`` (see :data:`OUTPUT_KINDS`); ``thresholds``: for a
    multi-label model, the score at or over which each label is present (one per label; None: 0.5 each).
    """

    num_classes: int
    dtype: str = "float32"
    quantization: Quantization | None = None
    scores: str = "probabilities"
    kind: str = "single-label"
    thresholds: tuple[float, ...] | None = None

    @property
    def multi_label(self) -> bool:
        return self.kind == "multi-label"

    def label_thresholds(self) -> tuple[float, ...]:
        """Each label's threshold (0.5 where the card gives none)."""
        return self.thresholds if self.thresholds is not None else (0.5,) * self.num_classes

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSpec:
        num_classes = _positive_int(data.get("num_classes"), "output.num_classes", MAX_CLASSES)
        kind = _choice(data.get("kind", "single-label"), OUTPUT_KINDS, "output.kind")
        thresholds = data.get("thresholds")
        if thresholds is not None:
            if kind != "multi-label":
                raise CardError("card field 'output.thresholds' is for a multi-label model")
            thresholds = _floats(thresholds, "output.thresholds")
            if len(thresholds) != num_classes or not all(0.0 <= t <= 1.0 for t in thresholds):
                raise CardError(f"card field 'output.thresholds' needs {num_classes} values within 0..1")
        return cls(
            num_classes=num_classes,
            dtype=_choice(data.get("dtype", "float32"), DTYPES, "output.dtype"),
            quantization=Quantization.from_dict(data.get("quantization"), "output.quantization"),
            scores=_choice(data.get("scores", "probabilities"), SCORE_KINDS, "output.scores"),
            kind=kind,
            thresholds=thresholds,
        )


@dataclass(frozen=True)
class Provenance:
    """Where a model came from and how it was checked; filled by the converters."""

    edgecls_version: str = ""
    created: str = ""
    source_file: str = ""
    source_sha256: str = ""
    format: str = ""
    quantization: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    ladder: dict[str, Any] = field(default_factory=dict)
    """How an accuracy budget was met (export's quantization ladder): ``rung``, ``float_layers``,
    ``budget``, ``reason`` and every candidate tried; empty when no budget was climbed."""
    head: dict[str, Any] = field(default_factory=dict)
    """The Keras model's head as the export found it: ``kind``, ``chosen_by``, what was ``baked`` after it
    so the file outputs probabilities, and the ``evidence``; empty in files of earlier versions."""

    @property
    def float_nodes(self) -> int:
        """How many nodes the quantization ladder kept in float (0 without a ladder)."""
        return float_node_count(self.ladder)

    @property
    def holds(self) -> str:
        """What the file holds, for tables: its quantization, with the nodes kept in float."""
        return holds_text(self.quantization or "?", self.float_nodes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        if not isinstance(data, Mapping):
            raise CardError(f"card field 'provenance' must be an object, got {type(data).__name__}")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key, value in known.items():
            if key not in ("calibration", "validation", "ladder", "head") and not isinstance(value, str):
                raise CardError(f"card field 'provenance.{key}' must be a string")
        for key in ("calibration", "validation", "ladder", "head"):
            if not isinstance(known.get(key, {}), dict):
                raise CardError(f"card field 'provenance.{key}' must be an object")
        return cls(**known)


def float_node_count(ladder: Mapping[str, Any] | None) -> int:
    """How many nodes a quantization ladder's record (a card's ``provenance.ladder``, a report's
    ``quantization_ladder``) kept in float: the one count every table and page shows."""
    layers = ladder.get("float_layers") if isinstance(ladder, Mapping) else None
    return len(layers) if isinstance(layers, list) else 0


def holds_text(quantization: str, float_nodes: int) -> str:
    """``int8``, or ``int8+float (6 float)`` for a file whose quantization ladder kept 6 nodes in float."""
    return f"{quantization} ({float_nodes} float)" if float_nodes else quantization


@dataclass(frozen=True)
class ModelCard:
    """Everything a runtime needs to use a model, plus where it came from.

    Build one directly, or parse one with :meth:`from_json` / :meth:`from_dict`,
    which raise :class:`~edgecls.runtime.errors.CardError` on malformed input.
    """

    labels: tuple[str, ...]
    input: InputSpec
    output: OutputSpec
    name: str = ""
    version: int = 0
    """The model's version under its ``name`` (a signed update below an accepted one is refused; 0: none)."""
    profile: dict[str, Any] | None = None
    """The drift monitor's reference (:mod:`edgecls.runtime.profile`), made at export; None without one."""
    provenance: Provenance = field(default_factory=Provenance)
    schema_version: int = CARD_SCHEMA_VERSION

    def __post_init__(self) -> None:
        if len(self.labels) != self.output.num_classes:
            raise CardError(
                f"card has {len(self.labels)} labels but output.num_classes is {self.output.num_classes}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data (tuples become lists)."""
        return json.loads(self.to_json())

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text."""
        return json.dumps(asdict(self), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        """Parse card data. Raises CardError when a field is missing or invalid."""
        if not isinstance(data, dict):
            raise CardError(f"a model card must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != CARD_SCHEMA_VERSION:
            raise CardError(
                f"card schema_version {version!r} is not supported (this edgecls reads {CARD_SCHEMA_VERSION})"
            )
        try:
            labels = tuple(str(label) for label in data["labels"])
            inp, out = data["input"], data["output"]
        except (KeyError, TypeError):
            raise CardError("a model card needs 'labels', 'input' and 'output'") from None
        if not isinstance(inp, dict) or not isinstance(out, dict):
            raise CardError("card fields 'input' and 'output' must be objects")
        return cls(
            labels=labels,
            input=InputSpec.from_dict(inp),
            output=OutputSpec.from_dict(out),
            name=str(data.get("name", "")),
            version=_version(data.get("version", 0)),
            profile=_profile(data.get("profile")),
            provenance=Provenance.from_dict(data.get("provenance") or {}),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        """Parse JSON text. Raises CardError when it is over ``MAX_CARD_BYTES``, not valid JSON (or nested
        too deep to parse), or not a card."""
        if len(text) > MAX_CARD_BYTES:
            raise CardError(f"model card is {len(text):,} bytes; at most {MAX_CARD_BYTES:,} are read")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CardError(f"model card is not valid JSON: {engine_message(exc)}") from None
        except RecursionError:
            raise CardError("model card is nested too deep to be a card") from None
        return cls.from_dict(data)
