"""Regions for each frame of a stream: from a callback, or from the JSON-lines file a detector writes.

A detector process that runs beside the stream writes one line per frame it looked at::

    {"frame": 12, "boxes": [[410, 80, 520, 300]]}
    {"timestamp_ms": 480.0, "predictions": [{"label": "car", "x_min": 10, "y_min": 20, "x_max": 90, "y_max": 70}]}

keyed by the frame's index or its timestamp, in increasing order, each with its boxes (or a DeepStack
detection answer). :class:`JsonlRegions` reads the file as the stream goes, one line ahead, so memory stays
constant however long the file is; a frame no line names has no regions. The file may still be growing: a
detector that writes as the camera streams is read up to its last whole line, and again as it adds more. A callback
``(index, timestamp_ms, frame) -> boxes`` (a detector in the same process) does the same in Python.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgecls.runtime.errors import RegionError
from edgecls.runtime.regions import Region, regions_from

__all__ = ["RegionFeed", "JsonlRegions", "region_feed", "MAX_LINE_BYTES", "TOLERANCE_MS"]

RegionFeed = Callable[[int, float, np.ndarray], Any]
"""``(frame index, timestamp ms, frame) -> boxes`` (anything :func:`regions_from` reads; None or [] for none)."""
MAX_LINE_BYTES = 1 << 20
TOLERANCE_MS = 20.0
"""A line keyed by ``timestamp_ms`` belongs to the frame within this many milliseconds of it."""


class JsonlRegions:
    """The regions of each frame from a JSON-lines file (see the module's docstring).

    Raises (when called):
        RegionError: a line that is not JSON, has neither ``frame`` nor ``timestamp_ms``, keys that go
            backwards, or boxes that are not boxes (naming the file and the line).
    """

    def __init__(self, path: str | os.PathLike, *, tolerance_ms: float = TOLERANCE_MS) -> None:
        self.path = Path(path)
        try:
            self._file: IO[bytes] | None = self.path.open("rb")
        except OSError as exc:
            raise RegionError(f"{path}: cannot read the boxes file ({exc.strerror or exc})", options=("boxes",)) from exc
        self._tolerance = tolerance_ms
        self._line = 0
        self._ahead: tuple[str, float, list[Region]] | None = None
        self._last = -float("inf")

    def _next(self) -> tuple[str, float, list[Region]] | None:
        """The next line's entry; None at the end of what the detector has written so far (the file stays
        open: a detector that writes as the stream goes adds lines later; a line it is still writing, not yet
        a whole JSON object, is read again next time)."""
        while self._file is not None:
            start = self._file.tell()
            raw = self._file.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return None
            if len(raw) > MAX_LINE_BYTES:
                self._line += 1
                raise self._error(f"a line is at most {MAX_LINE_BYTES >> 20} MiB")
            if not raw.endswith(b"\n") and not _whole(raw):
                self._file.seek(start)
                return None
            self._line += 1
            if raw.strip():
                return self._parse(raw)
        return None

    def _error(self, why: str) -> RegionError:
        return RegionError(f"{self.path}:{self._line}: {why}", options=("boxes",))

    def _parse(self, raw: bytes) -> tuple[str, float, list[Region]]:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise self._error(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise self._error("a line is an object with frame or timestamp_ms, and boxes")
        kind = "frame" if "frame" in data else "timestamp_ms" if "timestamp_ms" in data else None
        key = data.get(kind) if kind else None
        if kind is None or not isinstance(key, (int, float)) or isinstance(key, bool):
            raise self._error("a line names its frame (\"frame\": N) or its time (\"timestamp_ms\": T)")
        try:
            key = float(key)
        except OverflowError:  # an integer beyond any float
            key = math.inf
        if not math.isfinite(key):
            raise self._error(f"{kind} must be a finite number")
        if key < self._last:
            raise self._error(f"{kind} {key:g} comes after {self._last:g}: lines go in increasing order")
        self._last = key
        try:
            boxes = regions_from(data["boxes"] if "boxes" in data else data.get("predictions", []))
        except RegionError as exc:
            raise self._error(str(exc)) from None
        return kind, key, boxes

    def __call__(self, index: int, timestamp_ms: float, frame: np.ndarray) -> list[Region]:
        """The regions of the frame ``index`` at ``timestamp_ms`` (none when no line names it)."""
        while True:
            if self._ahead is None:
                self._ahead = self._next()
                if self._ahead is None:
                    return []
            kind, key, boxes = self._ahead
            here = float(index) if kind == "frame" else timestamp_ms
            slack = 0.0 if kind == "frame" else self._tolerance
            if key < here - slack:  # a line for a frame the stream did not classify (every=N, live drops)
                self._ahead = None
                continue
            if key <= here + slack:
                self._ahead = None
                return boxes
            return []

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _whole(raw: bytes) -> bool:
    """Whether a last line without its newline is a whole JSON value (a finished file), not one being written."""
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def region_feed(regions: Any) -> RegionFeed | None:
    """A stream's ``regions`` option as a feed: a callable as it is, a path as :class:`JsonlRegions`.

    Raises:
        RegionError: a path that cannot be read.
        OptionError (RegionError): anything else.
    """
    if regions is None or callable(regions):
        return regions
    if isinstance(regions, (str, os.PathLike)):
        return JsonlRegions(regions)
    raise RegionError(f"regions take a callable (index, timestamp_ms, frame) -> boxes or a JSON-lines file, got "
                      f"{type(regions).__name__}", options=("regions",))
