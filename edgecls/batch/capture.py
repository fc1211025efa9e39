"""Hard examples of a batch run: once the engine has committed its shards, the driver keeps the rows
under the threshold as captures (:mod:`edgecls.runtime.capture`), one writer for the whole run so the
folder's caps hold whatever the engine or the number of workers.

The captures are the items themselves: an image file's own bytes (a JPEG as it is, other formats
encoded as JPEG), a video frame read again by seeking, and for a box of an image the crop the model saw
(cut again from the image by the row's ``crop`` and the run's crop policy). Their sidecars hold the
row's top-k labels and scores (what the rows keep), the item's path as ``source``, its frame index as
``frame`` and a box's crop as ``crop``.

Exactly once across kills and resumes: a shard whose captures are all written gets a mark in
``OUT/_captured/``; shards without a mark are gone through again on the next run, skipping the items
whose capture (a sidecar with their path and frame) is already in the folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecls.batch.inputs import item_key
from edgecls.batch.output import ResultStore, pyarrow_parquet
from edgecls.batch.rows import FrameReader
from edgecls.runtime.capture import CaptureOptions, CaptureStats, HardExamples, Origin
from edgecls.runtime.errors import ImageError
from edgecls.runtime.images import to_pixels
from edgecls.runtime.regions import Crop, CropPolicy, cut

__all__ = ["MARKS", "capture_rows"]

MARKS = "_captured"
"""Folder in OUT with one empty file per shard whose captures are all written."""
_log = logging.getLogger(__name__)


def _key(path: str, frame: int | None, crop: Sequence[int] | None) -> str:
    """A capture's key: its item's, and the crop for a box of an image."""
    return item_key(path, frame) + ("" if crop is None else "@" + ",".join(map(str, crop)))


def captured_keys(folder: Path) -> set[str]:
    """Keys (path, frame, crop) of the captures in ``folder`` (from their sidecars)."""
    keys = set()
    for sidecar in folder.glob("*/*.json"):
        try:
            meta = json.loads(sidecar.read_text())
            keys.add(_key(meta["source"], meta["frame"], meta.get("crop")))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or one being removed
    return keys


class _Content:
    """What a row's capture holds, read again from its item: a file's bytes, a video frame, a box's crop
    (the image of the last box is kept: the rows of one image come together)."""

    def __init__(self, policy: CropPolicy) -> None:
        self.policy, self.frames = policy, FrameReader()
        self._image: tuple[str, np.ndarray] | None = None

    def read(self, path: str, frame: int | None, crop: Sequence[int] | None) -> np.ndarray | bytes:
        """Raises OSError, ImageError: the item is gone or changed since it was classified."""
        if crop is None:
            return Path(path).read_bytes() if frame is None else self.frames.read(path, frame)
        if self._image is None or self._image[0] != path:
            self._image = (path, to_pixels(path).array)
        return cut(self._image[1], Crop(*crop, "stretch"), self.policy).copy()


def capture_rows(store: ResultStore, options: CaptureOptions, model_sha256: str,
                 crop: str | None = None) -> CaptureStats:
    """Capture the hard rows of every shard in ``store`` not marked done (``crop``: the crop policy the
    run used, for boxes whose crop reaches outside the image). Waits for room in the writer's queue
    rather than dropping (nothing here is live).

    Raises:
        OSError: the capture folder or the marks cannot be created.
    """
    pq = pyarrow_parquet()
    marks = store.out / MARKS
    marks.mkdir(exist_ok=True)
    parts = [part for part in store.parts() if not (marks / part.stem).exists()]
    writer = HardExamples(options, labels=(), model_sha256=model_sha256)
    content = _Content(CropPolicy.parse(crop))
    try:
        done = captured_keys(Path(options.dir)) if parts else set()
        for part in parts:
            table = pq.read_table(part, columns=["path", "frame", "crop", "labels", "scores", "error"])
            for path, frame, box, labels, scores, error in zip(
                    *(table.column(c).to_pylist() for c in table.column_names), strict=True):
                if error is not None or scores is None or not writer.reasons(scores) or _key(path, frame, box) in done:
                    continue
                try:
                    picture = content.read(path, frame, box)
                except (OSError, ImageError) as exc:  # gone or changed since it was classified
                    _log.warning("capture: %s", exc)
                    continue
                writer.offer(picture, np.asarray(scores, np.float32),
                             Origin(path, frame, labels=labels, crop=None if box is None else tuple(box)), copy=False,
                             wait=True)
            writer.flush()
            (marks / part.stem).touch()
    finally:
        content.frames.close()
        stats = writer.close()
    return stats
