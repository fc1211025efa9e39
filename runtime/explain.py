"""Why did it say that: heat maps from the exported model alone (no gradients, no TensorFlow).

Both methods perturb the image and watch the explained class's score through the runtime, so they work
on every file the runtime reads, int8 included; the perturbed images run in batches of ``batch`` when
the model takes a batch.

- ``occlusion``: a square (``patch`` of the image's shorter side) slides over the image with
  ``stride``, replacing what it covers by the baseline; each pixel's value is the mean score drop of
  the squares that covered it.
- ``rise`` (Petsiuk et al., 2018): ``masks`` random smooth masks (a coarse random grid, upsampled and
  shifted) keep part of the image and replace the rest by the baseline; the map is the mean of the
  masks weighted by their scores, centred on the mean score. Seeded: the same call gives the same map.

What "removed" means is the ``baseline``: ``"blur"`` (default: the image blurred with a Gaussian of a
tenth of its shorter side — the detail goes, no new edges or textures come) or ``"grey"`` (mid-grey; a
grey square is itself a shape the model may react to: on a face/non-face model grey squares made
non-faces look more like faces everywhere, and the map showed that instead of the evidence).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edgecls.runtime.card import RESIZE_MODES
from edgecls.runtime.errors import OptionError
from edgecls.runtime.resize import SAMPLES

__all__ = ["Explanation", "ExplainSettings", "METHODS", "BASELINES", "baseline_of", "explain"]

METHODS = ("occlusion", "rise")
BASELINES = ("blur", "grey")
GREY = 127


def baseline_of(image: np.ndarray, baseline: str) -> np.ndarray:
    """What the methods put in place of the parts of ``image`` they remove (see the module's docstring)."""
    if baseline == "grey":
        return np.full_like(image, GREY)
    sigma = max(1.0, min(image.shape[:2]) / 10)
    return cv2.GaussianBlur(image, (0, 0), sigma)


@dataclass(frozen=True)
class Explanation:
    """A heat map (float32, the image's height × width, higher = more important to ``label``)."""

    label: str
    index: int
    score: float
    """The explained class's score on the whole image."""
    heatmap: np.ndarray
    method: str


def _batches(images: Iterator[np.ndarray], clf, s: ExplainSettings) -> Iterator[np.ndarray]:
    chunk: list[np.ndarray] = []
    size = s.batch
    for image in images:
        chunk.append(clf.preprocess(image, resize=s.resize, sample=s.sample))
        if len(chunk) == size:
            yield np.stack(chunk)
            chunk = []
    if chunk:
        yield np.stack(chunk)


def _scores(clf, images: Iterator[np.ndarray], index: int, s: ExplainSettings) -> np.ndarray:
    return np.concatenate([clf.scores_of_inputs(b)[:, index] for b in _batches(images, clf, s)])


def _occlusion(clf, image: np.ndarray, fill: np.ndarray, index: int, base: float, s: ExplainSettings) -> np.ndarray:
    h, w = image.shape[:2]
    side = max(1, round(min(h, w) * s.patch))
    step = max(1, round(min(h, w) * s.stride))
    boxes = [(y, x) for y in range(0, max(1, h - side) + 1, step) for x in range(0, max(1, w - side) + 1, step)]

    def occluded() -> Iterator[np.ndarray]:
        for y, x in boxes:
            copy = image.copy()
            copy[y:y + side, x:x + side] = fill[y:y + side, x:x + side]
            yield copy

    drops = base - _scores(clf, occluded(), index, s)
    total = np.zeros((h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    for (y, x), drop in zip(boxes, drops, strict=True):
        total[y:y + side, x:x + side] += drop
        count[y:y + side, x:x + side] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


def _rise(clf, image: np.ndarray, fill: np.ndarray, index: int, s: ExplainSettings) -> np.ndarray:
    h, w = image.shape[:2]
    masks, grid, keep = s.masks, s.grid, s.keep
    rng = np.random.default_rng(s.seed)
    cell_h, cell_w = -(-h // grid), -(-w // grid)
    made: list[np.ndarray] = []

    def masked() -> Iterator[np.ndarray]:
        for _ in range(masks):
            coarse = (rng.random((grid + 1, grid + 1)) < keep).astype(np.float32)
            up = cv2.resize(coarse, ((grid + 1) * cell_w, (grid + 1) * cell_h), interpolation=cv2.INTER_LINEAR)
            dy, dx = int(rng.integers(0, cell_h)), int(rng.integers(0, cell_w))
            mask = up[dy:dy + h, dx:dx + w]
            made.append(mask)
            m = mask[:, :, None] if image.ndim == 3 else mask
            yield (image * m + fill * (1 - m)).astype(np.uint8)

    scores = _scores(clf, masked(), index, s)
    # centred on their mean: the map loses its constant part (the mean score) and most of its noise,
    # which otherwise hid a 24-pixel patch's signal under 500 masks
    heat = np.tensordot(scores - scores.mean(), np.stack(made), axes=1) / (masks * keep)
    return heat.astype(np.float32)


@dataclass(frozen=True)
class ExplainSettings:
    """How :func:`explain` perturbs the image.

    Attributes:
        patch: occlusion: the square's side, a fraction of the image's shorter side.
        stride: occlusion: its step, a fraction of the shorter side.
        masks: RISE: random masks drawn.
        grid: RISE: cells per side of a mask before it is smoothed up to the image.
        keep: RISE: the share of cells kept (the rest show the baseline).
        seed: RISE: the masks' random seed.
        batch: perturbed images per engine call.
        baseline: what hides a part of the image: ``"blur"`` (the image blurred) or ``"grey"``.
        resize: how the image is fitted to the input (``stretch``, ``crop``, ``letterbox``); None: the
            card's. A region's crop is explained as classified: its crop's fit and its policy's ``sample``.
        sample: how the image is shrunk to the input (``area``, ``linear``, ``warp``; see
            :data:`~edgecls.runtime.resize.SAMPLES`).

    Raises:
        OptionError: a value out of its range, an unknown baseline.
    """

    patch: float = 0.125
    stride: float = 1 / 12
    masks: int = 300
    grid: int = 8
    keep: float = 0.5
    seed: int = 0
    batch: int = 32
    baseline: str = "blur"
    resize: str | None = None
    sample: str = "area"

    def __post_init__(self) -> None:
        if self.resize is not None and self.resize not in RESIZE_MODES:
            raise OptionError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if self.sample not in SAMPLES:
            raise OptionError(f"sample must be one of {', '.join(SAMPLES)}, got {self.sample!r}")
        if self.baseline not in BASELINES:
            raise OptionError(f"baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}")
        for name, low, high in (("patch", 0, 1), ("stride", 0, 1), ("keep", 0, 1)):
            value = getattr(self, name)
            if not low < value <= high:
                raise OptionError(f"{name} must be within ({low}, {high}], got {value}")
        if self.masks < 1 or self.grid < 1 or self.batch < 1:
            raise OptionError(f"masks, grid and batch must be ≥ 1, got {self.masks}, {self.grid}, {self.batch}")


def explain(clf, image, *, label: str | None = None, method: str = "occlusion", color: str = "bgr",
            **settings: Any) -> Explanation:
    """Explain ``clf``'s answer for ``image`` (or for ``label``). See :meth:`Classifier.explain`; ``settings``
    are the fields of :class:`ExplainSettings`.

    Raises:
        OptionError: unknown method, label or setting, a setting out of range.
        ImageError: unreadable image. InferenceError: the engine failed.
    """
    from edgecls.runtime.images import to_pixels
    from edgecls.runtime.options import options_from

    if method not in METHODS:
        raise OptionError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    s = options_from(ExplainSettings, settings, what="explain")
    pixels = to_pixels(image, color=color)
    array = pixels.array
    if pixels.order == "rgb" and array.shape[2] >= 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGR if array.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    elif array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    scores = clf.scores_of_inputs(clf.preprocess(array, resize=s.resize, sample=s.sample)[None])[0]
    if label is None:
        index = int(np.argmax(scores))
    elif label in clf.labels:
        index = clf.labels.index(label)
    else:
        raise OptionError(f"label {label!r} is not one of the model's labels")
    base = float(scores[index])
    fill = baseline_of(array, s.baseline)
    heat = _occlusion(clf, array, fill, index, base, s) if method == "occlusion" else _rise(clf, array, fill, index, s)
    return Explanation(clf.labels[index], index, base, heat, method)
