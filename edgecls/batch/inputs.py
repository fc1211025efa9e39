"""What ``edgecls batch`` classifies: work items from image files, folders, globs, list files and videos.

An item is an image file, or one sampled frame of a video (one every ``every_seconds``, with its frame
index and timestamp); an image of a CSV or Parquet list with a ``boxes`` column carries the boxes a
detector found in it, and is classified box by box (one row each). Paths are made absolute (not resolved through links), so a run resumed from
another working folder names the same items. Listing never decodes anything; an image or frame that
cannot be read becomes a row with its error when it is classified.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.runtime.datasets import IMAGE_SUFFIXES, iter_images
from edgecls.runtime.errors import DatasetError, OptionError, RegionError
from edgecls.runtime.regions import Region, regions_from

__all__ = ["Item", "item_key", "expand", "boxes_of", "LIST_SUFFIXES", "VIDEO_SUFFIXES", "MAX_BOXES"]

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
LIST_SUFFIXES = frozenset({".txt", ".csv", ".parquet"})
_GLOB_CHARS = frozenset("*?[")
MAX_BOXES = 1024
"""Boxes one image may have in a list (a row each); more is refused when the list is read."""


@dataclass(frozen=True)
class Item:
    """One thing to classify: an image file (``frame`` None), or frame ``frame`` of a video at
    ``time_s`` seconds. ``note``: why a video yields no frames (it becomes one error row). ``boxes``: the
    regions of an image to classify (a row each), None for the whole image."""

    path: str
    frame: int | None = None
    time_s: float | None = None
    note: str | None = None
    boxes: tuple[Region, ...] | None = None

    @property
    def key(self) -> str:
        """Unique per item: the path, and ``#frame`` for a video frame (see :func:`item_key`)."""
        return item_key(self.path, self.frame)


def item_key(path: str, frame: int | None) -> str:
    """The key of an item or of its row: the path, and ``#frame`` for a video frame."""
    return path if frame is None else f"{path}#{frame}"


def _absolute(path: str | Path) -> str:
    return os.path.abspath(os.fspath(path))


def video_frames(path: str, every_seconds: float) -> list[Item]:
    """The frames of ``path`` to classify, one every ``every_seconds`` from frame 0 (by the container's
    frame rate and count; no frame is decoded). A video OpenCV cannot open, or without a frame rate or
    count, gives one item with its ``note``."""
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return [Item(path, note="cannot open video (missing, corrupt or unsupported by this OpenCV)")]
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    if not 0.0 < fps < 1000.0 or count <= 0:
        return [Item(path, note=f"video declares no usable frame rate or count (fps {fps:g}, frames {count})")]
    step = max(1, round(every_seconds * fps))
    return [Item(path, frame, frame / fps) for frame in range(0, count, step)]


def _listed(listing: Path) -> list[tuple[str, tuple[Region, ...] | None]]:
    """Paths a text, CSV (column ``path``, else the first) or Parquet (column ``path``) file lists, each
    with its boxes when the list has a ``boxes`` column (see :func:`boxes_of`; the rows of one path are
    joined in order); relative paths are relative to the listing's folder.

    Raises:
        DatasetError: the list cannot be read, or a Parquet list has no ``path`` column.
        RegionError: a ``boxes`` cell that is not boxes (naming the list and the row).
    """
    try:
        rows = _rows(listing)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{listing}: cannot read the list of images ({exc})") from None
    entries: dict[str, list[Region] | None] = {}
    for number, (entry, cell, has_boxes) in enumerate(rows, start=1):
        entry = entry if os.path.isabs(entry) else str(listing.parent / entry)
        boxes = entries.setdefault(entry, [] if has_boxes else None)
        if has_boxes and boxes is not None:
            boxes.extend(boxes_of(cell, f"{listing} row {number}"))
            if len(boxes) > MAX_BOXES:
                raise RegionError(f"{listing}: {entry} has more than {MAX_BOXES} boxes", options=("boxes",))
    return [(entry, None if boxes is None else tuple(boxes)) for entry, boxes in entries.items()]


