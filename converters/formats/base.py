"""The format-converter protocol and registry: one entry per output format."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgecls.converters.data import CalibrationReader
from edgecls.converters.errors import ExportError
from edgecls.runtime.card import ModelCard

__all__ = ["ConvertJob", "FormatConverter", "FORMATS", "register_format", "get_format", "QUANTIZATIONS"]

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")


@dataclass
class ConvertJob:
    """Everything a converter needs for one model.

    Attributes:
        model: Keras model taking raw 0-255 pixels (normalization baked in).
        height, width, channels: the input size.
        calibration: images for full-integer quantization (None without).
        opset: ONNX opset.
        per_channel: per-channel weight scales for ONNX static int8 (TFLite int8 is always per-channel).
        workdir: a private temporary folder.
        cache: per-export scratch space shared by one format's quantizations
            (e.g. the fp32 ONNX graph that fp16 and int8 start from).
        notes: what a converter changed on the way (added to the export report).
    """

    model: Any
    height: int
    width: int
    channels: int
    calibration: CalibrationReader | None
    opset: int
    workdir: Path
    per_channel: bool = False
    cache: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class FormatConverter(Protocol):
    """Converts a Keras model to one file format, in several quantizations."""

    name: str
    suffix: str
    quantizations: dict[str, str]
    """Supported quantization → one-line description."""

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
        """``data`` with ``card`` embedded. Raises ExportError."""
        ...


FORMATS: dict[str, FormatConverter] = {}


def register_format(converter: FormatConverter) -> None:
    """Add a format converter under its name."""
    FORMATS[converter.name] = converter


def get_format(name: str) -> FormatConverter:
    """The converter for ``name``. Raises ExportError for an unknown format."""
    if not FORMATS:
        _register_builtins()
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}") from None


def _register_builtins() -> None:
    from edgecls.converters.formats.onnx_format import OnnxFormat
    from edgecls.converters.formats.tflite_format import TFLiteFormat

    register_format(TFLiteFormat())
    register_format(OnnxFormat())


