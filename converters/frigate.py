"""A Frigate model folder: the exported integer ``.tflite`` as Frigate's custom classification reads it.

Frigate's custom object classification processors read ``model.tflite`` and ``labelmap.txt`` (one label a
line) from a model folder; for each tracked object they cut a square around its box (the box's longest
edge, moved to stay inside the frame: edgecls' ``--crop frigate``), resize it to 224×224 RGB, put those
uint8 pixels straight into the input tensor, and divide the output by its sum. A file meets that contract
when:

- its input is 224×224×3 uint8 whose value is the pixel itself (quantization scale 1, zero point 0: the
  calibration images spanned the full 0–255 range; the normalization is baked into the model);
- its output is non-negative (uint8 probabilities: the int8 file's output).

:func:`check_frigate_input` refuses a model of another input size before anything is converted;
:func:`write_frigate_folder` checks the written file and copies it, with the labels, into the folder.
"""

from __future__ import annotations

from pathlib import Path

from edgecls.converters.atomic import atomic_write_bytes
from edgecls.converters.errors import ExportError
from edgecls.converters.report import ExportedFile, ExportResult
from edgecls.runtime.card import InputSpec

__all__ = ["FRIGATE_SIZE", "check_frigate_input", "write_frigate_folder", "frigate_refusal"]

FRIGATE_SIZE = (224, 224)
"""Frigate resizes every crop to this (height, width) before it feeds the model."""
MAX_SCALE_ERROR = 0.01
"""How far the input's quantization scale may be from 1 (2.5 grey levels at 255)."""


def check_frigate_input(spec: InputSpec) -> None:
    """Raises ExportError when a model of this input cannot take what Frigate feeds (224×224 RGB)."""
    if (spec.height, spec.width) != FRIGATE_SIZE or spec.channels != 3:
        raise ExportError(f"Frigate feeds 224x224 RGB crops; this model takes {spec.height}x{spec.width}x"
                          f"{spec.channels} (export it at 224x224: --input-size 224x224 for a model with free "
                          "spatial dimensions)", options=("frigate",))


def frigate_refusal(file: ExportedFile) -> str | None:
    """Why ``file`` cannot be Frigate's ``model.tflite`` (None: it can)."""
    from edgecls.runtime.backends import open_backend

    if file.rung not in ("int8", "int8+float"):
        return f"the quantization ladder answered {file.path.name} with {file.rung}, whose input is float"
    backend = open_backend(file.path)
    try:
        tensor_in, tensor_out = backend.input, backend.output
    finally:
        backend.close()
    if tensor_in.dtype_name != "uint8" or tensor_out.dtype_name != "uint8":
        return f"{file.path.name} takes {tensor_in.dtype_name} and gives {tensor_out.dtype_name}, not uint8"
    quant = tensor_in.quantization
    if quant is None or abs(quant.scale - 1.0) > MAX_SCALE_ERROR or quant.zero_point != 0:
        seen = "none" if quant is None else f"scale {quant.scale:.4f}, zero point {quant.zero_point}"
        return (f"{file.path.name}'s input is not the raw pixel ({seen}); calibrate with images whose pixels "
                "span 0-255")
    return None


def write_frigate_folder(result: ExportResult, folder: Path) -> Path:
    """Write ``folder/model.tflite`` (the export's TFLite int8 file) and ``folder/labelmap.txt``; returns the
    folder.

    Raises:
        ExportError: no such file in ``result``, or it cannot meet Frigate's contract (the reason given);
            the folder cannot be written. Nothing is written then.
    """
    file = next((f for f in result.files if f.format == "tflite" and f.quantization == "int8"), None)
    if file is None:
        raise ExportError("a Frigate model folder needs the TFLite int8 file", options=("frigate",))
    why = frigate_refusal(file)
    if why is not None:
        raise ExportError(f"{folder}: not written, Frigate cannot use this model: {why}", options=("frigate",))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the Frigate model folder ({exc.strerror or exc})") from None
    atomic_write_bytes(folder / "model.tflite", file.path.read_bytes(), overwrite=True)
    atomic_write_bytes(folder / "labelmap.txt", "".join(f"{label}\n" for label in result.labels).encode(),
                       overwrite=True)
    return folder
