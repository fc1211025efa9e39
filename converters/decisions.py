"""How scores become an answer, and how answers are judged, for a single-label or a multi-label model.

Single-label: the answer is the top class; two files agree on an image when their top classes are the
same; accuracy is top-1 accuracy. Multi-label: the answer is every label at or over its threshold; two
files agree when their label sets are identical; accuracy is the macro F1 over the labels. A binary
model exported as ``[1 − p, p]`` is single-label: its top class is the side of 0.5 that ``p`` is on.
Targets are label indices (N,) for single-label data and an N × L bool matrix for multi-label data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecls.runtime.metrics import exact_match, macro_f1

__all__ = ["Decisions", "SINGLE_LABEL"]


@dataclass(frozen=True)
class Decisions:
    """``thresholds``: one per label for a multi-label model; None for a single-label one."""

    thresholds: tuple[float, ...] | None = None

    @property
    def multi_label(self) -> bool:
        return self.thresholds is not None

    @property
    def metric(self) -> str:
        return "macro F1" if self.multi_label else "top-1 accuracy"

    @property
    def agreement(self) -> str:
        return "label-set agreement" if self.multi_label else "top-1 agreement"

    def answers(self, scores: np.ndarray) -> np.ndarray:
        """The top class of each row (N,), or each row's labels at or over their thresholds (N × L)."""
        if self.multi_label:
            return np.asarray(scores) >= np.asarray(self.thresholds, np.float32)
        return np.asarray(scores).argmax(1)

    def agree(self, scores: np.ndarray, reference: np.ndarray) -> float:
        """The fraction of images on which ``scores`` and ``reference`` give the same answer."""
        same = self.answers(scores) == self.answers(reference)
        return float((same.all(axis=1) if self.multi_label else same).mean())

    def right(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Per image, whether the answer is exactly the truth (bool, N)."""
        same = self.answers(scores) == targets
        return same.all(axis=1) if self.multi_label else same

    def accuracy(self, scores: np.ndarray, targets: np.ndarray) -> float:
        """Top-1 accuracy, or the macro F1 of the multi-label answers."""
        if self.multi_label:
            return macro_f1(self.answers(scores), targets)
        return float(self.right(scores, targets).mean())

    def chance(self, targets: np.ndarray) -> float:
        """How often always giving the most frequent answer (class, or label set) is right."""
        if self.multi_label:
            _, counts = np.unique(np.asarray(targets, bool), axis=0, return_counts=True)
            return float(counts.max() / len(targets))
        return float(np.bincount(targets).max() / len(targets))

    def exact_match(self, scores: np.ndarray, targets: np.ndarray) -> float:
        """The fraction of images whose answer is exactly right (for multi-label reports)."""
        return exact_match(self.answers(scores), targets) if self.multi_label else self.accuracy(scores, targets)


SINGLE_LABEL = Decisions()
