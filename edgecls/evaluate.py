"""Accuracy of an exported model on labelled images: a folder with one sub-folder per class, or (for a
multi-label model) a CSV list ``path,labels``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.datasets import ImageFolder, LabelList, open_dataset
from edgecls.runtime.errors import DatasetError, ImageError
from edgecls.runtime.metrics import average_precision, exact_match, label_counts, macro_f1

__all__ = ["EvalResult", "MultiLabelEvalResult", "evaluate"]


@dataclass
class EvalResult:
    """Top-1/top-5 accuracy, per-class precision and recall, confusion matrix, speed, misclassified files."""

    model: str
    data: str
    labels: list[str]
    images: int
    top1: float
    top5: float
    precision: list[float]
    recall: list[float]
    support: list[int]
    confusion: list[list[int]]
    images_per_s: float
    errors: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    """Images skipped because they could not be read: ``{"image", "error"}``."""
    quantization: str = ""
    """What the file holds, from its card (``int8``, ``int8+float``, ``fp16``...)."""
    float_nodes: int = 0
    """Nodes its quantization ladder kept in float."""

    def to_dict(self, with_errors: bool = True) -> dict[str, Any]:
        data = dict(vars(self))
        data["accuracy"] = self.top1  # the name the export report uses for the same figure
        data["per_class"] = [
            {"label": label, "precision": p, "recall": r, "support": s}
            for label, p, r, s in zip(self.labels, self.precision, self.recall, self.support, strict=True)
        ]
        for key in ("precision", "recall", "support"):
            data.pop(key)
        if not with_errors:
            data.pop("errors")
        return data


def _targets(folder: ImageFolder | LabelList, labels: tuple[str, ...]) -> np.ndarray:
    if isinstance(folder, LabelList):
        raise DatasetError(f"{folder.root}: a multi-label list, but the model is single-label (one class per image): "
                           "give a folder with one sub-folder per class")
    if not folder.classes:
        raise DatasetError(f"{folder.root}: needs one sub-folder per class, named like the model's labels")
    return folder.label_indices(labels)


@dataclass
class MultiLabelEvalResult:
    """A multi-label model on labelled images: per-label precision / recall / F1 / average precision at the
    card's thresholds, macro F1, mAP, the exact-match ratio, speed, and the images whose label set is wrong."""

    model: str
    data: str
    labels: list[str]
    thresholds: list[float]
    images: int
    macro_f1: float
    mean_average_precision: float
    exact_match: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    average_precision: list[float | None]
    support: list[int]
    images_per_s: float
    errors: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    quantization: str = ""
    float_nodes: int = 0

    def to_dict(self, with_errors: bool = True) -> dict[str, Any]:
        data = dict(vars(self))
        data["kind"] = "multi-label"
        data["accuracy"] = self.macro_f1  # the figure the export report calls accuracy for this model
        data["per_label"] = [
            {"label": label, "threshold": t, "precision": p, "recall": r, "f1": f, "average_precision": ap,
             "support": n}
            for label, t, p, r, f, ap, n in zip(self.labels, self.thresholds, self.precision, self.recall, self.f1,
                                                self.average_precision, self.support, strict=True)
        ]
        for key in ("precision", "recall", "f1", "average_precision", "support", "thresholds"):
            data.pop(key)
        if not with_errors:
            data.pop("errors")
        return data


