"""What a model's last layer outputs, from every piece of evidence there is, and how it becomes probabilities.

Users train image classifiers with one of six heads (:data:`HEAD_KINDS`): a softmax; raw logits
(TensorFlow's tutorial: ``Dense(N)`` with ``from_logits=True``); a binary ``Dense(1)`` with a sigmoid or
as a logit (keras.io's binary example, the transfer-learning tutorial); or a multi-label ``Dense(k)``
with sigmoids or logits. The evidence, each giving the kinds it is consistent with:

- the layer that makes the output (a ``Dense``'s activation, a ``Softmax``/``Activation`` layer, a Keras
  or TensorFlow softmax/sigmoid op), looked for through dropout and reshapes and inside nested models;
- the loss the model was compiled with, where the file keeps it (its class and ``from_logits``);
- the outputs themselves on the images at hand: rows in [0, 1] summing to 1, all in [0, 1], or beyond.

One kind left is the head; none (the evidence disagrees) or several (it cannot decide) is an error that
names what was seen and ``head=`` (``--head``), which settles it. Every exported file then outputs
probabilities (:meth:`Head.wrap`): a softmax after logits, ``[1 − p, p]`` for a binary head, a sigmoid
after multi-label logits.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.converters.errors import ExportError

__all__ = ["HEAD_KINDS", "Evidence", "Head", "detect_head", "file_loss", "to_probabilities"]

HEAD_KINDS = ("softmax", "logits", "binary-sigmoid", "binary-logit", "multilabel-sigmoid", "multilabel-logit")
_SINGLE = ("softmax", "logits")
_BINARY = ("binary-sigmoid", "binary-logit")
_MULTI = ("multilabel-sigmoid", "multilabel-logit")
_LOGIT = ("logits", "binary-logit", "multilabel-logit")
_SIGMOID = ("binary-sigmoid", "multilabel-sigmoid")

_PASS_THROUGH = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
                           "GaussianNoise", "AlphaDropout", "Reshape", "Flatten", "Identity", "ActivityRegularization"})
"""Layers between the deciding layer and the output that change no value."""

_PROBABILITY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence: where it comes from, what it saw, and the head kinds consistent with it."""

    source: str
    """``layer``, ``loss``, ``outputs`` or ``head`` (the caller's word)."""
    seen: str
    kinds: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Head:
    """The model's head: its kind, the evidence, and whether the caller chose it."""

    kind: str
    evidence: tuple[Evidence, ...]
    chosen: bool = False

    @property
    def multi_label(self) -> bool:
        return self.kind in _MULTI

    @property
    def binary(self) -> bool:
        return self.kind in _BINARY

    @property
    def chosen_by(self) -> str:
        return "head option" if self.chosen else "detected"

    @property
    def baked(self) -> str:
        """What the export adds after the model: ``softmax``, ``sigmoid``, ``[1 - p, p]``,
        ``softmax of [0, z]`` (= ``[1 - sigmoid(z), sigmoid(z)]``), or nothing."""
        return {"logits": "softmax", "multilabel-logit": "sigmoid", "binary-sigmoid": "[1 - p, p]",
                "binary-logit": "softmax of [0, z]"}.get(self.kind, "")

    def classes(self, width: int) -> int:
        """How many scores the exported file outputs for a model output ``width`` wide."""
        return 2 if self.binary else width

    def wrap(self, keras: Any, outputs: Any) -> Any:
        """``outputs`` (the model's, a Keras tensor) as probabilities, with layers of the model's own Keras."""
        if self.kind == "logits":
            return keras.layers.Softmax(name="edgecls_softmax")(outputs)
        if self.kind == "multilabel-logit":
            return keras.layers.Activation("sigmoid", name="edgecls_sigmoid")(outputs)
        if self.kind == "binary-sigmoid":  # [1 - p, p] = p * [-1, 1] + [1, 0]
            return _fixed_dense(keras, outputs, [[-1.0, 1.0]], [1.0, 0.0], "edgecls_binary")
        if self.kind == "binary-logit":  # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]
            zero_z = _fixed_dense(keras, outputs, [[0.0, 1.0]], [0.0, 0.0], "edgecls_binary")
            return keras.layers.Softmax(name="edgecls_softmax")(zero_z)
        return outputs

    def apply(self, model: Any) -> Any:
        """``model`` (a functional Keras model) with :meth:`wrap` after its output; ``model`` itself when the
        head adds nothing."""
        if not self.baked:
            return model
        from edgecls.converters.normalization import keras_of

        keras = keras_of(model)
        return keras.Model(model.inputs, self.wrap(keras, model.outputs[0]), name=model.name)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """What :meth:`wrap` computes, in numpy (float32): the Keras model's probabilities from its outputs."""
        return to_probabilities(self.kind, outputs)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "chosen_by": self.chosen_by,
                "baked": self.baked, "evidence": [e.to_dict() for e in self.evidence]}


