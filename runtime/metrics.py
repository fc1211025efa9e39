"""Multi-label metrics, in numpy: per-label precision / recall / F1, macro F1, average precision (mAP),
the exact-match ratio, and the thresholds that maximize each label's F1.

``scores`` are (N, L) probabilities, ``targets`` (N, L) 0/1 (or bool) truths, ``thresholds`` L values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LabelCounts", "label_counts", "macro_f1", "average_precision", "exact_match", "f1_thresholds"]


@dataclass(frozen=True)
class LabelCounts:
    """True positives, false positives and false negatives per label."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @property
    def precision(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(self.tp / (self.tp + self.fp))

    @property
    def recall(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(self.tp / (self.tp + self.fn))

    @property
    def f1(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nan_to_num(2 * self.tp / (2 * self.tp + self.fp + self.fn))

    @property
    def support(self) -> np.ndarray:
        return self.tp + self.fn

    def __add__(self, other: LabelCounts) -> LabelCounts:
        return LabelCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def label_counts(predicted: np.ndarray, targets: np.ndarray) -> LabelCounts:
    """Counts of ``predicted`` (N, L bool) against ``targets``."""
    p, t = np.asarray(predicted, bool), np.asarray(targets, bool)
    return LabelCounts((p & t).sum(0).astype(np.int64), (p & ~t).sum(0).astype(np.int64),
                       (~p & t).sum(0).astype(np.int64))


def macro_f1(predicted: np.ndarray, targets: np.ndarray) -> float:
    """The mean of the per-label F1 over the labels that occur in ``targets`` or ``predicted``."""
    counts = label_counts(predicted, targets)
    present = (counts.tp + counts.fp + counts.fn) > 0
    return float(counts.f1[present].mean()) if present.any() else 1.0


def exact_match(predicted: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of images whose predicted label set is exactly the true one."""
    return float((np.asarray(predicted, bool) == np.asarray(targets, bool)).all(axis=1).mean())


def average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each label's average precision (the area under its precision-recall curve, as scikit-learn's
    ``average_precision_score``); NaN for a label without positives."""
    scores, targets = np.asarray(scores, np.float64), np.asarray(targets, bool)
    out = np.full(scores.shape[1], np.nan)
    for j in range(scores.shape[1]):
        positives = targets[:, j].sum()
        if positives == 0:
            continue
        order = np.argsort(-scores[:, j], kind="stable")
        hits = targets[order, j]
        # one point per distinct score: ties count together
        distinct = np.r_[np.flatnonzero(np.diff(scores[order, j])), len(order) - 1]
        tp = np.cumsum(hits)[distinct]
        precision = tp / (distinct + 1)
        recall = tp / positives
        out[j] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return out


def f1_thresholds(scores: np.ndarray, targets: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per label, the threshold that maximizes its F1 on (``scores``, ``targets``): midway between two
    neighbouring scores, the one nearest ``default`` among equals; ``default`` for a label that never
    occurs."""
    scores, targets = np.asarray(scores, np.float64), np.asarray(targets, bool)
    out = np.full(scores.shape[1], default)
    for j in range(scores.shape[1]):
        if not targets[:, j].any():
            continue
        values = np.unique(scores[:, j])
        candidates = np.unique(np.r_[(values[:-1] + values[1:]) / 2, values[0] / 2, default])
        predicted = scores[:, j][None, :] >= candidates[:, None]
        tp = (predicted & targets[:, j]).sum(1)
        fp = (predicted & ~targets[:, j]).sum(1)
        fn = (~predicted & targets[:, j]).sum(1)
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        best = np.flatnonzero(f1 == f1.max())
        out[j] = float(candidates[best[np.argmin(np.abs(candidates[best] - default))]])
    return np.clip(out, 0.0, 1.0)
