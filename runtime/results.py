"""Classification results: small immutable dataclasses, as in MediaPipe Tasks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from edgecls.runtime.regions import Crop, Region

__all__ = ["Category", "Timings", "ClassificationResult", "RegionResult"]


@dataclass(frozen=True)
class Category:
    """One class of the model: its output index, label and score (0..1)."""

    index: int
    label: str
    score: float


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent per stage of one classification.

    For a batch, ``inference_ms`` is the batch's inference time divided by its size.
    """

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


@dataclass(frozen=True)
class ClassificationResult:
    """Categories ordered by descending score, and the time each stage took.

    For a single-label model the categories are the top classes; for a multi-label one
    (``multi_label``) they are every label at or over its threshold, possibly none.
    """

    categories: tuple[Category, ...]
    timings: Timings
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Every class's score (float32, in label order), before the options filtered them."""
    multi_label: bool = False

    @property
    def top(self) -> Category | None:
        """The best category, or None when every class was filtered out (or, multi-label, none is present)."""
        return self.categories[0] if self.categories else None

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels of the categories: for a multi-label model, the labels present."""
        return tuple(c.label for c in self.categories)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"categories": [...], "timings": {...}}``, and ``"labels"`` (the labels present)
        for a multi-label model."""
        timings = asdict(self.timings)
        timings["total_ms"] = self.timings.total_ms
        data: dict[str, Any] = {"categories": [asdict(c) for c in self.categories]}
        if self.multi_label:
            data["labels"] = list(self.labels)
        return {**data, "timings": timings}


@dataclass(frozen=True)
class RegionResult(ClassificationResult):
    """The answer for one region of a frame: the categories of its crop, the box it was given
    (``region``), the part of the frame the model saw (``crop``), or why it was skipped (``skipped``, with
    no categories)."""

    region: Region | None = None
    crop: Crop | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """:meth:`ClassificationResult.to_dict` with ``box``, ``crop`` and, for a skipped region, ``skipped``."""
        data = super().to_dict()
        data["box"] = self.region.to_dict() if self.region is not None else None
        data["crop"] = self.crop.to_dict() if self.crop is not None else None
        if self.skipped is not None:
            data["skipped"] = self.skipped
        return data
