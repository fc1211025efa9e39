"""Keras → TFLite with ``tf.lite.TFLiteConverter``: fp32, fp16, dynamic-range and full-integer int8."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgecls.converters.errors import ExportError
from edgecls.converters.formats.base import ConvertJob
from edgecls.runtime.card import ModelCard
from edgecls.runtime.errors import MAX_ENGINE_TEXT, engine_errors

__all__ = ["TFLiteFormat", "TFLiteOptions", "conversion", "run_converter", "representative_dataset"]


@dataclass(frozen=True)
class TFLiteOptions:
    """Options of the TFLite format (none yet: TFLiteConverter's defaults, full-integer int8 with uint8 I/O)."""


def _fp32(converter: Any, job: ConvertJob, tf: Any) -> None:
    pass


def _fp16(converter: Any, job: ConvertJob, tf: Any) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter: Any, job: ConvertJob, tf: Any) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def representative_dataset(images: Any, limit: int | None = None) -> Callable[[], Any]:
    """The converter's representative dataset over a calibration reader (its first ``limit`` images)."""

    def representative():
        for i, image in enumerate(images):
            if limit is not None and i >= limit:
                return
            yield [image[None].astype(np.float32)]

    return representative


def _int8(converter: Any, job: ConvertJob, tf: Any) -> None:
    if job.calibration is None:
        raise ExportError("int8 needs calibration images")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(job.calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8


_STEPS: dict[str, Callable[[Any, ConvertJob, Any], None]] = {
    "fp32": _fp32, "fp16": _fp16, "dynamic": _dynamic, "int8": _int8,
}


def _describe(exc: BaseException) -> str:
    """The converter's first located error, naming the layer from its MLIR location; else its last line
    (the converter's first lines are a generic "could not translate")."""
    from edgecls.converters.formats.tf_graph import layer_of

    text = str(exc).strip()
    for line in text.splitlines():
        if "error: loc(" in line:
            where = re.search(r'fused\["[^"]*", "([^"@]+)', line)
            what = re.search(r".*\)+: (.+)$", line)
            if where and what:
                return f"layer {layer_of(where.group(1))!r}: {what.group(1).strip()}"
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip()[:MAX_ENGINE_TEXT] if lines else exc.__class__.__name__


@contextlib.contextmanager
def conversion(what: str) -> Iterator[None]:
    """Around a converter call: its chatter dropped, its failure an ExportError naming the layer."""
    from edgecls.runtime.engine_log import engine_output

    with engine_errors(ExportError, f"TFLite conversion ({what}) failed", describe=_describe), \
            warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), engine_output():
        # uint8 input statistics come from the calibration data
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        # the quantization debugger opens models with tf.lite.Interpreter, which warns that it is deprecated
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
        yield


def run_converter(convert: Callable[[], Any], what: str) -> bytes:
    """``convert()``'s model bytes (see :func:`conversion`). Raises ExportError."""
    with conversion(what):
        return bytes(convert())


class TFLiteFormat:
    name = "tflite"
    suffix = ".tflite"
    options_type = TFLiteOptions
    quantizations: ClassVar[dict[str, str]] = {
        "fp32": "float32 weights and activations",
        "fp16": "float16 weights (half the size; float32 compute on CPU)",
        "dynamic": "int8 weights, float activations (slower than fp32 on x86: dequantizes at run time)",
        "int8": "full integer, uint8 input and output, calibrated",
    }

    def _converter(self, job: ConvertJob, tf: Any) -> Any:
        try:
            return tf.lite.TFLiteConverter.from_keras_model(job.model)
        except Exception:
            saved = job.workdir / "saved_model"
            if not saved.exists():
                job.model.export(str(saved))
            return tf.lite.TFLiteConverter.from_saved_model(str(saved))

    def prepare(self, job: ConvertJob) -> None:
        if "tflite_fp32" not in job.cache:
            job.cache["tflite_fp32"] = self._convert(job, "fp32")

    def convert(self, job: ConvertJob, quantization: str) -> bytes:
        if quantization == "fp32":
            self.prepare(job)
            return job.cache["tflite_fp32"]
        return self._convert(job, quantization)

    def converter_for(self, job: ConvertJob, quantization: str) -> Any:
        """A ``TFLiteConverter`` set up for ``quantization`` (the quantization ladder adjusts it further)."""
        import tensorflow as tf

        # Keras' export (used by from_keras_model) prints the SavedModel signature to stdout;
        # the library does not print, so that text is dropped.
        with contextlib.redirect_stdout(io.StringIO()):
            converter = self._converter(job, tf)
        _STEPS[quantization](converter, job, tf)
        return converter

    def _convert(self, job: ConvertJob, quantization: str) -> bytes:
        return run_converter(lambda: self.converter_for(job, quantization).convert(), quantization)

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        from edgecls.converters.metadata.tflite_embed import embed_card_tflite

        return embed_card_tflite(data, card)


FORMAT = TFLiteFormat()