def _fixed_dense(keras: Any, x: Any, kernel: list[list[float]], bias: list[float], name: str) -> Any:
    layer = keras.layers.Dense(len(bias), name=name, trainable=False)
    y = layer(x)
    layer.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    return y


def to_probabilities(kind: str, outputs: np.ndarray) -> np.ndarray:
    """A head's outputs as the probabilities its export outputs (see :meth:`Head.wrap`)."""
    x = np.asarray(outputs, np.float32)
    if kind == "logits":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    if kind == "multilabel-logit":
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)
    if kind in _BINARY:
        p = x[:, :1] if kind == "binary-sigmoid" else 1.0 / (1.0 + np.exp(-x[:, :1]))
        return np.concatenate([1.0 - p, p], axis=1).astype(np.float32)
    return x


# -- evidence ---------------------------------------------------------------------------------------


def _activation_name(layer: Any) -> str | None:
    """``softmax``, ``sigmoid``, ``linear`` ... of a layer that applies one, None when it applies none."""
    cls = type(layer).__name__
    if cls in ("Softmax", "LogSoftmax"):
        return "softmax" if cls == "Softmax" else "log_softmax"
    if cls == "Sigmoid":  # keras.ops.sigmoid recorded as an operation
        return "sigmoid"
    if cls in ("TFOpLambda",):
        function = getattr(layer, "symbol", None) or getattr(getattr(layer, "function", None), "__name__", "")
        for name in ("log_softmax", "softmax", "sigmoid"):
            if name in str(function):
                return name
        return None
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", None) or type(activation).__name__.lower()


def _producer(tensor: Any) -> Any | None:
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history is not None else None


def _deciding_layer(model: Any) -> tuple[Any | None, list[str]]:
    """The layer whose activation makes the model's output (through pass-through layers and nested
    models), with the path of layer names walked; None when it is not one that says."""
    path: list[str] = []
    tensor = model.outputs[0]
    for _ in range(1000):  # a bound on a walk through a graph made by the file
        layer = _producer(tensor)
        if layer is None:
            return None, path
        path.append(getattr(layer, "name", type(layer).__name__))
        if hasattr(layer, "layers") and getattr(layer, "outputs", None):  # a nested model: its own output
            tensor = layer.outputs[0]
            continue
        name = _activation_name(layer)
        cls = type(layer).__name__
        if cls in _PASS_THROUGH or (cls == "Activation" and name == "linear"):
            try:
                tensor = layer.input
            except (AttributeError, ValueError, RuntimeError):  # a layer called twice: no single input
                return None, path
            if isinstance(tensor, (list, tuple)):
                return None, path
            continue
        return (layer if name is not None else None), path
    return None, path


def layer_evidence(model: Any, width: int) -> Evidence | None:
    """What the deciding layer says (None when the output does not come from a layer that says)."""
    layer, path = _deciding_layer(model)
    if layer is None:
        return None
    name = _activation_name(layer)
    where = f"{type(layer).__name__} {path[-1]!r}" + (f" (via {' > '.join(path[:-1])})" if len(path) > 1 else "")
    if name == "softmax":
        kinds = ("softmax",) if width > 1 else ()
    elif name == "sigmoid":
        kinds = ("binary-sigmoid",) if width == 1 else ("multilabel-sigmoid",)
    elif name in ("linear", "log_softmax"):
        kinds = ("binary-logit",) if width == 1 else (("logits",) if name == "log_softmax" else ("logits", "multilabel-logit"))
    else:
        return Evidence("layer", f"{where} ends in {name}, neither a softmax, a sigmoid nor linear", ())
    return Evidence("layer", f"{where} ends in {name}", kinds)


def loss_evidence(loss: Any) -> Evidence | None:
    """What the compiled loss says: a string, a Keras loss object, or a serialized one (a dict)."""
    if loss is None:
        return None
    name, from_logits = _loss_name(loss)
    if name is None:
        return None
    key = name.replace("_", "").lower()
    shown = f"{name}(from_logits={from_logits})"
    if "binary" in key and "crossentropy" in key:
        kinds = ("binary-logit", "multilabel-logit") if from_logits else ("binary-sigmoid", "multilabel-sigmoid")
    elif "categorical" in key and "crossentropy" in key:
        kinds = ("logits",) if from_logits else ("softmax",)
    else:
        return None  # a loss that says nothing about the head (hinge, MSE, a custom one)
    return Evidence("loss", f"compiled with {shown}", kinds)