def _rows(listing: Path) -> list[tuple[str, Any, bool]]:
    """(path, boxes cell, whether the list has a boxes column) per entry of a list file.

    Raises:
        OSError, UnicodeDecodeError, ValueError: the file cannot be read as that kind of list.
        DatasetError: a Parquet list without a ``path`` column.
    """
    suffix = listing.suffix.lower()
    if suffix == ".parquet":
        from edgecls.batch.output import pyarrow_parquet

        table = pyarrow_parquet().read_table(listing)
        if "path" not in table.column_names:
            raise DatasetError(f"{listing}: a Parquet list needs a column 'path' (has {', '.join(table.column_names)})")
        paths = table.column("path").to_pylist()
        has = "boxes" in table.column_names
        cells = table.column("boxes").to_pylist() if has else [None] * len(paths)
        return [(str(p), cell, has) for p, cell in zip(paths, cells, strict=True) if p]
    if suffix == ".csv":
        with open(listing, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
        header = table[0] if table and "path" in table[0] else None
        column = header.index("path") if header else 0
        boxes = header.index("boxes") if header and "boxes" in header else None
        return [(row[column].strip(), row[boxes] if boxes is not None and len(row) > boxes else None, boxes is not None)
                for row in table[1 if header else 0:] if len(row) > column and row[column].strip()]
    with open(listing, encoding="utf-8") as f:
        return [(line.strip(), None, False) for line in f if line.strip() and not line.lstrip().startswith("#")]


def boxes_of(cell: Any, where: str) -> list[Region]:
    """The regions of one ``boxes`` cell: JSON text or (Parquet) a list, holding a list of boxes, one box
    (four numbers, or a dict with ``x_min, y_min, x_max, y_max``), or a DeepStack detection answer (see
    :func:`~edgecls.runtime.regions.regions_from`). An empty cell is no boxes (the detector found none).

    Raises:
        RegionError: a cell that is not JSON or not boxes, naming ``where``.
    """
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return []
    try:
        value = json.loads(cell) if isinstance(cell, str | bytes) else cell
        if (isinstance(value, Mapping) and "predictions" not in value) or (
                isinstance(value, list) and len(value) == 4 and all(isinstance(v, int | float) for v in value)):
            value = [value]  # one box: a row per box
        return regions_from(value)
    except (ValueError, RecursionError) as exc:  # RegionError is a ValueError; RecursionError: nested too deep
        raise RegionError(f"{where}: {exc}" if isinstance(exc, RegionError) else
                          f"{where}: the boxes are not JSON ({exc})", options=("boxes",)) from None


def _entry(path: str, every_seconds: float) -> Iterator[Item]:
    """Items of one path: a folder's images, a video's frames, or the file itself (as an image)."""
    p = Path(path)
    if p.is_dir():
        yield from (Item(_absolute(f)) for f in sorted(iter_images(p)))
    elif p.suffix.lower() in VIDEO_SUFFIXES:
        yield from video_frames(_absolute(p), every_seconds)
    else:
        yield Item(_absolute(p))


def expand(inputs: Sequence[str | Path], *, every_seconds: float = 1.0) -> list[Item]:
    """Every item the inputs name, each once, in the order given (folders and globs sorted).

    Inputs: image files, folders (walked recursively for images), globs (``archive/**/*.jpg``), list
    files (``.txt`` one path per line, ``.csv`` with a ``path`` column, ``.parquet`` with ``path``), and
    video files (one frame every ``every_seconds``). A path inside a list that does not exist is kept:
    it becomes a row with its error. A CSV or Parquet list with a ``boxes`` column gives each image its
    boxes (:func:`boxes_of`; a path on several rows has the boxes of all of them, in order).

    Raises:
        OptionError: no inputs, or ``every_seconds`` not positive.
        DatasetError: an input that does not exist, a glob or folder without images, an unreadable list.
        RegionError: a ``boxes`` cell that is not boxes, more than :data:`MAX_BOXES` for one image, boxes
            given for a folder or a video.
    """
    if not inputs:
        raise OptionError("give at least one input: an image, folder, glob, list file or video")
    if not every_seconds > 0:
        raise OptionError(f"every_seconds must be positive, got {every_seconds}")
    seen: set[str] = set()
    items: list[Item] = []
    for raw in inputs:
        for item in _named_by(os.fspath(raw), every_seconds):
            if item.key not in seen:
                seen.add(item.key)
                items.append(item)
    return items


def _named_by(text: str, every_seconds: float) -> Iterator[Item]:
    """The items one input names (repeats included). Raises DatasetError as :func:`expand`."""
    path = Path(text)
    if path.is_dir():
        if not any(iter_images(path)):
            raise DatasetError(f"{path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        yield from _entry(text, every_seconds)
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        for entry, boxes in _listed(path):
            listed = Path(entry)
            if boxes is None and (listed.is_dir() or listed.suffix.lower() in VIDEO_SUFFIXES):
                yield from _entry(entry, every_seconds)
            elif boxes is not None and (listed.is_dir() or listed.suffix.lower() in VIDEO_SUFFIXES):
                raise RegionError(f"{path}: {entry}: boxes are the regions of one image; a video's boxes per frame "
                                  "go to edgecls stream --boxes", options=("boxes",))
            else:
                yield Item(_absolute(entry), boxes=boxes)
    elif path.exists():
        yield from _entry(text, every_seconds)
    elif _GLOB_CHARS & set(text):
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise DatasetError(f"{text}: the pattern matches no file")
        for match in matches:
            yield from _entry(match, every_seconds)
    else:
        raise DatasetError(f"{text}: no such image, folder, list file or video")
