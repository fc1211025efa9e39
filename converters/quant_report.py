"""Why a quantized file lost accuracy: the calibration set's profile, per-class changes, and warnings.

The known faults, each with a cause name the report and the tests use:

- ``few_calibration_images``: fewer than :data:`MIN_CALIBRATION` images;
- ``duplicated_calibration_images``: over :data:`MAX_DUPLICATE_SHARE` of them exact or near copies
  (a 16×16 average hash within :data:`NEAR_BITS` of its 256 bits);
- ``one_class_calibration``: the Keras model answers one class for over :data:`ONE_CLASS_SHARE` of
  them (or their folder has a single class) while it has several;
- ``calibration_domain``: their pixel statistics differ from the validation images' (grey-level
  histogram overlap under :data:`MIN_OVERLAP`, or a mean over one validation standard deviation away);
- ``normalization``: the export's own pixel check (:mod:`.pixel_check`) found a preset under which the
  Keras model scores at least :data:`NORMALIZATION_GAP` higher than under the one baked in (the clear cases
  stop the export before this; a point less is a few images' noise, not a wrong preset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NORMALIZATION_GAP = 0.01
"""How much higher (accuracy, as a fraction) another preset must score for the normalization warning."""

__all__ = ["CalibrationProfile", "ClassChange", "QuantWarning", "profile_calibration", "calibration_warnings", "class_changes",
           "MIN_CALIBRATION", "MAX_DUPLICATE_SHARE", "ONE_CLASS_SHARE", "MIN_OVERLAP", "NEAR_BITS"]

MIN_CALIBRATION = 50
MAX_DUPLICATE_SHARE = 0.3
ONE_CLASS_SHARE = 0.9
MIN_OVERLAP = 0.5
HASH_SIDE = 16
NEAR_BITS = 4


@dataclass(frozen=True)
class QuantWarning:
    """A likely cause of lost accuracy, with the figures that point at it."""

    cause: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"cause": self.cause, "message": self.message}


@dataclass(frozen=True)
class ClassChange:
    """One class's accuracy under Keras and under a quantized file, on the labelled validation images."""

    label: str
    images: int
    keras_accuracy: float
    accuracy: float

    @property
    def change_pt(self) -> float:
        return (self.accuracy - self.keras_accuracy) * 100

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "images": self.images, "keras_accuracy": round(self.keras_accuracy, 4),
                "accuracy": round(self.accuracy, 4), "change_pt": round(self.change_pt, 2)}


@dataclass(frozen=True)
class CalibrationProfile:
    """What the calibration images are, measured against the validation images."""

    images: int
    folder_classes: int | None
    predicted_classes: dict[str, int]
    """How many calibration images the Keras model assigns to each class (classes with none left out)."""
    exact_duplicates: int
    """Images identical to an earlier one."""
    near_duplicates: int
    """Images (not exact copies) whose 16×16 average hash is within ``NEAR_BITS`` bits of an earlier one's."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    validation_mean: tuple[float, ...]
    validation_std: tuple[float, ...]
    histogram_overlap: float
    """Overlap (0–1) of the calibration and validation grey-level histograms."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images, "folder_classes": self.folder_classes,
            "predicted_classes": self.predicted_classes, "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "pixel_mean": [round(v, 2) for v in self.mean], "pixel_std": [round(v, 2) for v in self.std],
            "validation_pixel_mean": [round(v, 2) for v in self.validation_mean],
            "validation_pixel_std": [round(v, 2) for v in self.validation_std],
            "histogram_overlap": round(self.histogram_overlap, 4),
        }


def _grey(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32).mean(axis=3) if images.shape[3] > 1 else images[..., 0].astype(np.float32)


def _average_hashes(images: np.ndarray) -> np.ndarray:
    import cv2

    side = HASH_SIDE
    small = np.stack([cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA) for g in _grey(images)])
    return (small > small.reshape(len(small), -1).mean(axis=1)[:, None, None]).reshape(len(small), side * side)


def _duplicates(images: np.ndarray) -> tuple[int, int]:
    seen: set[bytes] = set()
    exact_mask = np.zeros(len(images), bool)
    for i, image in enumerate(images):
        key = image.tobytes()
        exact_mask[i] = key in seen
        seen.add(key)
    hashes = _average_hashes(images)
    near = 0
    for i in range(1, len(images)):
        if exact_mask[i]:
            continue
        distances = (hashes[:i] != hashes[i]).sum(axis=1)
        near += int(distances.min() <= NEAR_BITS)
    return int(exact_mask.sum()), near


