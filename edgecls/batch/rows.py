"""Classifying a list of items into result rows (one pyarrow Table): the work every engine's worker does.

Images are decoded in the worker, at the reduced JPEG scale the model allows (at full size for an image
with boxes: its crops need the detail); video frames are read by seeking (one capture per video per call). An item that cannot be read becomes a row with ``error`` set;
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
from edgecls.runtime.images import to_pixels
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

    def __init__(self, classifier: Classifier, facts: ModelFacts, *, top_k: int, batch_size: int,
                 crop: str | None = None) -> None:
        self.classifier, self.facts = classifier, facts
        self.options = ClassifyOptions(max_results=min(top_k, len(classifier.labels)))
        self.batch_size = batch_size
        self.crop = crop

    def __call__(self, items: Sequence[Item]):
        """A pyarrow Table with the items' rows, in the items' order: one per item, or one per box of an
        image with boxes (one row with its ``error`` when the image cannot be read, one with ``skipped`` when
        it has no boxes)."""
        import pyarrow as pa

        rows: dict[str, list] = {name: [] for name in SCHEMA_FIELDS}
        frames = FrameReader()
        pending: list[tuple[int, np.ndarray]] = []
        try:
            for item in items:
                try:
                    if item.note is not None:
                        raise ImageError(f"{item.path}: {item.note}")
                    if item.boxes is not None:
                        self._regions(item, rows)
                        continue
                    image = item.path if item.frame is None else frames.read(item.path, item.frame)
                    prepared = self.classifier.preprocess(image)
                    pending.append((self._row(rows, item), prepared))
                except ImageError as exc:
                    rows["error"][self._row(rows, item)] = str(exc)
                if len(pending) >= self.batch_size:
                    self._classify(pending, rows)
                    pending = []
            self._classify(pending, rows)
        finally:
            frames.close()
        return pa.table(rows, schema=schema())

    def _row(self, rows: dict[str, list], item: Item, box: int | None = None) -> int:
        """A new row for ``item`` (its box ``box``), empty but for what names it; its index."""
        for values in rows.values():
            values.append(None)
        i = len(rows["path"]) - 1
        rows["path"][i], rows["frame"][i], rows["time_s"][i], rows["box"][i] = item.path, item.frame, item.time_s, box
        rows["model"][i], rows["model_sha256"][i] = self.facts.name, self.facts.sha256
        return i

    def _fill(self, rows: dict[str, list], i: int, categories: Sequence) -> None:
        rows["labels"][i] = [c.label for c in categories]  # a multi-label model: the labels present
        rows["scores"][i] = [c.score for c in categories]
        if categories:  # none when a multi-label model finds no label present
            rows["label"][i], rows["score"][i] = categories[0].label, categories[0].score

    def _classify(self, pending: list[tuple[int, np.ndarray]], rows: dict[str, list]) -> None:
        if not pending:
            return
        scores = self.classifier.scores_of_inputs(np.stack([x for _, x in pending]))
        for (i, _), row in zip(pending, scores, strict=True):
            self._fill(rows, i, self.classifier.categorize(row, self.options))

    def _regions(self, item: Item, rows: dict[str, list]) -> None:
        """A row per box of ``item`` (its crops run together by :meth:`Classifier.classify_regions`).

        Raises:
            ImageError: the image cannot be read (before any of its rows is made).
        """
        if not item.boxes:
            rows["skipped"][self._row(rows, item)] = "no boxes given"
            return
        frame = to_pixels(item.path).array  # full size: the crops need its detail
        height, width = frame.shape[:2]
        results = self.classifier.classify_regions(frame, item.boxes, crop=self.crop,
                                                   max_results=self.options.max_results)
        for box, result in enumerate(results):
            i = self._row(rows, item, box)
            region = result.region
            rows["region"][i] = list(region.in_pixels(width, height))
            rows["detected"][i] = region.label
            if result.crop is not None:
                c = result.crop
                rows["crop"][i] = [c.left, c.top, c.right, c.bottom]
            rows["skipped"][i] = result.skipped
            if result.skipped is None:
                self._fill(rows, i, result.categories)
