"""Hard examples of a batch run: once the engine has committed its shards, the driver keeps the rows
under the threshold as captures (:mod:`edgecls.runtime.capture`), one writer for the whole run so the
folder's caps hold whatever the engine or the number of workers.

The captures are the items themselves: an image file's own bytes (a JPEG as it is, other formats
encoded as JPEG), a video frame read again by seeking. Their sidecars hold the row's top-k labels and
scores (what the rows keep), the item's path as ``source`` and its frame index as ``frame``.

Exactly once across kills and resumes: a shard whose captures are all written gets a mark in
``OUT/_captured/``; shards without a mark are gone through again on the next run, skipping the items
whose capture (a sidecar with their path and frame) is already in the folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from edgecls.batch.inputs import item_key
from edgecls.batch.output import ResultStore, pyarrow_parquet
from edgecls.batch.rows import FrameReader
from edgecls.runtime.capture import CaptureOptions, CaptureStats, HardExamples, Origin
from edgecls.runtime.errors import ImageError

__all__ = ["MARKS", "capture_rows"]

MARKS = "_captured"
"""Folder in OUT with one empty file per shard whose captures are all written."""
_log = logging.getLogger(__name__)


def captured_keys(folder: Path) -> set[str]:
    """Row keys (path, frame) of the captures in ``folder`` (from their sidecars)."""
    keys = set()
    for sidecar in folder.glob("*/*.json"):
        try:
            meta = json.loads(sidecar.read_text())
            keys.add(item_key(meta["source"], meta["frame"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or one being removed
    return keys


def capture_rows(store: ResultStore, options: CaptureOptions, model_sha256: str) -> CaptureStats:
    """Capture the hard rows of every shard in ``store`` not marked done. Waits for room in the writer's
    queue rather than dropping (nothing here is live).

    Raises:
        OSError: the capture folder or the marks cannot be created.
    """
    pq = pyarrow_parquet()
    marks = store.out / MARKS
    marks.mkdir(exist_ok=True)
    parts = [part for part in store.parts() if not (marks / part.stem).exists()]
    writer = HardExamples(options, labels=(), model_sha256=model_sha256)
    frames = FrameReader()
    try:
        done = captured_keys(Path(options.dir)) if parts else set()
        for part in parts:
            table = pq.read_table(part, columns=["path", "frame", "labels", "scores", "error"])
            for path, frame, labels, scores, error in zip(*(table.column(c).to_pylist() for c in table.column_names),
                                                          strict=True):
                if error is not None or not writer.reasons(scores) or item_key(path, frame) in done:
                    continue
                try:
                    content = Path(path).read_bytes() if frame is None else frames.read(path, frame)
                except (OSError, ImageError) as exc:  # gone or changed since it was classified
                    _log.warning("capture: %s", exc)
                    continue
                writer.offer(content, np.asarray(scores, np.float32), Origin(path, frame, labels=labels), copy=False,
                             wait=True)
            writer.flush()
            (marks / part.stem).touch()
    finally:
        frames.close()
        stats = writer.close()
    return stats
