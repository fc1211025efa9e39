"""What an export checks its files against: the calibration images, the images every file is validated
on (``--val``, else the calibration images, else synthetic ones) with their truths, the model's head and
a multi-label head's thresholds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecls.converters.data import ArrayReader, synthetic_images
from edgecls.converters.errors import ExportError
from edgecls.converters.export_options import ExportOptions
from edgecls.converters.heads import Head, detect_head
from edgecls.converters.loading import LoadedModel
from edgecls.converters.normalization import PixelNormalization, wrap_with_normalization
from edgecls.converters.validate import keras_scores
from edgecls.runtime.card import InputSpec
from edgecls.runtime.datasets import ImageFolder, LabelList, open_dataset
from edgecls.runtime.metrics import f1_thresholds

__all__ = ["Dataset", "CheckedImages", "calibration_images", "checked_images", "truths", "find_head",
           "thresholds_for", "SYNTHETIC_IMAGES"]

Dataset = ImageFolder | LabelList
SYNTHETIC_IMAGES = 64


def calibration_images(opts: ExportOptions, spec: InputSpec) -> tuple[ArrayReader | None, Dataset | None, dict]:
    source = opts.calibration
    if source is None:
        return None, None, {}
    if isinstance(source, np.ndarray):
        images = source[: opts.calib_size]
        if images.ndim != 4 or images.shape[1:] != (spec.height, spec.width, spec.channels) or images.dtype != np.uint8:
            raise ExportError(f"calibration array must be uint8 N×{spec.height}×{spec.width}×{spec.channels}, "
                              f"got {images.dtype} {images.shape}")
        return ArrayReader(images), None, {"source": "array", "images": len(images)}
    folder = open_dataset(source, limit=opts.calib_size)
    summary = {"source": str(folder.root), "images": len(folder.files), "classes": len(folder.classes)}
    return ArrayReader(folder.load(spec)), folder, summary


@dataclass(frozen=True)
class CheckedImages:
    """The images every file is checked on, the dataset they come from (labels, targets), and their name."""

    images: np.ndarray
    dataset: Dataset | None
    source: str


def checked_images(val: Dataset | None, calib: Dataset | None, reader: ArrayReader | None,
                    calib_summary: dict, spec: InputSpec, notes: list[str]) -> CheckedImages:
    """--val, else the calibration images, else synthetic ones."""
    if val is not None:
        return CheckedImages(val.load(spec), val, str(val.root))
    if reader is not None:
        notes.append("validated on the calibration images, not on held-out ones (validation= gives them)")
        return CheckedImages(np.stack(list(reader)), calib, f"calibration images ({calib_summary['source']})")
    notes.append(f"validated on {SYNTHETIC_IMAGES} synthetic images, not real ones (validation= gives them)")
    return CheckedImages(synthetic_images(SYNTHETIC_IMAGES, spec), None, "synthetic images")


def truths(dataset: Dataset | None, labels: list[str], head: Head) -> np.ndarray | None:
    """The truth of each checked image: label indices (single-label), an image × label matrix (multi-label);
    None without labelled data.

    Raises:
        DatasetError: a class folder or a listed label that is not a label of the model.
        ExportError: multi-label data (a CSV list) for a single-label model.
    """
    if dataset is None:
        return None
    if head.multi_label:
        return dataset.label_matrix(labels)
    if isinstance(dataset, LabelList):
        raise ExportError(f"{dataset.root}: a multi-label list, but the model's head is {head.kind} (one class per "
                          "image): give class folders, or the head", options=("head",))
    return dataset.label_indices(labels)


def find_head(loaded: LoadedModel, opts: ExportOptions, checked: CheckedImages,
          norm: PixelNormalization) -> tuple[Head, np.ndarray]:
    """The model's head, and its outputs on the checked images under ``norm`` (reused by the pixel check).
    Raises ExportError (see :func:`detect_head`)."""
    raw = keras_scores(wrap_with_normalization(loaded.model, norm, loaded.height, loaded.width, loaded.channels),
                       checked.images, source=str(loaded.source or "model"))
    head = detect_head(loaded.model, raw, loss=loaded.loss, head=opts.head, source=checked.source)
    return head, raw


def thresholds_for(opts: ExportOptions, head: Head, reference: np.ndarray, targets: np.ndarray | None,
                labels: list[str]) -> tuple[float, ...] | None:
    """A multi-label head's thresholds (see :attr:`ExportOptions.thresholds`); None for other heads.

    Raises:
        ExportError: thresholds for a head that is not multi-label, ``f1`` without labelled images, or a
            count or value that does not fit.
    """
    if not head.multi_label:
        if opts.thresholds is not None:
            raise ExportError(f"thresholds are for a multi-label head; this one is {head.kind}",
                              options=("thresholds",))
        return None
    if opts.thresholds is None:
        return (0.5,) * len(labels)
    if opts.thresholds == "f1":
        if targets is None:
            raise ExportError("thresholds 'f1' needs labelled validation images (a CSV list of path,labels)",
                              options=("validation",))
        return tuple(round(float(t), 6) for t in f1_thresholds(reference, targets))
    values = tuple(float(t) for t in opts.thresholds)
    if len(values) != len(labels) or not all(0.0 <= t <= 1.0 for t in values):
        raise ExportError(f"thresholds: {len(values)} given; the model has {len(labels)} labels, each threshold "
                          "within 0..1", options=("thresholds",))
    return values
