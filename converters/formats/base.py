"""The model-format protocol and its registry: one entry per output format.

An entry owns everything about its format: the suffix, the quantizations it writes
(with a one-line description each), a typed options object (like ONNX Runtime's
per-method configs), the converter and the card writer. The built-in formats are
registered when :mod:`edgecls.converters.formats` is imported, before any lookup;
registering a taken name is an error unless ``replace=True``. Importing the registry is cheap:
TensorFlow, tf2onnx and flatbuffers are imported only when a conversion or an
embedding runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgecls.converters.data import CalibrationReader
from edgecls.converters.errors import ExportError
from edgecls.runtime.card import ModelCard
from edgecls.runtime.registry import Registry

__all__ = ["ConvertJob", "ModelFormat", "FORMATS", "register_format", "get_format", "format_for_suffix",
           "quantization_names"]


@dataclass
class ConvertJob:
    """Everything a format needs for one model.

    Attributes:
        model: Keras model taking raw 0-255 pixels (normalization baked in).
        height, width, channels: the input size.
        calibration: images for full-integer quantization (None without).
        workdir: a private temporary folder.
        options: each format's options object by format name (a format missing here uses its defaults).
        cache: per-export scratch space shared by one format's quantizations
            (e.g. the fp32 ONNX graph that fp16 and int8 start from).
        notes: what a converter changed on the way (added to the export report).
    """

    model: Any
    height: int
    width: int
    channels: int
    calibration: CalibrationReader | None
    workdir: Path
    options: Mapping[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def options_for(self, fmt: ModelFormat) -> Any:
        """``fmt``'s options object for this job (its defaults when none was given)."""
        return self.options.get(fmt.name) or fmt.options_type()


class ModelFormat(Protocol):
    """One output format: what it is called, what it writes and how."""

    name: str
    suffix: str
    quantizations: Mapping[str, str]
    """Supported quantization → one-line description."""
    options_type: type
    """The dataclass of this format's options (constructible without arguments: the defaults)."""

    def prepare(self, job: ConvertJob) -> None:
        """Convert what every quantization starts from (cached in ``job.cache``), before any other work.

        Raises:
            ExportError: the model cannot be converted to this format; the message names the layer.
        """
        ...

    def convert(self, job: ConvertJob, quantization: str) -> bytes:
        """The model file's bytes, without a card. Raises ExportError."""
        ...

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        """``data`` with ``card`` embedded. Raises ExportError when ``data`` is not a file of this format."""
        ...


FORMATS: Registry[ModelFormat] = Registry("format", error=ExportError)
"""Every output format by name, in registration order (the built-ins first)."""


def register_format(fmt: ModelFormat, *, replace: bool = False) -> ModelFormat:
    """Add a format under its name; returns ``fmt``.

    Raises:
        OptionError: the name is taken and ``replace`` is false.
    """
    return FORMATS.register(fmt.name, fmt, replace=replace)


def get_format(name: str) -> ModelFormat:
    """The format called ``name``.

    Raises:
        ExportError: no format is registered so.
    """
    return FORMATS.lookup(name)


def format_for_suffix(suffix: str) -> ModelFormat | None:
    """The format whose files end in ``suffix`` (case-insensitive), or None."""
    return next((f for f in FORMATS.values() if f.suffix == suffix.lower()), None)


def quantization_names() -> tuple[str, ...]:
    """Every quantization some registered format writes, in registration order."""
    return tuple(dict.fromkeys(q for f in FORMATS.values() for q in f.quantizations))