def _loss_name(loss: Any) -> tuple[str | None, bool]:
    """(name, from_logits) of a loss given as a string, a serialized dict, a Keras loss object or a function."""
    if isinstance(loss, str):
        return loss, False
    if isinstance(loss, dict):
        config = loss.get("config")
        if loss.get("class_name") == "function":  # Keras 3's serialized function: the name is the config
            return (config if isinstance(config, str) else None), False
        config = config if isinstance(config, dict) else {}
        name = loss.get("class_name")
        return (name if isinstance(name, str) else None), bool(config.get("from_logits", False))
    try:
        config = loss.get_config() if hasattr(loss, "get_config") else {}
    except Exception:  # a custom loss whose config fails says nothing
        config = {}
    config = config if isinstance(config, dict) else {}
    name = config.get("name") or getattr(loss, "__name__", None) or type(loss).__name__
    return (name if isinstance(name, str) else None), bool(config.get("from_logits", False))


def file_loss(path: Path | None) -> Any | None:
    """The loss a Keras file was compiled with (``training_config`` of an ``.h5``, ``compile_config`` of a
    ``.keras``), None when it keeps none. Reads JSON only; never raises for a file that has no loss."""
    if path is None or path.is_dir():
        return None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
            compiled = config.get("compile_config") if isinstance(config, dict) else None
        else:
            import h5py

            with h5py.File(path, "r") as h5:
                text = h5.attrs.get("training_config")
            compiled = json.loads(text) if text is not None else None
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile):
        return None
    return compiled.get("loss") if isinstance(compiled, dict) else None


def output_evidence(outputs: np.ndarray, source: str) -> Evidence:
    """What the model's outputs on ``source``'s images say."""
    x = np.asarray(outputs, np.float64)
    width = x.shape[1]
    low, high = float(x.min()), float(x.max())
    if low < -_PROBABILITY_TOLERANCE or high > 1 + _PROBABILITY_TOLERANCE:
        kinds = ("binary-logit",) if width == 1 else ("logits", "multilabel-logit")
        return Evidence("outputs", f"outputs from {low:.3g} to {high:.3g} on {len(x)} {source}: not probabilities",
                        kinds)
    sums = x.sum(axis=1)
    if width > 1 and np.abs(sums - 1).max() < _PROBABILITY_TOLERANCE:
        return Evidence("outputs", f"every row of {len(x)} {source} in [0, 1] and summing to 1", ("softmax",))
    kinds = _BINARY if width == 1 else ("logits", *_MULTI)
    return Evidence("outputs", f"outputs in [0, 1] on {len(x)} {source}, rows summing to "
                               f"{sums.min():.3g}..{sums.max():.3g}", kinds)


def detect_head(model: Any, outputs: np.ndarray | None, *, loss: Any = None, head: str | None = None,
                source: str = "images") -> Head:
    """The head of ``model`` from its deciding layer, its ``loss`` and its ``outputs`` (N × width, on the
    validation or calibration images: ``source`` names them); ``head`` (a kind) settles it.

    Raises:
        ExportError: ``head`` is not a kind or does not fit the output's width; the evidence disagrees or
            cannot decide between kinds (the message names each piece and ``head``).
    """
    width = int(model.outputs[0].shape[-1])
    possible = _BINARY if width == 1 else (*_SINGLE, *_MULTI)
    evidence = [e for e in (layer_evidence(model, width), loss_evidence(loss),
                            output_evidence(outputs, source) if outputs is not None else None) if e is not None]
    if head is not None:
        if head not in HEAD_KINDS:
            raise ExportError(f"unknown head {head!r}; choose from {', '.join(HEAD_KINDS)}", options=("head",))
        if head not in possible:
            raise ExportError(f"head {head!r} does not fit an output {width} wide (it fits {', '.join(possible)})",
                              options=("head",))
        return Head(head, (*evidence, Evidence("head", f"head {head!r} given", (head,))), chosen=True)
    left = [k for k in possible if all(k in e.kinds for e in evidence)]
    seen = "; ".join(f"{e.source}: {e.seen}" for e in evidence) or "nothing that says"
    if len(left) == 1:
        return Head(left[0], tuple(evidence))
    if not left:
        raise ExportError(f"the model's head is unclear, the evidence disagrees ({seen}); give the head as one of "
                          f"{', '.join(possible)}", options=("head",))
    raise ExportError(f"cannot tell the model's head ({seen}): it may be {' or '.join(left)}; give the head",
                      options=("head",))


def head_labels(head: Head, labels: Sequence[str], positive: str | None) -> list[str]:
    """The labels in the order of the exported scores: for a binary head the negative label first, the
    ``positive`` one (whose probability the model outputs) second; others unchanged.

    Raises:
        ExportError: a binary head without exactly two labels, or ``positive`` not among them.
    """
    names = list(labels)
    if positive is None:
        return names
    if not head.binary:
        raise ExportError(f"positive {positive!r} is for a binary head; this one is {head.kind}", options=("positive",))
    if positive not in names:
        raise ExportError(f"positive {positive!r} is not one of the labels {', '.join(names)}", options=("positive",))
    return [n for n in names if n != positive] + [positive]
