"""The ONNX quantization ladder: static QDQ int8 (per-tensor/per-channel, MinMax/Percentile/Entropy),
int8 with float nodes, int16 activations, fp16, fp32.

The layer ranking uses ONNX Runtime's ``qdq_loss_debug`` activation matching on a few calibration
images: the signal-to-quantization-noise ratio (SQNR, dB) of every activation of the QDQ model
against the float model's. Noise accumulates along the graph, so a node is charged with the SQNR it
loses: its worst input's SQNR minus its output's. The nodes that lose most stay float first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from edgecls.converters.errors import ExportError
from edgecls.converters.formats.base import ConvertJob
from edgecls.converters.formats.onnx_format import (
    StaticInt8,
    calibration_reader,
    preprocessed_fp32,
    quantize_static_int8,
)
from edgecls.converters.ladder.rungs import Ladder, LayerError, Rung, float_rungs, register_ladder
from edgecls.runtime.errors import engine_errors

__all__ = ["LADDER", "INT8_VARIANTS", "MATCH_IMAGES"]

MATCH_IMAGES = 8
"""Calibration images run through the float and QDQ models to rank nodes, at up to 64×64 inputs."""
CLEAN_DB = 100.0
"""The SQNR credited to a node's inputs when none of them is a quantized activation (the graph input)."""
"""Calibration images run through the float and QDQ models to rank nodes (every activation of each is held)."""

INT8_VARIANTS = {
    "int8": StaticInt8(),
    "int8 per-channel": StaticInt8(per_channel=True),
    "int8 percentile": StaticInt8(method="Percentile"),
    "int8 entropy": StaticInt8(method="Entropy"),
}
"""Full-int8 rungs in the order they are tried: per-tensor MinMax runs fastest on x86."""


def _variant(name: str):
    def build(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
        return quantize_static_int8(job, INT8_VARIANTS[name])

    return build


def _selective(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
    config = INT8_VARIANTS[base]
    return quantize_static_int8(job, StaticInt8(config.per_channel, config.method, exclude=tuple(layers)))


def _int16(job: ConvertJob, base: str, layers: Sequence[str]) -> bytes:
    return quantize_static_int8(job, StaticInt8(activations="QInt16"))


def rank_layers(job: ConvertJob, base: str) -> list[LayerError]:
    """Nodes of the preprocessed fp32 graph by the quantization noise of their output in the ``base``
    QDQ model, worst first (ties keep the graph's order)."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    if job.calibration is None:
        raise ExportError("ranking layers needs calibration images")
    qdq = job.workdir / "rank-qdq.onnx"
    qdq.write_bytes(quantize_static_int8(job, INT8_VARIANTS[base]))
    augmented, float_augmented = job.workdir / "rank-qdq-augmented.onnx", job.workdir / "rank-float-augmented.onnx"
    # every activation of every image is held, twice: fewer images for larger inputs (2 at 224×224)
    count = max(2, min(MATCH_IMAGES, (MATCH_IMAGES * 64 * 64) // (job.height * job.width)))
    images = list(itertools.islice(iter(job.calibration), count))
    with engine_errors(ExportError, "ONNX per-layer quantization error failed"):
        modify_model_output_intermediate_tensors(str(qdq), str(augmented))
        modify_model_output_intermediate_tensors(str(preprocessed_fp32(job)), str(float_augmented))
        activations = collect_activations(str(augmented), calibration_reader(images))
        float_activations = collect_activations(str(float_augmented), calibration_reader(images))
        errors = compute_activation_error(create_activation_matching(activations, float_activations))
        del activations, float_activations
    sqnr = {t: float(e["xmodel_err"]) for t, e in errors.items()
            if e.get("xmodel_err") is not None and math.isfinite(float(e["xmodel_err"]))}
    graph = onnx.load(str(preprocessed_fp32(job)), load_external_data=False).graph
    producer = {t: node for node in graph.node for t in node.output}

    def upstream(tensor: str, chain: list[str], depth: int = 0) -> list[float]:
        """SQNRs of the nearest measured activations feeding ``tensor``; unmeasured producers join ``chain``."""
        if tensor in sqnr:
            return [sqnr[tensor]]
        node = producer.get(tensor)
        if node is None or depth > 8:  # a weight, the graph input, or too far: nothing measured
            return []
        chain.append(node.name)
        return [v for t in node.input for v in upstream(t, chain, depth + 1)]

    ranked = []
    for order, node in enumerate(graph.node):
        outputs = [sqnr[t] for t in node.output if t in sqnr]
        if not outputs:
            continue
        chain: list[str] = []
        inputs = [v for t in node.input for v in upstream(t, chain)]
        lost = min(min(inputs) if inputs else CLEAN_DB, CLEAN_DB) - min(outputs)
        ranked.append((-lost, order, LayerError(node.name, node.op_type, lost, "SQNR dB lost",
                                                nodes=(*dict.fromkeys(chain), node.name))))
    for path in (qdq, augmented, float_augmented):
        path.unlink(missing_ok=True)
    return [layer for *_, layer in sorted(ranked, key=lambda item: item[:2])]


LADDER = Ladder(
    format="onnx",
    rungs=(
        *(Rung(name, "int8", _variant(name), f"static QDQ {name}") for name in INT8_VARIANTS),
        Rung("int8+float", "selective", _selective, "static QDQ int8 with the worst nodes in float"),
        Rung("int16", "int16", _int16, "16-bit activations, int8 weights"),
        *float_rungs("onnx"),
    ),
    rank=rank_layers,
)
register_ladder(LADDER)
