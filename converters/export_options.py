"""The options of an export (:func:`edgecls.converters.export`; the flags of ``edgecls export``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.converters.errors import ExportError
from edgecls.converters.formats.base import FORMATS, get_format
from edgecls.converters.heads import HEAD_KINDS
from edgecls.converters.ladder.climb import MAX_RUNGS
from edgecls.runtime.card import RESIZE_MODES
from edgecls.runtime.errors import OptionError

__all__ = ["ExportOptions"]


@dataclass(frozen=True)
class ExportOptions:
    """Options of :func:`export` (the CLI flags of ``edgecls export``).

    What belongs to one format lives in that format's own options object (``OnnxOptions(opset=,
    per_channel=)``, ``TFLiteOptions()``), given in ``format_options`` by format name; :meth:`from_keywords`
    (what ``export(model, out, opset=13)`` calls) routes such keywords there.

    Raises:
        ExportError: unknown format, quantization or resize mode, a bad size, or format options that
            are not that format's options type.
    """

    formats: Sequence[str] = ("tflite", "onnx")
    quantize: Sequence[str] = ("fp32",)
    calibration: str | Path | np.ndarray | None = None
    calib_size: int = 300
    validation: str | Path | None = None
    labels: str | Path | Sequence[str] | None = None
    pixels: str | None = None
    """``auto`` (None), ``unit``, ``symmetric``, ``imagenet`` or ``raw``; see :mod:`edgecls.converters.pixel_check`."""
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    resize: str = "stretch"
    input_size: tuple[int, int] | None = None
    format_options: Mapping[str, Any] = field(default_factory=dict)
    """Each format's options object by format name (``{"onnx": OnnxOptions(opset=13)}``); a format
    missing here uses its defaults."""
    force: bool = False
    unsafe: bool = False
    custom_objects: str | Path | dict[str, Any] | None = None
    min_agreement: float | None = None
    """Minimum top-1 agreement with Keras; default 0.999 for fp32 and 0.98 otherwise unless ``max_drop`` is given."""
    max_drop: float | None = None
    """Accuracy budget: at most this many points of top-1 accuracy below Keras on labelled validation
    images. Given alone, it replaces the default agreement floors; with ``min_agreement``, both must hold."""
    max_rung: str = "fp32"
    """How far the quantization ladder may climb under a budget: ``int8`` (calibration variants only),
    ``int8+float``, ``int16``, ``fp16`` or ``fp32``."""
    time_candidates: bool = True
    """Time the ladder's candidates here and never choose one that is not faster than fp32 (a file
    in ``MIN_GAIN`` of its time); False decides on accuracy alone, for exports made on another
    machine than the one that runs the model."""
    name: str | None = None
    head: str | None = None
    """The model's head (see :mod:`edgecls.converters.heads`): None detects it; a kind settles evidence
    that disagrees or cannot decide."""
    positive: str | None = None
    """A binary head: the label whose probability the model outputs (default: the second label in order)."""
    thresholds: str | Sequence[float] | None = None
    """A multi-label head's thresholds: None (0.5 each), ``"f1"`` (each label's F1-best on the labelled
    validation images), or one number per label."""
    ladder: bool = True
    """Without a budget, an int8 file that misses the default check (agreement ≥ 0.98) climbs the
    quantization ladder to that check instead of failing; False fails it (the file kept, marked failed)."""
    crop: str | None = None
    """How a region of a frame becomes the model's input, written into the card (``square:1.2,min=64,shift``,
    ``stretch``, ``frigate``; see :mod:`edgecls.runtime.regions`); None: the runtime's default."""
    frigate: str | Path | None = None
    """Also write a Frigate model folder here (``model.tflite``, the integer file, and ``labelmap.txt``; see
    :mod:`edgecls.converters.frigate`). Needs TFLite int8."""
    model_version: int | None = None
    """The model's version, in every file's card (a signed update below a version already accepted under
    the same name is refused); None: the export's time, in seconds since 1970."""
    sign: str | Path | None = None
    """Sign every file written with this private key (PEM, P-256/384/521): ``FILE.sig`` beside it, in the
    OpenSSF model-signing format (:mod:`edgecls.runtime.signatures`)."""
    sign_passphrase: bytes | None = field(default=None, repr=False)
    """The passphrase of an encrypted ``sign`` key."""

    def __post_init__(self) -> None:
        for name in ("formats", "quantize"):  # "tflite" or "tflite,onnx" is a list of names, not of letters
            value = getattr(self, name)
            names = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
            object.__setattr__(self, name, tuple(dict.fromkeys(names)))
        self._check_formats()
        self._check_ranges()
        if self.head is not None and self.head not in HEAD_KINDS:
            raise ExportError(f"unknown head {self.head!r}; choose from {', '.join(HEAD_KINDS)}", options=("head",))
        if self.crop is not None:
            from edgecls.runtime.regions import CropPolicy

            try:
                object.__setattr__(self, "crop", CropPolicy.parse(self.crop).to_text())
            except OptionError as exc:
                raise ExportError(str(exc), options=("crop",)) from None
        if self.frigate is not None and ("tflite" not in self.formats or "int8" not in self.quantize):
            raise ExportError("a Frigate model folder holds the TFLite int8 file (Frigate feeds uint8 pixels): "
                              "export tflite with int8", options=("frigate",))
        if isinstance(self.thresholds, str) and self.thresholds != "f1":
            raise ExportError(f"thresholds must be 'f1' or one number per label, got {self.thresholds!r}",
                              options=("thresholds",))
        self._check_signing()

    def _check_signing(self) -> None:
        if self.model_version is None:
            object.__setattr__(self, "model_version", int(time.time()))
        elif isinstance(self.model_version, bool) or not isinstance(self.model_version, int) or not (
                0 <= self.model_version < 2**63):
            raise ExportError(f"model_version must be a non-negative integer, got {self.model_version!r}",
                              options=("model_version",))
        if self.sign is not None and not Path(self.sign).is_file():
            raise ExportError(f"{self.sign}: no such private key file", options=("sign",))

    def _check_formats(self) -> None:
        for name in self.formats:
            fmt = get_format(name)
            for q in self.quantize:
                if q not in fmt.quantizations:
                    raise ExportError(f"{fmt.name} has no quantization {q!r}; choose from {', '.join(fmt.quantizations)}")
        if not self.formats or not self.quantize:
            raise ExportError("give at least one format and one quantization")
        for name, value in self.format_options.items():
            expected = get_format(name).options_type
            if not isinstance(value, expected):
                raise ExportError(f"format_options[{name!r}] must be a {expected.__name__}, got "
                                  f"{type(value).__name__}", options=("format_options",))

    def _check_ranges(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ExportError(f"unknown resize mode {self.resize!r}; choose from {', '.join(RESIZE_MODES)}")
        if self.calib_size <= 0:
            raise ExportError(f"calib_size must be positive, got {self.calib_size}")
        if self.min_agreement is not None and not 0.0 <= self.min_agreement <= 1.0:
            raise ExportError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        if self.max_rung not in MAX_RUNGS:
            raise ExportError(f"max_rung must be one of {', '.join(MAX_RUNGS)}, got {self.max_rung!r}",
                              options=("max_rung",))
        if self.max_drop is not None and not 0.0 <= self.max_drop <= 100.0:
            raise ExportError(f"max_drop must be in [0, 100] accuracy points, got {self.max_drop}")

    def options_for(self, name: str) -> Any:
        """Format ``name``'s options: the ones given in ``format_options``, else its defaults."""
        return self.format_options.get(name) or get_format(name).options_type()

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> ExportOptions:
        """The options of a keyword call (``export(model, out, quantize=["int8"], opset=13)``): a keyword
        that is a field here sets it; one that is a field of a format's options (``opset``, ``per_channel``)
        sets it in that format's options.

        Raises:
            ExportError: a keyword that is neither, named with the choices; a bad value.
        """
        own = {f.name for f in fields(cls)}
        by_format: dict[str, dict[str, Any]] = {}
        for key in sorted(set(keywords) - own):
            fmt = next((f for f in FORMATS.values() if key in {x.name for x in fields(f.options_type)}), None)
            if fmt is None:
                choices = [x.name for x in fields(cls)] + [x.name for f in FORMATS.values()
                                                           for x in fields(f.options_type)]
                raise ExportError(f"unknown export option(s) {key}; choose from {', '.join(choices)}")
            by_format.setdefault(fmt.name, {})[key] = keywords[key]
        given = dict(keywords.get("format_options") or {})
        for name, values in by_format.items():
            base = given.get(name) or get_format(name).options_type()
            given[name] = type(base)(**{**asdict(base), **values})
        return cls(**{k: v for k, v in keywords.items() if k in own}, format_options=given)

    def to_dict(self) -> dict[str, Any]:
        """What the report records of the options (the images and labels are recorded on their own)."""
        return {"formats": list(self.formats), "quantize": list(self.quantize), "resize": self.resize,
                "format_options": {name: asdict(self.options_for(name)) for name in self.formats},
                "min_agreement": self.min_agreement, "max_drop": self.max_drop, "max_rung": self.max_rung,
                "time_candidates": self.time_candidates, "ladder": self.ladder, "head": self.head,
                "positive": self.positive, "crop": self.crop,
                "frigate": None if self.frigate is None else str(self.frigate), "model_version": self.model_version,
                "signed": self.sign is not None}

    def agreement_for(self, quantization: str) -> float | None:
        """The agreement floor a file of ``quantization`` must reach; None when only ``max_drop`` is checked."""
        if self.min_agreement is not None:
            return self.min_agreement
        if self.max_drop is not None:
            return None
        return 0.999 if quantization == "fp32" else 0.98
