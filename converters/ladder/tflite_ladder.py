"""The TFLite quantization ladder: full int8, int8 with float islands, int16x8, fp16, fp32.

The selective rung and the layer ranking use TFLite's own ``tf.lite.experimental.QuantizationDebugger``:
it calibrates once; each candidate is then ``get_nondebug_quantized_model()`` with the chosen layers in
``denylisted_nodes`` (they run in float between dequantize/quantize pairs; float input and output).
Layers are ranked by the root-mean-square error of their int8 output divided by its quantization
scale (the debugger's per-layer ``mean_squared_error`` and ``scale``): how many quantization steps a
layer is off on average, comparable across layers.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from edgecls.converters.formats.base import ConvertJob, get_format
from edgecls.converters.formats.tflite_format import conversion, representative_dataset, run_converter
from edgecls.converters.ladder.rungs import Ladder, LayerError, Rung, register_ladder

__all__ = ["LADDER", "DEBUG_IMAGES"]

DEBUG_IMAGES = 32
"""Calibration images the debugger runs to measure per-layer error (its calibration uses them all)."""


def _format():
    return get_format("tflite")


def _full(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
    return _format().convert(job, "int8")


def _float(quantization: str):
    def build(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
        return _format().convert(job, quantization)

    return build


def _debugger(job: ConvertJob) -> Any:
    """TFLite's quantization debugger for the job (calibrated once, cached in ``job.cache``)."""
    if "tflite_debugger" not in job.cache:
        import tensorflow as tf

        converter = _format().converter_for(job, "int8")
        converter.inference_input_type = tf.float32  # the debugger's models keep float I/O
        converter.inference_output_type = tf.float32
        debug_set = representative_dataset(job.calibration, limit=DEBUG_IMAGES)

        with conversion("int8 calibration for the quantization debugger"):
            job.cache["tflite_debugger"] = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=debug_set)
    return job.cache["tflite_debugger"]


def _selective(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
    import tensorflow as tf

    debugger = _debugger(job)

    def quantize():
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(layers))
        return debugger.get_nondebug_quantized_model()

    return run_converter(quantize, f"int8 with {len(layers)} float layers")


def _int16x8(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
    import tensorflow as tf

    converter = _format().converter_for(job, "fp32")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(job.calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return run_converter(converter.convert, "int16x8")


def rank_layers(job: ConvertJob, base: str) -> list[LayerError]:
    """Every quantized layer's output error in quantization steps (RMSE / scale), worst first; ties in
    error keep the graph's order, so two runs on the same inputs rank alike."""
    debugger = _debugger(job)

    with conversion("per-layer quantization error"):
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    ranked = []
    for order, row in enumerate(csv.DictReader(dump)):
        scale, mse = float(row["scale"] or 0), float(row["mean_squared_error"] or 0)
        if scale > 0 and math.isfinite(mse):
            ranked.append((-(math.sqrt(mse) / scale), order, LayerError(row["tensor_name"], row["op_name"],
                                                                     math.sqrt(mse) / scale, "rmse/scale")))
    return [layer for *_, layer in sorted(ranked, key=lambda item: item[:2])]


LADDER = Ladder(
    format="tflite",
    rungs=(
        Rung("int8", "int8", _full, "TFLiteConverter's full-integer int8 (uint8 input and output)"),
        Rung("int8+float", "selective", _selective, "int8 with the worst layers in float (float input and output)"),
        Rung("int16x8", "int16", _int16x8, "int16 activations, int8 weights"),
        Rung("fp16", "float", _float("fp16"), "float16 weights"),
        Rung("fp32", "float", _float("fp32"), "float32"),
    ),
    rank=rank_layers,
)
register_ladder(LADDER)
