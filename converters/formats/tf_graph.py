"""Rewrites of a frozen TensorFlow GraphDef that make Keras 3 graphs convertible by tf2onnx.

Keras 3 leaves constructs in a frozen graph that tf2onnx cannot translate:

- ``inline_xla_calls``: grouped and depthwise convolutions (ConvNeXt's, for one) run
  inside ``tf.function(jit_compile=True)`` helpers, frozen as ``StatefulPartitionedCall``
  nodes whose functions carry ``_noinline``/``_XlaMustCompile``. Grappler's function
  inliner, which tf2onnx runs, skips such functions; without those attributes it
  inlines them and the plain ``Conv2D`` inside converts.
- ``erfc_as_erf``: exact GELU lowers to ``Erfc``, which ONNX lacks; ``1 - Erf(x)``
  is the same function and ONNX has ``Erf``.

Rewrites are a registry (name → function returning how many nodes it changed), applied
in order by :func:`apply_rewrites`. :func:`unsupported_nodes` lists what a converted ONNX
graph still holds that is not an ONNX operator, so an export can fail naming the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["GRAPH_REWRITES", "apply_rewrites", "unsupported_nodes", "layer_of"]

_CALL_OPS = ("StatefulPartitionedCall", "PartitionedCall")
_NO_INLINE_ATTRS = ("_noinline", "_XlaMustCompile")


def inline_xla_calls(graph_def: Any) -> int:
    """Drop the attributes that stop grappler inlining function calls; returns the calls freed."""
    for function in graph_def.library.function:
        for attr in _NO_INLINE_ATTRS:
            if attr in function.attr:
                del function.attr[attr]
    freed = 0
    for node in graph_def.node:
        if node.op in _CALL_OPS:
            freed += 1
            for attr in _NO_INLINE_ATTRS:
                if attr in node.attr:
                    del node.attr[attr]
    return freed


def erfc_as_erf(graph_def: Any) -> int:
    """Replace every ``Erfc(x)`` node by ``1 - Erf(x)`` under the same name; returns the count."""
    import tensorflow as tf

    changed = 0
    for node in [n for n in graph_def.node if n.op == "Erfc"]:
        dtype = node.attr["T"].type
        one = graph_def.node.add(name=f"{node.name}/edgecls_one", op="Const")
        one.attr["dtype"].type = dtype
        one.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(1.0, dtype=tf.as_dtype(dtype)))
        erf = graph_def.node.add(name=f"{node.name}/edgecls_erf", op="Erf", input=list(node.input))
        erf.attr["T"].type = dtype
        node.op = "Sub"
        del node.input[:]
        node.input.extend([one.name, erf.name])
        changed += 1
    return changed


GRAPH_REWRITES: dict[str, Callable[[Any], int]] = {
    "inline_xla_calls": inline_xla_calls,
    "erfc_as_erf": erfc_as_erf,
}


def apply_rewrites(graph_def: Any) -> dict[str, int]:
    """Apply every registered rewrite in place; returns {rewrite: nodes changed} for those that changed any."""
    counts = {name: rewrite(graph_def) for name, rewrite in GRAPH_REWRITES.items()}
    return {name: count for name, count in counts.items() if count}


def layer_of(node_name: str) -> str:
    """The Keras layer a TF/ONNX node name comes from: its path without edgecls' wrapper and the op."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) > 1:
        parts = parts[:-1]
    if len(parts) > 1 and parts[0].startswith("edgecls_"):
        parts = parts[1:]
    return "/".join(parts)


def unsupported_nodes(proto: Any) -> list[tuple[str, str]]:
    """(node name, op type) of every node in an ONNX model that is not an operator ONNX Runtime knows."""
    import onnx

    def known(node: Any) -> bool:
        if node.domain in ("", "ai.onnx"):
            return onnx.defs.has(node.op_type)
        return node.domain in ("com.microsoft", "ai.onnx.ml")

    return [(node.name, node.op_type) for node in proto.graph.node if not known(node)]