def _histogram(images: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.clip(_grey(images), 0, 255).astype(np.uint8).ravel() // 8, minlength=32).astype(float)
    return counts / max(counts.sum(), 1.0)


def profile_calibration(images: np.ndarray, validation: np.ndarray, keras_scores: np.ndarray,
                        labels: Sequence[str], folder_classes: int | None) -> CalibrationProfile:
    """The profile of ``images`` (uint8 N×H×W×C at the input size) against the ``validation`` images;
    ``keras_scores`` are the Keras model's scores on ``images``."""
    predicted = np.bincount(keras_scores.argmax(1), minlength=len(labels))
    exact, near = _duplicates(images)
    axes = (0, 1, 2)
    overlap = float(np.minimum(_histogram(images), _histogram(validation)).sum())
    return CalibrationProfile(
        images=len(images), folder_classes=folder_classes,
        predicted_classes={labels[i]: int(n) for i, n in enumerate(predicted) if n},
        exact_duplicates=exact, near_duplicates=near,
        mean=tuple(float(v) for v in images.mean(axis=axes)), std=tuple(float(v) for v in images.std(axis=axes)),
        validation_mean=tuple(float(v) for v in validation.mean(axis=axes)),
        validation_std=tuple(float(v) for v in validation.std(axis=axes)),
        histogram_overlap=overlap,
    )


def calibration_warnings(profile: CalibrationProfile, classes: int, pixels: dict | None) -> list[QuantWarning]:
    """The warnings ``profile`` and the export's pixel check (``pixels``, its report entry) call for."""
    out = []
    if profile.images < MIN_CALIBRATION:
        out.append(QuantWarning("few_calibration_images",
                           f"only {profile.images} calibration images (use {MIN_CALIBRATION} or more, from every class): "
                           "activation ranges measured on few images clip what the others produce"))
    copies = profile.exact_duplicates + profile.near_duplicates
    if profile.images and copies / profile.images > MAX_DUPLICATE_SHARE:
        out.append(QuantWarning("duplicated_calibration_images",
                           f"{copies} of {profile.images} calibration images are copies or near copies of others "
                           f"({profile.exact_duplicates} exact): they measure the ranges of fewer scenes than it seems"))
    top = max(profile.predicted_classes.values(), default=0)
    if classes > 1 and profile.images and (profile.folder_classes == 1 or top / profile.images > ONE_CLASS_SHARE):
        label = max(profile.predicted_classes, key=profile.predicted_classes.get) if profile.predicted_classes else "?"
        out.append(QuantWarning("one_class_calibration",
                           f"the calibration images are all of one class (the Keras model calls {top} of "
                           f"{profile.images} {label!r}): the ranges of the other classes' activations are not measured"))
    shift = max((abs(m - vm) / max(vs, 1.0) for m, vm, vs in
                 zip(profile.mean, profile.validation_mean, profile.validation_std, strict=True)), default=0.0)
    if profile.histogram_overlap < MIN_OVERLAP or shift > 1.0:
        out.append(QuantWarning("calibration_domain",
                           f"the calibration images do not look like the validation images (grey-level histogram "
                           f"overlap {profile.histogram_overlap:.2f}, mean pixel {_fmt(profile.mean)} against "
                           f"{_fmt(profile.validation_mean)}): calibrate on images from the deployment's own domain"))
    if pixels:
        chosen, accuracies = pixels["chosen"], pixels["accuracies"]
        better = {k: v for k, v in accuracies.items() if v >= accuracies.get(chosen, 0.0) + NORMALIZATION_GAP - 1e-9}
        if better:
            best = max(better, key=better.get)
            out.append(QuantWarning("normalization",
                               f"pixels {chosen} gives the Keras model {accuracies[chosen]:.3f} accuracy but {best} gives "
                               f"{better[best]:.3f}: check which normalization the model was trained with"))
    return out


def _fmt(values: Sequence[float]) -> str:
    return "/".join(f"{v:.0f}" for v in values)


def class_changes(predicted: np.ndarray, keras_predicted: np.ndarray, targets: np.ndarray,
                  labels: Sequence[str]) -> list[ClassChange]:
    """Per class with images: Keras' accuracy and the file's (from the predicted classes); the classes
    that lost most first."""
    rows = []
    for index, label in enumerate(labels):
        mask = targets == index
        if mask.any():
            rows.append(ClassChange(label, int(mask.sum()), float((keras_predicted[mask] == index).mean()),
                                    float((predicted[mask] == index).mean())))
    return sorted(rows, key=lambda r: (round(r.change_pt, 2), r.label))
