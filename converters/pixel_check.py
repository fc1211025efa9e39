"""Check the pixel normalization on labelled images: the Keras model's accuracy under every preset.

A wrong preset cannot be caught by comparing exported files with the Keras
model wrapped in the same preset: both are equally wrong. What catches it is
the Keras model's own accuracy on labelled images, under the chosen preset and
under the others. ``auto`` picks the preferred preset (``raw`` when the model
normalizes its own input, else ``unit``) unless another is clearly better; an
explicit preset that another clearly beats, or one whose accuracy is near
chance, fails the export before anything is converted.

"Clearly better" is a paired test on the same images: at least 2 points more,
and the images only the other preset gets right outnumber those only the chosen
one gets right by 3 standard deviations (McNemar). "Near chance" is an accuracy
within 3 standard deviations of always answering the most frequent class.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgecls.converters.decisions import SINGLE_LABEL, Decisions
from edgecls.converters.errors import ExportError
from edgecls.converters.normalization import PIXEL_PRESETS, PixelNormalization

__all__ = ["PixelCheck", "check_pixels", "MIN_GAIN"]

MIN_GAIN = 0.02
"""Accuracy points (as a fraction) by which another preset must win to count as clearly better."""
_Z = 3.0


@dataclass(frozen=True)
class PixelCheck:
    """The outcome of :func:`check_pixels`, kept in the export report.

    Attributes:
        chosen: the preset baked into the exported files.
        requested: what was asked for (``auto``, a preset name, or ``custom`` for mean/std).
        accuracies: the Keras model's top-1 accuracy on the images under each preset tried (for a
            multi-label model: the share of images whose label set it gets exactly right).
        chance: the accuracy of always answering the most frequent class (or label set).
        images: how many labelled images were used.
        reason: one sentence on why ``chosen`` was kept or picked.
    """

    chosen: str
    requested: str
    accuracies: dict[str, float]
    chance: float
    images: int
    reason: str
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The Keras probabilities under ``chosen`` (reused as the validation reference; not serialized)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("scores")
        return data


def normalized(images: np.ndarray, norm: PixelNormalization) -> np.ndarray:
    """``images`` as :func:`wrap_with_normalization`'s layer gives them to the model (float32)."""
    std, mean = np.asarray(norm.std, np.float32), np.asarray(norm.mean, np.float32)
    return images.astype(np.float32) * (np.float32(1) / std) + (-mean / std)


def _clearly_better(right_other: np.ndarray, right_chosen: np.ndarray) -> bool:
    gain = right_other.mean() - right_chosen.mean()
    only_other = int((right_other & ~right_chosen).sum())
    only_chosen = int((right_chosen & ~right_other).sum())
    discordant = only_other + only_chosen
    return gain >= MIN_GAIN and discordant > 0 and (only_other - only_chosen) >= _Z * math.sqrt(discordant)


def _near_chance(accuracy: float, chance: float, n: int) -> bool:
    return accuracy <= chance + _Z * math.sqrt(max(chance * (1 - chance), 1e-12) / n)


def _describe(norm: PixelNormalization) -> str:
    if norm.name in PIXEL_PRESETS:
        return norm.name
    return f"mean {list(norm.mean)} std {list(norm.std)}"


def check_pixels(loaded: Any, chosen: PixelNormalization, *, requested: str,
                 images: np.ndarray, targets: np.ndarray, scorer: Any, decisions: Decisions = SINGLE_LABEL,
                 known: dict[str, np.ndarray] | None = None) -> tuple[PixelNormalization, PixelCheck]:
    """Compare the Keras model's accuracy under ``chosen`` and every other preset on labelled images.

    Args:
        loaded: the :class:`~edgecls.converters.loading.LoadedModel`.
        chosen: the normalization picked so far (from the request or from the model's layers); under
            ``auto``, the preset kept unless another is clearly better.
        requested: ``"auto"``, a preset name, or ``"custom"``.
        images: uint8 images at the input size; ``targets`` their labels (see :mod:`~edgecls.converters.decisions`).
        scorer: ``scorer(keras_model, images) -> probabilities`` (the validation's Keras runner, head applied).
        decisions: how scores are judged (an image is right when its answer is exactly its label or label set).
        known: probabilities already computed under some presets (by name), not computed again.

    Returns:
        The normalization to bake (``chosen``, or with ``auto`` the clearly better one) and the check.

    Raises:
        ExportError: an explicit choice that another preset clearly beats, or an accuracy
            near chance under the normalization that would be baked.
    """
    candidates: dict[str, PixelNormalization] = {chosen.name: chosen}
    for name, preset in PIXEL_PRESETS.items():
        if len(preset.mean) in (1, loaded.channels):
            candidates.setdefault(name, preset)
    scores: dict[str, np.ndarray] = {}
    right: dict[str, np.ndarray] = {}
    for name, norm in candidates.items():
        # the model itself on normalized pixels (one traced function for every preset), computed as the
        # wrapper computes it (x * 1/std + -mean/std in float32)
        scores[name] = (known or {}).get(name)
        if scores[name] is None:
            scores[name] = scorer(loaded.model, normalized(images, norm))
        right[name] = decisions.right(scores[name], targets)
    accuracies = {name: float(r.mean()) for name, r in right.items()}
    n = len(targets)
    chance = decisions.chance(targets)
    best = max(accuracies, key=lambda k: (accuracies[k], k == chosen.name))
    preferred = keep = chosen.name
    if requested == "auto" and best != keep and _clearly_better(right[best], right[keep]):
        keep = best
        reason = (f"auto: {best} gives the Keras model {accuracies[best]:.3f} accuracy on {n} labelled images, "
                  f"clearly above {preferred} ({accuracies[preferred]:.3f})")
    elif best != keep and _clearly_better(right[best], right[keep]):
        raise ExportError(
            f"pixels {_describe(candidates[keep])} gives the Keras model {accuracies[keep]:.3f} accuracy on {n} "
            f"labelled images but {best} gives {accuracies[best]:.3f}: the model was trained with {best} "
            f"normalization; export with pixels {best!r} (or auto)")
    else:
        reason = (f"{requested}: {_describe(candidates[keep])} gives the Keras model {accuracies[keep]:.3f} accuracy "
                  f"on {n} labelled images; no other preset is clearly better")
    if _near_chance(accuracies[keep], chance, n):
        raise ExportError(
            f"the Keras model is near chance on the {n} labelled validation images: {accuracies[keep]:.3f} accuracy "
            f"with pixels {_describe(candidates[keep])} (always answering the most frequent class gives {chance:.3f}; "
            f"every preset: {', '.join(f'{k} {v:.3f}' for k, v in accuracies.items())}); check the labels and "
            "that the model is trained")
    check = PixelCheck(chosen=keep, requested=requested, accuracies=accuracies, chance=chance, images=n,
                       reason=reason, scores=scores[keep])
    return candidates[keep], check
