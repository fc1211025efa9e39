"""Classifying a list of items into result rows (one pyarrow Table): the work every engine's worker does.

Images are decoded in the worker, at the reduced JPEG scale the model allows; video frames are read by
seeking (one capture per video per call). An item that cannot be read becomes a row with ``error`` set;
the readable ones run through the model ``batch_size`` at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgecls.batch.inputs import Item
from edgecls.batch.output import SCHEMA_FIELDS, schema
from edgecls.runtime.classifier import Classifier
from edgecls.runtime.errors import ImageError
from edgecls.runtime.options import ClassifyOptions

__all__ = ["FrameReader", "RowMaker"]


@dataclass(frozen=True)
class ModelFacts:
    """What every row repeats about the model."""

    name: str
    sha256: str


class FrameReader:
    """Reads chosen frames of one video at a time (the capture stays open across consecutive items)."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._capture = None

    def read(self, path: str, frame: int) -> np.ndarray:
        import cv2

        if path != self._path:
            self.close()
            self._capture, self._path = cv2.VideoCapture(path), path
        capture = self._capture
        if capture is None or not capture.isOpened():
            raise ImageError(f"{path}: cannot open video")
        if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) != frame:
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, image = capture.read()
        if not ok or image is None:
            raise ImageError(f"{path}: frame {frame} could not be read (the file ends early or is damaged there)")
        return image

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture, self._path = None, None


class RowMaker:
    """Turns items into result rows with one :class:`Classifier` (held by a worker for its lifetime)."""

    def __init__(self, classifier: Classifier, facts: ModelFacts, *, top_k: int, batch_size: int) -> None:
        self.classifier, self.facts = classifier, facts
        self.options = ClassifyOptions(max_results=min(top_k, len(classifier.labels)))
        self.batch_size = batch_size

    def __call__(self, items: Sequence[Item]):
        """A pyarrow Table with one row per item, in the items' order."""
        import pyarrow as pa

        rows: dict[str, list] = {name: [None] * len(items) for name in SCHEMA_FIELDS}
        rows["path"] = [item.path for item in items]
        rows["frame"] = [item.frame for item in items]
        rows["time_s"] = [item.time_s for item in items]
        rows["model"] = [self.facts.name] * len(items)
        rows["model_sha256"] = [self.facts.sha256] * len(items)
        frames = FrameReader()
        pending: list[tuple[int, np.ndarray]] = []
        try:
            for i, item in enumerate(items):
                try:
                    if item.note is not None:
                        raise ImageError(f"{item.path}: {item.note}")
                    image = item.path if item.frame is None else frames.read(item.path, item.frame)
                    pending.append((i, self.classifier.preprocess(image)))
                except ImageError as exc:
                    rows["error"][i] = str(exc)
                if len(pending) >= self.batch_size:
                    self._classify(pending, rows)
                    pending = []
            self._classify(pending, rows)
        finally:
            frames.close()
        return pa.table(rows, schema=schema())

    def _classify(self, pending: list[tuple[int, np.ndarray]], rows: dict[str, list]) -> None:
        if not pending:
            return
        scores = self.classifier.scores_of_inputs(np.stack([x for _, x in pending]))
        for (i, _), row in zip(pending, scores, strict=True):
            categories = self.classifier.categorize(row, self.options)
            rows["labels"][i] = [c.label for c in categories]  # a multi-label model: the labels present
            rows["scores"][i] = [c.score for c in categories]
            if categories:  # none when a multi-label model finds no label present
                rows["label"][i], rows["score"][i] = categories[0].label, categories[0].score
