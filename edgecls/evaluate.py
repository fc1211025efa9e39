"""Accuracy of an exported model on a labelled image folder (one sub-folder per class)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.datasets import ImageFolder
from edgecls.runtime.errors import DatasetError, ImageError

__all__ = ["EvalResult", "evaluate"]


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


def _targets(folder: ImageFolder, labels: tuple[str, ...]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    unknown = [c for c in folder.classes if c not in index]
    if not folder.classes:
        raise DatasetError(f"{folder.root}: needs one sub-folder per class, named like the model's labels")
    if unknown:
        raise DatasetError(
            f"{folder.root}: class folders {', '.join(unknown[:5])} are not among the model's labels "
            f"({', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''})"
        )
    return np.array([index[folder.classes[t]] for t in folder.targets], dtype=np.int64)


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


def _score_all(classifier: Any, files: list[Path], targets: np.ndarray, batch_size: int, strict: bool) -> _Tally:
    """Score every file batch by batch into a tally (a batch with a bad image is retried image by
    image, so one bad file costs only itself)."""
    tally = _Tally(classifier.labels)
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


def evaluate(classifier: Any, data_dir: str | Path, *, batch_size: int = 32, strict: bool = False) -> EvalResult:
    """Classify every image of ``data_dir`` with ``classifier`` (an ``edgecls.runtime.Classifier``).

    Unreadable images are skipped and listed in ``unreadable`` (``strict=True``: the first one raises).

    Raises:
        DatasetError: missing or empty folder, no class sub-folders, class names not among the labels,
            or no readable image at all.
        ImageError: with ``strict``, the first image that cannot be read.
    """
    folder = ImageFolder.scan(data_dir)
    labels = classifier.labels
    targets = _targets(folder, labels)
    start = time.perf_counter()
    tally = _score_all(classifier, list(folder.files), targets, batch_size, strict)
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
