"""Bake the pixel normalization a model was trained with into its graph.

Exported models take raw 0-255 pixels (in the model's colour order); a wrapper
in front of the Keras model applies ``(x - mean) / std``. Presets are a registry:
``unit`` (x/255, the default, what the seed CNN expects), ``symmetric``
(x/127.5 - 1, MobileNet style), ``imagenet`` (per-channel torchvision means and
stds) and ``raw`` (nothing). A model that already starts with a Rescaling or
Normalization layer gets ``raw``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from edgecls.converters.errors import ExportError

__all__ = ["PixelNormalization", "PIXEL_PRESETS", "choose_normalization", "wrap_with_normalization"]


@dataclass(frozen=True)
class PixelNormalization:
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def is_identity(self) -> bool:
        return all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)


PIXEL_PRESETS: dict[str, PixelNormalization] = {
    "unit": PixelNormalization("unit", (0.0,), (255.0,)),
    "symmetric": PixelNormalization("symmetric", (127.5,), (127.5,)),
    "imagenet": PixelNormalization("imagenet", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    "raw": PixelNormalization("raw", (0.0,), (1.0,)),
}

_NORMALIZING_LAYERS = ("Rescaling", "Normalization")


def _first_layer_normalizes(model: Any) -> str | None:
    for layer in getattr(model, "layers", []):
        kind = layer.__class__.__name__
        if kind == "InputLayer":
            continue
        return kind if kind in _NORMALIZING_LAYERS else None
    return None


def choose_normalization(model: Any, *, pixels: str | None = None, mean: Sequence[float] | None = None,
                         std: Sequence[float] | None = None, channels: int = 3) -> tuple[PixelNormalization, list[str]]:
    """Pick the normalization to bake; returns it and notes on what was decided.

    Raises:
        ExportError: unknown preset, mean/std given with a preset or alone, wrong
            count of values, or a zero std.
    """
    notes: list[str] = []
    if (mean is None) != (std is None):
        raise ExportError("give --mean and --std together")
    if mean is not None:
        if pixels is not None:
            raise ExportError("give either --pixels or --mean/--std, not both")
        mean_t, std_t = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        for name, values in (("mean", mean_t), ("std", std_t)):
            if len(values) not in (1, channels):
                raise ExportError(f"--{name} needs 1 or {channels} values, got {len(values)}")
        if any(v == 0 for v in std_t):
            raise ExportError("--std must not contain 0")
        return PixelNormalization("custom", mean_t, std_t), notes
    layer = _first_layer_normalizes(model)
    if pixels is None:
        if layer:
            notes.append(f"the model starts with a {layer} layer: it normalizes its own input, so --pixels raw")
            return PIXEL_PRESETS["raw"], notes
        pixels = "unit"
        notes.append("--pixels unit (x/255) assumed, what Keras' image examples train with")
    preset = PIXEL_PRESETS.get(pixels)
    if preset is None:
        raise ExportError(f"unknown --pixels {pixels!r}; choose one of {', '.join(PIXEL_PRESETS)}")
    if layer and pixels != "raw":
        notes.append(f"warning: the model starts with a {layer} layer and --pixels {pixels} normalizes again")
    if channels == 1 and len(preset.mean) > 1:
        raise ExportError(f"--pixels {pixels} has per-channel values but the model takes 1-channel images")
    return preset, notes


def wrap_with_normalization(model: Any, norm: PixelNormalization, height: int, width: int, channels: int) -> Any:
    """A Keras model taking raw 0-255 pixels that normalizes, then runs ``model``.

    Uses the model's own Keras (Keras 3, or tf_keras for a Keras 2 model).
    """
    keras = _keras_of(model)
    inputs = keras.Input((height, width, channels), name="image")
    x = inputs
    if not norm.is_identity:
        # (x - mean) / std as x * (1/std) + (-mean/std): MUL and ADD, which every int8 kernel
        # library fuses or runs fast (Keras' Normalization layer lowers to SUB and DIV).
        import numpy as np

        std = np.asarray(norm.std, "float32")
        mean = np.asarray(norm.mean, "float32")
        scale, offset = 1.0 / std, -mean / std
        if scale.size == 1 and offset.size == 1:
            x = keras.layers.Rescaling(float(scale[0]), float(offset[0]), name="edgecls_normalize")(x)
        else:
            shape = (channels,)
            x = keras.layers.Rescaling(np.broadcast_to(scale, shape).tolist(), np.broadcast_to(offset, shape).tolist(),
                                       name="edgecls_normalize")(x)
    outputs = model(x)
    return keras.Model(inputs, outputs, name=f"edgecls_{getattr(model, 'name', 'model')}")


def _keras_of(model: Any) -> Any:
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras
    import keras

    return keras
