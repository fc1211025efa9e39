"""Keras → ONNX with tf2onnx (``from_function``), then fp16 or static QDQ int8 with ONNX Runtime.

``tf2onnx.convert.from_keras`` fails with Keras 3, so the model is traced as a
``tf.function`` with an input signature, frozen, and converted as a GraphDef. int8 is ONNX Runtime's static QDQ
quantization (``quant_pre_process`` first), per-tensor by default: faster than
per-channel on x86, at a small cost in agreement on depthwise-conv models
(``benchmarks/results/quantization-*.md``); ``per_channel=True`` trades the other way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgecls.converters.errors import ExportError
from edgecls.converters.formats.base import ConvertJob
from edgecls.runtime.card import ModelCard
from edgecls.runtime.errors import engine_errors

__all__ = ["OnnxFormat", "OnnxOptions", "INPUT_NAME", "StaticInt8", "quantize_static_int8", "preprocessed_fp32",
           "calibration_reader"]

INPUT_NAME = "image"
CALIBRATION_FLUSH = 8
"""At most this many calibration images' intermediate outputs are held before ONNX Runtime folds them
into its ranges (``CalibStridedMinMax``; its ``CalibMaxIntermediateOutputs`` drops the held outputs
without folding them in, onnxruntime 1.32)."""


@dataclass(frozen=True)
class OnnxOptions:
    """Options of the ONNX format.

    Attributes:
        opset: the ONNX opset tf2onnx writes.
        per_channel: per-channel weight scales for static int8 (more accurate, slower on x86).
    """

    opset: int = 17
    per_channel: bool = False


def _fp32_proto(job: ConvertJob) -> Any:
    """Trace the model as a tf.function, freeze every capture to a constant, rewrite, convert the GraphDef.

    Freezing first matters: ``from_function`` leaves tensors that Keras 3 layers
    capture (e.g. Normalization's mean and variance) as extra graph inputs. The
    rewrites (:mod:`.tf_graph`) free XLA-compiled calls for inlining and express
    ``Erfc`` through ``Erf``.

    Raises:
        ExportError: tf2onnx fails, or leaves an op ONNX does not have (naming its layer).
    """
    if "onnx_fp32" not in job.cache:
        import tensorflow as tf
        import tf2onnx
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        from edgecls.converters.formats.tf_graph import apply_rewrites

        spec = tf.TensorSpec((None, job.height, job.width, job.channels), tf.float32, name=INPUT_NAME)
        model = job.model
        function = tf.function(lambda x: model(x, training=False), input_signature=(spec,))
        with engine_errors(ExportError, "ONNX conversion failed"):
            frozen = convert_variables_to_constants_v2(function.get_concrete_function())
            graph_def = frozen.graph.as_graph_def()
            rewrites = apply_rewrites(graph_def)
            proto, _ = tf2onnx.convert.from_graph_def(
                graph_def,
                input_names=[t.name for t in frozen.inputs],
                output_names=[t.name for t in frozen.outputs],
                opset=job.options_for(FORMAT).opset,
            )
        _check_ops(proto)
        if rewrites.get("erfc_as_erf"):
            job.notes.append(f"onnx: {rewrites['erfc_as_erf']} Erfc ops (exact GELU) written as 1 - Erf")
        _rename_input(proto, INPUT_NAME)
        job.cache["onnx_fp32"] = proto
    return job.cache["onnx_fp32"]


def _check_ops(proto: Any) -> None:
    """Raise ExportError naming the first layer whose op tf2onnx left untranslated."""
    from edgecls.converters.formats.tf_graph import layer_of, unsupported_nodes

    bad = unsupported_nodes(proto)
    if bad:
        name, op = bad[0]
        kinds = sorted({o for _, o in bad})
        raise ExportError(f"ONNX: layer {layer_of(name)!r} has TensorFlow op {op} that tf2onnx cannot translate "
                          f"({len(bad)} such nodes, ops: {', '.join(kinds)})")


def _rename_input(proto: Any, name: str) -> None:
    old = proto.graph.input[0].name
    if old == name:
        return
    proto.graph.input[0].name = name
    for node in proto.graph.node:
        node.input[:] = [name if i == old else i for i in node.input]


def _fp32(job: ConvertJob) -> bytes:
    return _fp32_proto(job).SerializeToString()


def _fp16(job: ConvertJob) -> bytes:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.ModelProto()
    model.CopyFrom(_fp32_proto(job))
    return convert_float_to_float16(model, keep_io_types=True).SerializeToString()


class _Reader:
    """Adapts a :class:`CalibrationReader` to ONNX Runtime's CalibrationDataReader, with the ranges
    (``set_range``) that its strided calibration reads one after another."""

    def __init__(self, images: Any) -> None:
        self._images = images
        self._range = (0, len(images))
        self._iter: Iterator[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._images)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._range, self._iter = (start_index, end_index), None

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iter is None:
            self._iter = itertools.islice(iter(self._images), *self._range)
        image = next(self._iter, None)
        return None if image is None else {INPUT_NAME: image[None].astype(np.float32)}

    def rewind(self) -> None:
        self._iter = None

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:  # qdq_loss_debug iterates the reader
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def calibration_reader(images: Any) -> Any:
    """An ONNX Runtime ``CalibrationDataReader`` over uint8 images (the ladder's activation matching)."""
    return _Reader(images)


def calibration_stride(count: int, most: int = CALIBRATION_FLUSH) -> int:
    """The largest divisor of ``count`` that is at most ``most`` (ONNX Runtime's strided calibration
    needs one that divides the image count)."""
    return max(d for d in range(1, min(count, most) + 1) if count % d == 0)


HISTOGRAM_IMAGES = 64
"""Calibration images the histogram methods (Percentile, Entropy) read: ONNX Runtime holds every
image's intermediate outputs until it builds the histograms, so their memory grows with this count."""


@dataclass(frozen=True)
class StaticInt8:
    """One static QDQ quantization of the fp32 graph (ONNX Runtime's ``quantize_static``)."""

    per_channel: bool = False
    method: str = "MinMax"
    """``MinMax``, ``Percentile`` or ``Entropy`` (ONNX Runtime's ``CalibrationMethod``)."""
    activations: str = "QUInt8"
    """``QUInt8``, or ``QInt16`` for 16-bit activations."""
    exclude: tuple[str, ...] = ()
    """Nodes left in float."""

    @property
    def slug(self) -> str:
        return f"{self.method}-{'pc' if self.per_channel else 'pt'}-{self.activations}-{len(self.exclude)}"


def preprocessed_fp32(job: ConvertJob) -> Any:
    """The fp32 graph after ONNX Runtime's ``quant_pre_process`` (the graph every static quantization
    starts from; its node names are the ones ``exclude`` names), as a path in the job's work folder."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = job.workdir / "pre.onnx"
    if "onnx_pre" not in job.cache:
        src = job.workdir / "fp32.onnx"
        src.write_bytes(_fp32(job))
        with engine_errors(ExportError, "ONNX int8 quantization failed"):
            quant_pre_process(str(src), str(pre))
        job.cache["onnx_pre"] = pre
    return job.cache["onnx_pre"]


def quantize_static_int8(job: ConvertJob, config: StaticInt8) -> bytes:
    """The QDQ model of ``config``. Raises ExportError (no calibration images, or ONNX Runtime failed)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if job.calibration is None:
        raise ExportError("int8 needs calibration images")
    pre, out = preprocessed_fp32(job), job.workdir / f"int8-{config.slug}.onnx"
    images = job.calibration
    if config.method == "MinMax":
        # fold the collected activations into running ranges every few images, instead of keeping
        # every intermediate tensor of every calibration image until the end (GBs for big models)
        extra = {"CalibStridedMinMax": calibration_stride(len(images))}
    else:
        images = list(itertools.islice(iter(images), HISTOGRAM_IMAGES))
        extra = {}
    with engine_errors(ExportError, f"ONNX int8 quantization ({config.method}) failed"):
        quantize_static(
            str(pre), str(out), _Reader(images),
            quant_format=QuantFormat.QDQ, per_channel=config.per_channel,
            activation_type=getattr(QuantType, config.activations), weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, config.method),
            nodes_to_exclude=list(config.exclude), extra_options=extra,
        )
    data = out.read_bytes()
    out.unlink()
    return data


def _int8(job: ConvertJob) -> bytes:
    return quantize_static_int8(job, StaticInt8(per_channel=job.options_for(FORMAT).per_channel))


def _dynamic(job: ConvertJob) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, out = job.workdir / "fp32_dyn.onnx", job.workdir / "dynamic.onnx"
    src.write_bytes(_fp32(job))
    with engine_errors(ExportError, "ONNX dynamic quantization failed"):
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QUInt8)
    return out.read_bytes()


_STEPS: dict[str, Callable[[ConvertJob], bytes]] = {"fp32": _fp32, "fp16": _fp16, "dynamic": _dynamic, "int8": _int8}


class OnnxFormat:
    name = "onnx"
    suffix = ".onnx"
    options_type = OnnxOptions
    quantizations: ClassVar[dict[str, str]] = {
        "fp32": "float32",
        "fp16": "float16 weights and compute, float32 input/output",
        "dynamic": "uint8 weights, activations quantized at run time (ConvInteger/MatMulInteger)",
        "int8": "static QDQ int8 (per-tensor; per-channel with per_channel=True), calibrated; float32 input",
    }

    def prepare(self, job: ConvertJob) -> None:
        _fp32_proto(job)

    def convert(self, job: ConvertJob, quantization: str) -> bytes:
        return _STEPS[quantization](job)

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        import onnx

        from edgecls.converters.metadata.onnx_embed import embed_card_onnx

        with engine_errors(ExportError, "not an ONNX model"):
            model = onnx.load_from_string(data)
        return embed_card_onnx(model, card).SerializeToString()


FORMAT = OnnxFormat()
