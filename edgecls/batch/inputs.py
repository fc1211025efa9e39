"""What ``edgecls batch`` classifies: work items from image files, folders, globs, list files and videos.

An item is an image file, or one sampled frame of a video (one every ``every_seconds``, with its frame
index and timestamp). Paths are made absolute (not resolved through links), so a run resumed from
another working folder names the same items. Listing never decodes anything; an image or frame that
cannot be read becomes a row with its error when it is classified.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.datasets import IMAGE_SUFFIXES, iter_images
from edgecls.runtime.errors import DatasetError, OptionError

__all__ = ["Item", "item_key", "expand", "LIST_SUFFIXES", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
LIST_SUFFIXES = frozenset({".txt", ".csv", ".parquet"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Item:
    """One thing to classify: an image file (``frame`` None), or frame ``frame`` of a video at
    ``time_s`` seconds. ``note``: why a video yields no frames (it becomes one error row)."""

    path: str
    frame: int | None = None
    time_s: float | None = None
    note: str | None = None

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


def _listed(listing: Path) -> list[str]:
    """Paths a text, CSV (column ``path``, else the first) or Parquet (column ``path``) file lists;
    relative ones are relative to the listing's folder."""
    try:
        if listing.suffix.lower() == ".parquet":
            from edgecls.batch.output import pyarrow_parquet

            table = pyarrow_parquet().read_table(listing)
            if "path" not in table.column_names:
                raise DatasetError(f"{listing}: a Parquet list needs a column 'path' (has {', '.join(table.column_names)})")
            entries = [str(p) for p in table.column("path").to_pylist() if p]
        elif listing.suffix.lower() == ".csv":
            with open(listing, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            column = rows[0].index("path") if rows and "path" in rows[0] else 0
            start = 1 if rows and "path" in rows[0] else 0
            entries = [row[column].strip() for row in rows[start:] if len(row) > column and row[column].strip()]
        else:
            with open(listing, encoding="utf-8") as f:
                entries = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{listing}: cannot read the list of images ({exc})") from None
    return [e if os.path.isabs(e) else str(listing.parent / e) for e in entries]


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
    it becomes a row with its error.

    Raises:
        OptionError: no inputs, or ``every_seconds`` not positive.
        DatasetError: an input that does not exist, a glob or folder without images, an unreadable list.
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
        for entry in _listed(path):
            listed = Path(entry)
            if listed.is_dir() or listed.suffix.lower() in VIDEO_SUFFIXES:
                yield from _entry(entry, every_seconds)
            else:
                yield Item(_absolute(entry))
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
