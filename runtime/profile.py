"""The reference profile: what the inputs and answers of a model looked like on the images it was checked
on, kept in its card, for the drift monitor (:mod:`edgecls.runtime.monitor`) to compare a camera's frames
against.

A *signal* is one number per image. Input signals are read from the model input itself, mapped back to
0–255 pixels through the card's normalization and quantization (what the model sees, after its resize):
``brightness`` (mean level / 255), ``contrast`` (the channels' standard deviation / 128), ``sharpness``
(log10 of 1 + the variance of the Laplacian of the middle channel: blur lowers it, noise raises it) and
``colour`` (mean red − mean blue, / 255), read on a grid of about 56 × 56 of the input's pixels
(:data:`SIGNAL_SIDE`; a 32-pixel input whole). Output signals come from the scores: ``score`` (the top one),
``margin`` (top − second) and ``entropy`` (of the distribution, / log of the number of classes; for a
multi-label model the mean binary entropy). The class mix is the share of each top class (labels present,
for a multi-label model).

For each signal the profile keeps the deciles of the reference values as bin edges (so each bin holds a
tenth of the reference: PSI's usual binning, robust to any scale), the reference's share per bin, and its
mean, minimum and maximum (for the monitor's plain reasons). A few KB of JSON, versioned.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edgecls.runtime.card import InputSpec
from edgecls.runtime.errors import CardError

__all__ = ["SIGNALS", "INPUT_SIGNALS", "OUTPUT_SIGNALS", "Reference", "Profile", "InputSignals", "output_signals",
           "output_row", "build_profile", "PROFILE_VERSION", "MIN_PROFILE_IMAGES"]

PROFILE_VERSION = 1
MIN_PROFILE_IMAGES = 20
"""Fewer images give deciles not worth comparing against."""
INPUT_SIGNALS = ("brightness", "contrast", "sharpness", "colour")
OUTPUT_SIGNALS = ("score", "margin", "entropy")
SIGNALS = (*INPUT_SIGNALS, *OUTPUT_SIGNALS)
CLASSES = "classes"
_DECILES = np.linspace(0.1, 0.9, 9)
SIGNAL_SIDE = 56
"""Input signals are read on every k-th pixel of every k-th row of the input, k the whole number of times
this fits its shorter side (a 224-pixel input at 56 × 56, a 32-pixel one whole): a frame's signals cost a few
tens of microseconds whatever the input size. The samples estimate the level and spread without bias; the
Laplacian then reads detail at that scale (blur and noise still move it)."""
_GRID = 4
"""Decimals of the grid signal values and bin edges are put on (their scales are 0–1 or 0–5)."""


@dataclass(frozen=True)
class Reference:
    """One signal's reference: inner bin edges (ascending), each bin's share, and the values' mean, min, max."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    mean: float
    low: float
    high: float

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many of ``values`` fall in each bin (len(edges) + 1 bins). Values and edges are both on a grid of
        1e-4, so that a value tied with an edge (a saturated score, a flat image) falls on the same side of it
        whatever float noise another engine or batch adds."""
        return np.bincount(np.searchsorted(self.edges, np.round(values, _GRID), side="right"),
                           minlength=len(self.edges) + 1)

    def bin_of(self, value: float) -> int:
        """The bin of one value (as :meth:`counts`; a frame at a time, without numpy's per-call cost)."""
        return bisect.bisect_right(self.edges, round(float(value), _GRID))

    @classmethod
    def of(cls, values: np.ndarray) -> Reference:
        # rounded as the card stores them, before the shares are counted: the same bins here and on a device
        edges = tuple(sorted({round(float(e), _GRID) for e in np.quantile(np.round(values, _GRID), _DECILES)}))
        ref = cls(edges, (), float(values.mean()), float(values.min()), float(values.max()))
        counts = ref.counts(values)
        return cls(edges, tuple(float(c) for c in counts / counts.sum()), ref.mean, ref.low, ref.high)

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "shares": [_round(s) for s in self.shares],
                "mean": _round(self.mean), "min": _round(self.low), "max": _round(self.high)}

    @classmethod
    def from_dict(cls, data: Any, name: str) -> Reference:
        try:
            edges, shares = tuple(map(float, data["edges"])), tuple(map(float, data["shares"]))
            ref = cls(edges, shares, float(data["mean"]), float(data["min"]), float(data["max"]))
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float
            raise CardError(f"card field 'profile': signal {name!r} needs edges, shares, mean, min and max") from None
        if len(shares) != len(edges) + 1 or list(edges) != sorted(edges) or not all(map(math.isfinite, edges)):
            raise CardError(f"card field 'profile': signal {name!r} has {len(edges)} edges for {len(shares)} bins")
        if not all(map(math.isfinite, (ref.mean, ref.low, ref.high))):
            raise CardError(f"card field 'profile': signal {name!r} has a mean, min or max that is not finite")
        if not all(math.isfinite(x) and x >= 0 for x in shares):
            raise CardError(f"card field 'profile': signal {name!r} has shares that are not non-negative numbers")
        return ref


