"""Load a trained Keras image classifier safely and check that it is one.

Accepted: ``.h5`` (Keras 2 / tf_keras or Keras 3), ``.keras`` and a SavedModel
folder. Unless the caller passes ``unsafe=True``, the file is read by
:mod:`edgecls.converters.safe_mode` before any loader sees it (tf_keras ignores
``safe_mode`` for ``.h5`` files; a SavedModel runs the ops it holds), and Keras'
own ``safe_mode`` stays on: nothing from the file runs.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.converters.errors import CustomObjectError, ExportError, UnsafeModelError
from edgecls.converters.heads import file_loss
from edgecls.converters.safe_mode import check_model_file
from edgecls.runtime.errors import engine_errors, engine_message

__all__ = ["LoadedModel", "load_keras_model", "load_custom_objects", "check_classifier"]


@dataclass(frozen=True)
class LoadedModel:
    """A Keras model and what was learned about it while loading."""

    model: Any
    source: Path | None
    height: int
    width: int
    channels: int
    num_classes: int
    """The model output's width: classes or labels, 1 for a binary head."""
    notes: tuple[str, ...] = ()
    loss: Any = None
    """The loss the model was compiled with, where the file (or the in-memory model) keeps it."""


def load_custom_objects(module_path: str | Path) -> dict[str, Any]:
    """Import a Python file and return its public classes and functions by name.

    Raises:
        ExportError: the file is missing or fails to import.
    """
    path = Path(module_path)
    if not path.is_file():
        raise ExportError(f"{path}: custom-objects module not found")
    spec = importlib.util.spec_from_file_location(f"edgecls_custom_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    with engine_errors(ExportError, f"{path}: cannot import custom-objects module",
                       describe=lambda exc: f"{exc.__class__.__name__}: {engine_message(exc)}"):
        spec.loader.exec_module(module)
    sys.modules[spec.name] = module
    return {name: value for name, value in vars(module).items() if not name.startswith("_") and callable(value)}


def _chain_text(exc: BaseException) -> str:
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _explain(path: Path, exc: Exception) -> ExportError:
    text = _chain_text(exc)
    if "Lambda" in text and ("safe_mode" in text or "arbitrary code" in text):
        return UnsafeModelError(
            f"{path}: the model has a Lambda layer, whose Python code Keras will not load in safe mode; "
            "pass unsafe=True only if you trust this file", options=("unsafe",)
        )
    match = re.search(r"Could not locate (?:class|function) '([\w.>]+)'|Unknown (?:layer|object|class)\w*:? '([\w.>]+)'", text)
    if match:
        name = (match.group(1) or match.group(2)).split(">")[-1]
        return CustomObjectError(
            f"{path}: unknown custom layer or object {name!r}; pass custom_objects= (a module or a dict) "
            "with its class", options=("custom_objects",)
        )
    return ExportError(f"{path}: cannot load the Keras model ({engine_message(exc)})")


def _load_saved_model(path: Path) -> Any:
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ExportError(f"{path}: not a loadable SavedModel folder ({exc.__class__.__name__})") from None
    endpoints = [k for k in ("serving_default", "serve") if k in getattr(loaded, "signatures", {})]
    if not endpoints:
        raise ExportError(f"{path}: SavedModel has no 'serving_default' or 'serve' signature")
    signature = loaded.signatures[endpoints[0]]
    specs = list(signature.structured_input_signature[1].values()) or list(signature.structured_input_signature[0])
    if len(specs) != 1:
        raise ExportError(f"{path}: the SavedModel signature has {len(specs)} inputs; an image classifier has one")
    shape = specs[0].shape
    layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoints[0])
    inputs = keras.Input(tuple(shape[1:]), name="image")
    outputs = layer(inputs)
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise ExportError(f"{path}: the SavedModel has {len(outputs)} outputs; an image classifier has one")
        outputs = next(iter(outputs.values()))
    return keras.Model(inputs, outputs, name=path.name)


