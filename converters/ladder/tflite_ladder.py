"""The TFLite quantization ladder: full int8, int8 with float islands, int16x8, fp16, fp32.

The selective rung and the layer ranking use TFLite's own ``tf.lite.experimental.QuantizationDebugger``:
it calibrates once; each candidate is then ``get_nondebug_quantized_model()`` with the chosen layers in
``denylisted_nodes`` (they run in float between dequantize/quantize pairs; float input and output).
Layers are ranked by the root-mean-square error of their int8 output divided by its quantization
scale (the debugger's per-layer ``mean_squared_error`` and ``scale``): how many quantization steps a
layer is off on average, comparable across layers. A layer kept in float takes the ops around it up
to the nearest convolution or dense layer on each side with it (:func:`_region`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from edgecls.converters.formats.base import ConvertJob, get_format
from edgecls.converters.formats.tflite_format import conversion, representative_dataset, run_converter
from edgecls.converters.ladder.rungs import Ladder, LayerError, Rung, float_rungs, register_ladder

__all__ = ["LADDER", "DEBUG_IMAGES"]

MAX_FOLLOWERS = 4
"""How many ops on each side of a float layer :func:`_region` walks at most."""
DEBUG_IMAGES = 32
"""Calibration images the debugger runs to measure per-layer error (its calibration uses them all)."""


def _format():
    return get_format("tflite")


def _full(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
    return _format().convert(job, "int8")


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
    graph = _graph(debugger)
    return [replace(layer, nodes=_region(layer.layer, graph))
            for *_, layer in sorted(ranked, key=lambda item: item[:2])]


WEIGHTED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL"}
"""Ops that bound a float region: quantization error enters through their inputs' ranges."""
SKIPPED_OPS = {"QUANTIZE", "DEQUANTIZE", "NUMERIC_VERIFY"}


def _graph(debugger: Any) -> dict[str, tuple[str, list[str], list[str]]]:
    """Output tensor name → (op, input tensor names, consumer output names) of the plain int8 model
    (empty when this TensorFlow's interpreter does not list its ops)."""
    import tensorflow as tf

    with conversion("the int8 graph"):
        debugger.options = tf.lite.experimental.QuantizationDebugOptions()
        interpreter = tf.lite.Interpreter(model_content=debugger.get_nondebug_quantized_model())
    ops = getattr(interpreter, "_get_ops_details", None)
    if ops is None:
        return {}
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    graph: dict[str, tuple[str, list[str], list[str]]] = {}
    for op in ops():
        if len(op["outputs"]):
            inputs = [names[int(i)] for i in op["inputs"] if int(i) in names]
            graph[names[int(op["outputs"][0])]] = (op["op_name"], inputs, [])
    for output, (_, inputs, _) in graph.items():
        for tensor in inputs:
            if tensor in graph:
                graph[tensor][2].append(output)
    return graph


def _region(tensor: str, graph: dict[str, tuple[str, list[str], list[str]]]) -> tuple[str, ...]:
    """``tensor``'s op with the ops around it up to the nearest weighted op on each side: the range
    that damages a layer is often set before it (an outlier channel requantized through a pooling),
    and its own output is requantized on the way into the next layers unless they stay float too."""
    nodes = [tensor]

    def walk(start: str, step: int) -> None:  # step 1: inputs' producers, 2: consumers
        frontier = [start]
        for _ in range(MAX_FOLLOWERS):
            following = []
            for name in frontier:
                for nxt in graph.get(name, ("", [], []))[step]:
                    if nxt not in graph or nxt in nodes:
                        continue
                    op = graph[nxt][0]
                    if op not in SKIPPED_OPS:
                        nodes.append(nxt)
                    if op not in WEIGHTED_OPS:
                        following.append(nxt)
            frontier = following

    if tensor in graph:
        walk(tensor, 1)
        walk(tensor, 2)
    return tuple(nodes)


LADDER = Ladder(
    format="tflite",
    rungs=(
        Rung("int8", "int8", _full, "TFLiteConverter's full-integer int8 (uint8 input and output)"),
        Rung("int8+float", "selective", _selective, "int8 with the worst layers in float (float input and output)"),
        Rung("int16x8", "int16", _int16x8, "int16 activations, int8 weights"),
        *float_rungs("tflite"),
    ),
    rank=rank_layers,
)
register_ladder(LADDER)
