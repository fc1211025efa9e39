"""Decide the effective model card: the embedded one, checked against the tensors,
or one inferred from the tensors for a foreign model, plus the caller's overrides.

The tensors are the truth for sizes, dtype and quantization; the card adds what
tensors cannot say (labels, colour order, normalization, resize mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from edgecls.runtime.backends.base import Backend
from edgecls.runtime.card import (
    MAX_CLASSES,
    RESIZE_MODES,
    InputSpec,
    ModelCard,
    Normalization,
    OutputSpec,
    checked_mean_std,
)
from edgecls.runtime.errors import CardError, ModelLoadError, OptionError
from edgecls.runtime.tensors import TensorInfo

__all__ = ["resolve_card", "DEFAULT_SIZE"]

DEFAULT_SIZE = 224


def _layout_and_size(info: TensorInfo, path: Path) -> tuple[str, int | None, int | None, int]:
    shape = info.shape
    if len(shape) != 4:
        raise ModelLoadError(f"{path}: input {info.name!r} has shape {shape}; an image input has rank 4")
    if shape[3] in (1, 3):
        return "NHWC", shape[1], shape[2], shape[3]
    if shape[1] in (1, 3):
        return "NCHW", shape[2], shape[3], shape[1]
    raise ModelLoadError(f"{path}: input {info.name!r} with shape {shape} has no 1- or 3-channel axis; not an image input")


def _num_classes(info: TensorInfo, path: Path) -> int:
    shape = info.shape
    if not shape or shape[-1] is None or any(d not in (1, None) for d in shape[1:-1]) or len(shape) > 4:
        raise ModelLoadError(f"{path}: output {info.name!r} with shape {shape} is not a (batch, classes) score tensor")
    if shape[-1] > MAX_CLASSES:
        raise ModelLoadError(f"{path}: output {info.name!r} declares {shape[-1]:,} classes (at most {MAX_CLASSES:,} "
                             "are accepted)")
    return shape[-1]


def _infer_card(backend: Backend, path: Path, defaults: list[str], normalization_given: bool) -> ModelCard:
    """A card from the tensors alone; what it assumes goes into ``defaults`` (``normalization_given``: the
    caller passes mean/std, nothing to assume there)."""
    inp, out = backend.input, backend.output
    layout, height, width, channels = _layout_and_size(inp, path)
    classes = _num_classes(out, path)
    if inp.dtype_name == "uint8":
        normalization = Normalization(baked=True)
        defaults.append("raw 0-255 pixels (a uint8 input)")
    else:
        normalization = Normalization(baked=False, mean=(0.0,), std=(255.0,))
        if not normalization_given:
            defaults.append("pixels scaled to [0, 1] (mean=/std= say otherwise)")
    if height is None or width is None:
        defaults.append(f"input {height or DEFAULT_SIZE}x{width or DEFAULT_SIZE} (the model's size is free)")
    defaults.append("RGB, 'stretch' resize, and probabilities unless the scores are not a distribution")
    return ModelCard(
        labels=tuple(f"class_{i}" for i in range(classes)),
        input=InputSpec(
            height=height or DEFAULT_SIZE,
            width=width or DEFAULT_SIZE,
            channels=channels,
            layout=layout,
            dtype=inp.dtype_name,
            color="gray" if channels == 1 else "rgb",
            normalization=normalization,
        ),
        output=OutputSpec(num_classes=classes, dtype=out.dtype_name),
        name=path.stem,
    )


def _match_tensors(card: ModelCard, backend: Backend, path: Path, embedded: bool) -> ModelCard:
    layout, height, width, channels = _layout_and_size(backend.input, path)
    classes = _num_classes(backend.output, path)
    spec = card.input
    if embedded and (
        (height is not None and height != spec.height)
        or (width is not None and width != spec.width)
        or channels != spec.channels
    ):
        raise CardError(
            f"{path}: model card says input {spec.height}x{spec.width}x{spec.channels} "
            f"but the model's input tensor is {backend.input.shape}"
        )
    if embedded and classes != card.output.num_classes:
        raise CardError(
            f"{path}: model card has {card.output.num_classes} labels but the model outputs {classes} scores"
        )
    in_dtype = backend.input.dtype_name
    quant = backend.input.quantization
    if in_dtype == "uint8" and not embedded:
        quant = None  # MediaPipe's convention: a uint8 input takes raw pixels
    spec = replace(spec, layout=layout, channels=channels, dtype=in_dtype, quantization=quant,
                   color="gray" if channels == 1 else spec.color)
    output = replace(card.output, dtype=backend.output.dtype_name, quantization=backend.output.quantization)
    return replace(card, input=spec, output=output)


def resolve_card(
    backend: Backend,
    path: Path,
    *,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | float | None = None,
    std: Sequence[float] | float | None = None,
    resize: str | None = None,
) -> tuple[ModelCard, bool, tuple[str, ...]]:
    """Return (effective card, whether it was embedded, warnings on what was assumed).

    Everything assumed for one file is said in one warning: a card ignored (and why), and the defaults
    used in its place (labels, pixels, size, colour order) unless the caller gave them.

    Raises:
        CardError: the embedded card contradicts the model's tensors.
        ModelLoadError: the tensors are not an image classifier's.
        OptionError: ``labels`` has the wrong count, ``mean``/``std`` given for a
            model whose card says normalization is baked in, or unknown ``resize``.
    """
    card: ModelCard | None = None
    ignored = None
    try:
        text = backend.embedded_card()
        card = ModelCard.from_json(text) if text else None
    except CardError as exc:
        ignored = str(exc)
    embedded = card is not None
    defaults: list[str] = []
    if card is None:
        card = _infer_card(backend, path, defaults, normalization_given=mean is not None and std is not None)
        if labels is None:
            defaults.insert(0, f"labels class_0..class_{card.output.num_classes - 1} (labels= names them)")
    card = _match_tensors(card, backend, path, embedded)
    notes = []
    if ignored is not None:
        notes.append(f"{path}: ignoring its malformed model card ({ignored}); using defaults: {'; '.join(defaults)}")
    elif defaults:
        notes.append(f"{path}: no model card; using defaults: {'; '.join(defaults)}")
    return _overridden(card, embedded, path, labels, mean, std, resize), embedded, tuple(notes)


def _overridden(card: ModelCard, embedded: bool, path: Path, labels: Sequence[str] | None,
                mean: Sequence[float] | float | None, std: Sequence[float] | float | None,
                resize: str | None) -> ModelCard:
    """``card`` with the caller's labels, normalization and resize mode. Raises OptionError as
    :func:`resolve_card`."""
    if labels is not None:
        labels = tuple(str(label) for label in labels)
        if len(labels) != card.output.num_classes:
            raise OptionError(f"{path}: {len(labels)} labels given but the model outputs {card.output.num_classes} scores")
        card = replace(card, labels=labels)
    if mean is not None and std is not None:
        if embedded and card.input.normalization.baked:
            raise OptionError(f"{path}: its model card says normalization is baked into the graph; do not pass mean/std")
        mean, std = checked_mean_std(mean, std, channels=card.input.channels)
        card = replace(card, input=replace(card.input, normalization=Normalization(baked=False, mean=mean, std=std)))
    if resize is not None:
        if resize not in RESIZE_MODES:
            raise OptionError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
        card = replace(card, input=replace(card.input, resize=resize))
    return card
