"""Bake the pixel normalization a model was trained with into its graph.

Exported models take raw 0-255 pixels (in the model's colour order); a wrapper
in front of the Keras model applies ``(x - mean) / std``. Presets are a registry:
``unit`` (x/255), ``symmetric`` (x/127.5 - 1, MobileNet style), ``imagenet``
(per-channel torchvision means and stds) and ``raw`` (nothing). A model whose
input meets a Rescaling or Normalization layer first (looking through
augmentation, dropout and nested blocks) gets ``raw``; otherwise ``unit``, and
with labelled images :mod:`edgecls.converters.pixel_check` checks the choice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from edgecls.converters.errors import ExportError
from edgecls.runtime.card import checked_mean_std

__all__ = ["PixelNormalization", "PIXEL_PRESETS", "NormalizingLayer", "find_normalizing_layer", "choose_normalization",
           "wrap_with_normalization"]


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
# Layers that leave pixel values alone at inference: augmentation (active only in training),
# dropout and noise, and geometry. Detection looks through them for a normalizing layer.
_INERT_LAYERS = frozenset({
    "InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "ActivityRegularization", "RandAugment", "AugMix", "CutMix", "MixUp",
    "Solarization", "Resizing", "CenterCrop", "ZeroPadding2D", "Cropping2D", "Identity", "Activation",
})


@dataclass(frozen=True)
class NormalizingLayer:
    """A Rescaling or Normalization layer found where the model's input enters."""

    path: str
    """The layer's name, with the names of the blocks it is nested in (``outer/inner/rescaling``)."""
    kind: str
    """``Rescaling`` or ``Normalization``."""


def _leaves(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, layer) of a model's layers in order, descending into nested models and pipelines."""
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        if getattr(layer, "layers", None) and layer.__class__.__name__ not in _NORMALIZING_LAYERS:
            yield from _leaves(layer, f"{path}/")
        else:
            yield path, layer


def find_normalizing_layer(model: Any) -> NormalizingLayer | None:
    """The Rescaling/Normalization layer the input meets first, looking through inert layers.

    Augmentation (``Random*``), dropout, noise and geometry layers do nothing to pixel
    values at inference; nested ``Sequential``/functional blocks are searched in order.
    Returns None when another layer (a convolution, say) comes first.
    """
    for path, layer in _leaves(model):
        kind = layer.__class__.__name__
        if kind in _NORMALIZING_LAYERS:
            return NormalizingLayer(path, kind)
        if kind in _INERT_LAYERS or kind.startswith("Random"):
            continue
        return None
    return None


def choose_normalization(model: Any, *, pixels: str | None = None, mean: Sequence[float] | None = None,
                         std: Sequence[float] | None = None, channels: int = 3) -> tuple[PixelNormalization, list[str]]:
    """Pick the normalization to bake before any check on images; returns it and notes on what was decided.

    ``pixels`` None or ``"auto"``: ``raw`` when the model has its own normalizing layer,
    else ``unit``; :mod:`edgecls.converters.pixel_check` may revise that on labelled images.

    Raises:
        ExportError: unknown preset, mean/std given with a preset or alone, wrong
            count of values, or a zero std.
    """
    notes: list[str] = []
    if mean is not None or std is not None:
        mean_t, std_t = checked_mean_std(mean, std, channels=channels, error=ExportError)
        if pixels not in (None, "auto"):
            raise ExportError("give either a pixels preset or mean/std, not both")
        return PixelNormalization("custom", mean_t, std_t), notes
    layer = find_normalizing_layer(model)
    if pixels in (None, "auto"):
        if layer:
            notes.append(f"the model normalizes its own input ({layer.kind} layer {layer.path!r}): pixels raw")
            return PIXEL_PRESETS["raw"], notes
        notes.append("pixels unit (x/255) assumed, what Keras' image examples train with")
        return PIXEL_PRESETS["unit"], notes
    preset = PIXEL_PRESETS.get(pixels)
    if preset is None:
        raise ExportError(f"unknown pixels preset {pixels!r}; choose one of auto, {', '.join(PIXEL_PRESETS)}")
    if layer and pixels != "raw":
        notes.append(f"warning: the model normalizes its own input ({layer.kind} layer {layer.path!r}) "
                     f"and pixels {pixels} normalizes again")
    if channels == 1 and len(preset.mean) > 1:
        raise ExportError(f"pixels preset {pixels} has per-channel values but the model takes 1-channel images")
    return preset, notes


def wrap_with_normalization(model: Any, norm: PixelNormalization, height: int, width: int, channels: int) -> Any:
    """A Keras model taking raw 0-255 pixels that normalizes, then runs ``model``.

    Uses the model's own Keras (Keras 3, or tf_keras for a Keras 2 model).
    """
    keras = keras_of(model)
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


def keras_of(model: Any) -> Any:
    """The Keras ``model`` was built with: tf_keras for a Keras 2 model, else Keras 3."""
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras
    import keras

    return keras