def _round(value: float) -> float:
    return float(f"{value:.5g}")


@dataclass(frozen=True)
class Profile:
    """The reference profile of a model: a :class:`Reference` per signal, the class mix, and how many
    images it was made from."""

    signals: Mapping[str, Reference]
    classes: tuple[float, ...]
    images: int
    source: str = ""
    """Where the images came from (a folder, ``validation``, ``calibration``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"version": PROFILE_VERSION, "images": self.images, "source": self.source,
                "signals": {name: ref.to_dict() for name, ref in self.signals.items()},
                "classes": [_round(s) for s in self.classes]}

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        """Raises CardError: not a profile this edgecls reads."""
        if not isinstance(data, Mapping) or data.get("version") != PROFILE_VERSION:
            raise CardError(f"card field 'profile' is not a version-{PROFILE_VERSION} reference profile")
        signals = data.get("signals")
        if not isinstance(signals, Mapping) or not set(signals) <= set(SIGNALS):
            raise CardError(f"card field 'profile': signals must be some of {', '.join(SIGNALS)}")
        try:
            classes = tuple(float(s) for s in data.get("classes", ()))
            images = int(data.get("images", 0))
        except (TypeError, ValueError, OverflowError):  # OverflowError: beyond a float, or an infinite count
            raise CardError("card field 'profile': classes must be numbers, images a count") from None
        if not all(math.isfinite(x) and x >= 0 for x in classes) or images < 0:
            raise CardError("card field 'profile': class shares must be non-negative numbers, images a count")
        return cls({name: Reference.from_dict(ref, name) for name, ref in signals.items()}, classes, images,
                   str(data.get("source", "")))


class InputSignals:
    """The input signals of model inputs, in 0–255 pixel terms: a per-channel affine map from the input's
    values back to pixels (the card's quantization and normalization undone)."""

    def __init__(self, spec: InputSpec) -> None:
        channels = spec.channels
        scale, offset = np.ones(channels), np.zeros(channels)
        if spec.quantization is not None:  # value → normalized: (v - zero_point) * scale
            scale *= spec.quantization.scale
            offset -= spec.quantization.zero_point * spec.quantization.scale
        norm = spec.normalization
        if not norm.baked:  # normalized → pixel: n * std + mean
            std = np.broadcast_to(np.asarray(norm.std, float), (channels,))
            mean = np.broadcast_to(np.asarray(norm.mean, float), (channels,))
            scale, offset = scale * std, offset * std + mean
        self._scale, self._offset = scale.tolist(), offset.tolist()
        self._offset_int8 = (offset - 128 * scale).tolist()
        self.nchw = spec.layout == "NCHW"
        order = {"rgb": (0, 2), "bgr": (2, 0)}.get(spec.color)
        self.red_blue = order if channels >= 3 else None
        self.middle = channels // 2

    def __call__(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Each input signal for each input of the batch ``inputs`` (N first)."""
        rows = [self.one(x) for x in inputs]
        return dict(zip(INPUT_SIGNALS, np.asarray(rows, np.float64).reshape(-1, len(INPUT_SIGNALS)).T, strict=True))

    def one(self, model_input: np.ndarray) -> tuple[float, float, float, float]:
        """The input signals (brightness, contrast, sharpness, colour) of one model input."""
        return self._one(np.ascontiguousarray(model_input.transpose(1, 2, 0)) if self.nchw else model_input)

    def _one(self, image: np.ndarray) -> tuple[float, float, float, float]:
        signed = image.dtype == np.int8
        image = image.view(np.uint8) if signed else image
        step = min(image.shape[0], image.shape[1]) // SIGNAL_SIDE
        if step > 1:  # every step-th pixel of every step-th row (OpenCV's nearest resize: the same pixels, SIMD)
            h, w = image.shape[0] // step, image.shape[1] // step
            image = cv2.resize(image[:h * step, :w * step], (w, h), interpolation=cv2.INTER_NEAREST)
            image = image[:, :, None] if image.ndim == 2 else image
        offset = self._offset
        if signed:  # as uint8 (v + 128: the sign bit flipped), the offset moved to match
            image = image ^ np.uint8(128)
            offset = self._offset_int8
        elif image.dtype not in (np.uint8, np.float32):
            image = image.astype(np.float32)
        means, stds = cv2.meanStdDev(image)
        scale = self._scale
        mean = [m * a + b for m, a, b in zip(means[:, 0].tolist(), scale, offset, strict=False)]
        spread = sum(sd * abs(a) for sd, a in zip(stds[:, 0].tolist(), scale, strict=False)) / len(mean)
        channel = image[:, :, self.middle] if image.ndim == 3 else image
        lap = float(cv2.meanStdDev(cv2.Laplacian(channel, cv2.CV_32F))[1][0, 0]) * abs(scale[self.middle])
        colour = 0.0 if self.red_blue is None else (mean[self.red_blue[0]] - mean[self.red_blue[1]]) / 255.0
        return sum(mean) / len(mean) / 255.0, spread / 128.0, math.log10(1.0 + lap * lap), colour


def output_signals(scores: np.ndarray, multi_label: bool) -> dict[str, np.ndarray]:
    """``score``, ``margin`` and ``entropy`` of each row of ``scores`` (N, classes)."""
    scores = np.asarray(scores, np.float32)
    if scores.shape[1] >= 2:
        top2 = -np.partition(-scores, 1, axis=1)[:, :2]
    else:
        top2 = np.concatenate([scores, np.zeros_like(scores)], axis=1)
    p = np.clip(scores, 1e-12, 1.0)
    if multi_label:
        q = np.clip(1.0 - scores, 1e-12, 1.0)
        entropy = -(p * np.log(p) + q * np.log(q)).mean(axis=1) / math.log(2)
    else:
        entropy = -(p * np.log(p)).sum(axis=1) / math.log(max(2, scores.shape[1]))
    return {"score": top2[:, 0], "margin": top2[:, 0] - top2[:, 1], "entropy": entropy}


def output_row(row: np.ndarray, multi_label: bool) -> dict[str, float]:
    """:func:`output_signals` of one row of scores, as plain numbers."""
    if multi_label or row.shape[0] < 2:
        return {name: float(v[0]) for name, v in output_signals(row[None], multi_label).items()}
    first, second = (-np.partition(-row, 1)[:2]).tolist()
    p = np.maximum(row, np.float32(1e-12))
    entropy = -float(np.dot(p, np.log(p))) / math.log(row.shape[0])
    return {"score": first, "margin": first - second, "entropy": entropy}


def classes_of(scores: np.ndarray, multi_label: bool, thresholds: np.ndarray | None) -> np.ndarray:
    """How often each class is the answer in ``scores``: the top class, or (multi-label) each label present."""
    if multi_label:
        return (scores >= (0.5 if thresholds is None else thresholds)).sum(axis=0).astype(np.int64)
    return np.bincount(scores.argmax(axis=1), minlength=scores.shape[1])


def build_profile(inputs: Callable[[], Any] | np.ndarray, scores: np.ndarray, spec: InputSpec, *,
                  multi_label: bool = False, thresholds: np.ndarray | None = None, source: str = "") -> Profile:
    """The profile of model ``inputs`` (N first, as :meth:`Classifier.preprocess` makes them) and their
    ``scores`` (N, classes).

    Raises:
        CardError: fewer than 20 images (too few for deciles worth comparing against).
    """
    inputs = np.asarray(inputs)
    if inputs.shape[0] < MIN_PROFILE_IMAGES:
        raise CardError(f"a reference profile needs at least {MIN_PROFILE_IMAGES} images, got {inputs.shape[0]}")
    values = {**InputSignals(spec)(inputs), **output_signals(scores, multi_label)}
    counts = classes_of(scores, multi_label, thresholds)
    return Profile({name: Reference.of(v) for name, v in values.items()},
                   tuple(float(c) for c in counts / max(1, counts.sum())), int(inputs.shape[0]), source)
