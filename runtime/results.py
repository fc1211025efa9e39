"""Classification results: small immutable dataclasses, as in MediaPipe Tasks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Category", "Timings", "ClassificationResult"]


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
    """Categories ordered by descending score, and the time each stage took."""

    categories: tuple[Category, ...]
    timings: Timings
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Every class's score (float32, in label order), before the options filtered them."""

    @property
    def top(self) -> Category | None:
        """The best category, or None when every class was filtered out."""
        return self.categories[0] if self.categories else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"categories": [...], "timings": {...}}``."""
        timings = asdict(self.timings)
        timings["total_ms"] = self.timings.total_ms
        return {"categories": [asdict(c) for c in self.categories], "timings": timings}