def _load_file(path: Path, unsafe: bool, custom_objects: dict[str, Any] | None) -> tuple[Any, list[str]]:
    import keras

    notes: list[str] = []
    try:
        return keras.models.load_model(path, compile=False, safe_mode=not unsafe,
                                       custom_objects=custom_objects), notes
    except Exception as exc:
        error = _explain(path, exc)
        if isinstance(error, UnsafeModelError) or path.suffix.lower() not in (".h5", ".hdf5"):
            raise error from None
        # an older .h5 that Keras 3 refuses (a Keras 2 config entry, tf_keras' own TFOpLambda layers):
        # tf_keras reads Keras 2 files. It ignores safe_mode for them, so safe mode has read the file first.
        try:
            import tf_keras
        except ImportError:
            raise ExportError(f"{error}; it may be an old Keras 2 file: pip install tf_keras and retry") from None
        try:
            model = tf_keras.models.load_model(path, compile=False, custom_objects=custom_objects, safe_mode=not unsafe)
        except Exception as exc2:
            raise _explain(path, exc2) from None
        notes.append("loaded with tf_keras (Keras 2 file)")
        return model, notes


def check_classifier(model: Any, source: Path | str, input_size: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """Return (height, width, channels, output width) of a one-image-input, one-output model.

    Raises:
        ExportError: several inputs or outputs, an input that is not rank 4, an output that is not
            (batch, scores), or free spatial dims without ``input_size``.
    """
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1:
        raise ExportError(f"{source}: the model has {len(inputs)} inputs; an image classifier has exactly one")
    if len(outputs) != 1:
        raise ExportError(f"{source}: the model has {len(outputs)} outputs; an image classifier has exactly one")
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise ExportError(f"{source}: the input has shape {shape}; an image input has rank 4 (batch, H, W, C)")
    _, height, width, channels = shape
    if channels not in (1, 3):
        raise ExportError(f"{source}: the input has {channels} channels; edgecls exports 1- or 3-channel image models")
    if height is None or width is None:
        if input_size is None:
            raise ExportError(f"{source}: the input size is free ({shape}); pass input_size=(H, W)",
                              options=("input_size",))
        height, width = input_size
    elif input_size is not None and tuple(input_size) != (height, width):
        raise ExportError(f"{source}: input_size {input_size[0]}x{input_size[1]} contradicts the model's fixed "
                          f"{height}x{width}", options=("input_size",))
    out_shape = tuple(outputs[0].shape)
    if len(out_shape) != 2 or not out_shape[1]:
        raise ExportError(f"{source}: the output has shape {out_shape}; a classifier outputs (batch, scores): one "
                          "score for a binary head, one per class or label otherwise")
    return int(height), int(width), int(channels), int(out_shape[1])


def load_keras_model(path: str | Path, *, unsafe: bool = False, custom_objects: dict[str, Any] | None = None,
                     input_size: tuple[int, int] | None = None) -> LoadedModel:
    """Load and check a Keras classifier from ``path``.

    Raises:
        UnsafeModelError: in safe mode, the file holds code (a Lambda layer, a SavedModel op that touches
            files, processes or Python; see :mod:`edgecls.converters.safe_mode`).
        CustomObjectError: an unknown custom layer.
        ExportError: missing path, not a model, or not an image classifier (see :func:`check_classifier`).
    """
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path}: no such model file or folder")
    if path.is_dir() and not (path / "saved_model.pb").exists():
        raise ExportError(f"{path}: a folder without saved_model.pb is not a SavedModel")
    if not path.is_dir() and path.suffix.lower() not in (".h5", ".hdf5", ".keras"):
        raise ExportError(f"{path}: unsupported model file {path.suffix or '(no suffix)'}; give .h5, .keras or a SavedModel folder")
    if not unsafe:
        check_model_file(path, custom_names=custom_objects or ())
    if path.is_dir():
        model, notes = _load_saved_model(path), ["loaded a SavedModel through keras.layers.TFSMLayer"]
    else:
        model, notes = _load_file(path, unsafe, custom_objects)
    return from_model(model, path, input_size=input_size, notes=notes, loss=file_loss(path))


def from_model(model: Any, source: Path | None, *, input_size: tuple[int, int] | None = None,
               notes: list[str] | tuple[str, ...] = (), loss: Any = None) -> LoadedModel:
    """Wrap a Keras model as a :class:`LoadedModel` (``loss``: the file's; else the model's own, if compiled).
    Raises ExportError."""
    height, width, channels, classes = check_classifier(model, source or "model", input_size)
    if loss is None:
        loss = getattr(model, "loss", None)
    return LoadedModel(model, source, height, width, channels, classes, tuple(notes), loss)