class _Tally:
    """Counts per batch (confusion matrix, top-5 hits, misclassified images): memory independent of
    how many images have been scored, beyond the errors it lists."""

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self.confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
        self.top5_hits = 0
        self.errors: list[dict[str, Any]] = []
        self.unreadable: list[dict[str, str]] = []

    def add(self, files: list[Path], targets: np.ndarray, scores: np.ndarray) -> None:
        predicted = scores.argmax(1)
        k = min(5, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.argsort(-scores, axis=1)
        self.top5_hits += int((top == targets[:, None]).any(axis=1).sum())
        np.add.at(self.confusion, (targets, predicted), 1)
        self.errors += [{"image": str(files[i]), "label": self.labels[targets[i]],
                         "predicted": self.labels[predicted[i]], "score": float(scores[i, predicted[i]])}
                        for i in np.flatnonzero(predicted != targets)]


class _Kept:
    """Every image's scores and truth (multi-label: average precision needs them all), and the wrong ones."""

    def __init__(self, labels: tuple[str, ...], thresholds: np.ndarray) -> None:
        self.labels, self.thresholds = labels, thresholds
        self.scores: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.errors: list[dict[str, Any]] = []
        self.unreadable: list[dict[str, str]] = []

    def add(self, files: list[Path], targets: np.ndarray, scores: np.ndarray) -> None:
        self.scores.append(scores)
        self.targets.append(targets)
        predicted = scores >= self.thresholds
        for i in np.flatnonzero((predicted != targets).any(axis=1)):
            self.errors.append({"image": str(files[i]), "labels": [self.labels[j] for j in np.flatnonzero(targets[i])],
                                "predicted": [self.labels[j] for j in np.flatnonzero(predicted[i])]})


def _score_all(classifier: Any, files: list[Path], targets: np.ndarray, batch_size: int, strict: bool,
               tally: Any) -> Any:
    """Score every file batch by batch into ``tally`` (a batch with a bad image is retried image by
    image, so one bad file costs only itself)."""
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        try:
            tally.add(chunk, targets[start:start + batch_size], classifier.scores_batch(chunk))
            continue
        except ImageError:
            if strict:
                raise
        for i, path in enumerate(chunk, start):
            try:
                tally.add([path], targets[i:i + 1], classifier.scores_batch([path]))
            except ImageError as exc:
                tally.unreadable.append({"image": str(path), "error": str(exc)})
    return tally


def evaluate(classifier: Any, data_dir: str | Path, *, batch_size: int = 32,
             strict: bool = False) -> EvalResult | MultiLabelEvalResult:
    """Classify every image of ``data_dir`` with ``classifier`` (an ``edgecls.runtime.Classifier``).

    Unreadable images are skipped and listed in ``unreadable`` (``strict=True``: the first one raises).

    A multi-label model (its card says so) is judged at its card's thresholds on a CSV list (or class
    folders, one label per image): see :class:`MultiLabelEvalResult`.

    Raises:
        DatasetError: missing or empty folder, no class sub-folders, class names not among the labels,
            a multi-label list for a single-label model, or no readable image at all.
        ImageError: with ``strict``, the first image that cannot be read.
    """
    folder = open_dataset(data_dir)
    labels = classifier.labels
    if classifier.card.output.multi_label:
        return _evaluate_multi_label(classifier, folder, batch_size, strict)
    targets = _targets(folder, labels)
    start = time.perf_counter()
    tally = _score_all(classifier, list(folder.files), targets, batch_size, strict, _Tally(labels))
    elapsed = time.perf_counter() - start
    confusion = tally.confusion
    images = int(confusion.sum())
    if not images:
        raise DatasetError(f"{folder.root}: none of its {len(folder.files)} images could be read "
                           f"(first: {tally.unreadable[0]['error']})")
    tp = np.diag(confusion).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / confusion.sum(axis=0))
        recall = np.nan_to_num(tp / confusion.sum(axis=1))
    return EvalResult(
        model=str(classifier.path), data=str(folder.root), labels=list(labels), images=images,
        top1=float(tp.sum() / images), top5=tally.top5_hits / images,
        precision=precision.round(4).tolist(), recall=recall.round(4).tolist(),
        support=confusion.sum(axis=1).tolist(), confusion=confusion.tolist(),
        images_per_s=images / elapsed, errors=tally.errors, unreadable=tally.unreadable,
        quantization=classifier.card.provenance.quantization, float_nodes=classifier.card.provenance.float_nodes,
    )


def _evaluate_multi_label(classifier: Any, data: ImageFolder | LabelList, batch_size: int,
                          strict: bool) -> MultiLabelEvalResult:
    labels = classifier.labels
    targets = data.label_matrix(labels)
    if targets is None:
        raise DatasetError(f"{data.root}: needs a CSV list (path,labels) or one sub-folder per label")
    thresholds = np.asarray(classifier.card.output.label_thresholds(), np.float32)
    start = time.perf_counter()
    kept = _score_all(classifier, list(data.files), targets, batch_size, strict, _Kept(labels, thresholds))
    elapsed = time.perf_counter() - start
    if not kept.scores:
        raise DatasetError(f"{data.root}: none of its {len(data.files)} images could be read "
                           f"(first: {kept.unreadable[0]['error']})")
    scores, truth = np.concatenate(kept.scores), np.concatenate(kept.targets)
    predicted = scores >= thresholds
    counts = label_counts(predicted, truth)
    ap = average_precision(scores, truth)
    return MultiLabelEvalResult(
        model=str(classifier.path), data=str(data.root), labels=list(labels),
        thresholds=[round(float(t), 6) for t in thresholds], images=len(scores),
        macro_f1=macro_f1(predicted, truth), mean_average_precision=float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0,
        exact_match=exact_match(predicted, truth), precision=counts.precision.round(4).tolist(),
        recall=counts.recall.round(4).tolist(), f1=counts.f1.round(4).tolist(),
        average_precision=[None if np.isnan(v) else round(float(v), 4) for v in ap],
        support=counts.support.tolist(), images_per_s=len(scores) / elapsed, errors=kept.errors,
        unreadable=kept.unreadable, quantization=classifier.card.provenance.quantization,
        float_nodes=classifier.card.provenance.float_nodes,
    )
