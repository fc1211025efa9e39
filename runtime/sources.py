"""Frame sources for streams: camera index, video file, URL or pipeline, image folder, iterable of frames."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgecls.runtime.datasets import list_images
from edgecls.runtime.errors import DatasetError, ImageError, SourceError
from edgecls.runtime.images import DecodeTarget, to_pixels

__all__ = ["FrameSource", "open_source", "is_live_source"]

_URL_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


logger = logging.getLogger("edgecls")


class FrameSource(Protocol):
    """Yields (frame, timestamp_ms) until the source ends; ``close()`` releases it."""

    description: str
    fps: float | None
    """Frames per second the source declares (video files, most cameras), else None."""

    def read(self) -> tuple[np.ndarray, float] | None: ...

    def close(self) -> None: ...


class _CaptureSource:
    def __init__(self, capture: Any, description: str, live_clock: bool, clock_start: float | None) -> None:
        self._capture = capture
        self.description = description
        self._live_clock = live_clock
        self._start = time.monotonic() if clock_start is None else clock_start
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else None

    def read(self) -> tuple[np.ndarray, float] | None:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        if self._live_clock:
            return frame, (time.monotonic() - self._start) * 1000.0
        return frame, float(self._capture.get(cv2.CAP_PROP_POS_MSEC))

    def close(self) -> None:
        self._capture.release()


class _IterSource:
    def __init__(self, frames: Iterator[Any], description: str) -> None:
        self._frames = frames
        self.description = description
        self.fps = None
        self._start = time.monotonic()

    def read(self) -> tuple[np.ndarray, float] | None:
        try:
            item = next(self._frames)
        except StopIteration:
            return None
        if isinstance(item, tuple):  # (frame, timestamp_ms)
            return item[0], float(item[1])
        return item, (time.monotonic() - self._start) * 1000.0

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


def _folder_frames(files: list[Path], target: DecodeTarget | None) -> Iterator[np.ndarray]:
    """A folder's images (``files``, in name order), through the same checks as every image
    (``to_pixels``, JPEGs reduced to fit ``target``); one that cannot be read is logged and skipped, so
    one bad file does not end the stream."""
    for path in files:
        try:
            pixels = to_pixels(path, target=target)
        except ImageError as exc:
            logger.warning("skipped: %s", exc)
            continue
        frame = pixels.array
        if frame.shape[2] != 3:  # gray or with alpha: a stream delivers BGR frames
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if frame.shape[2] == 1 else cv2.COLOR_BGRA2BGR)
        yield frame


def is_live_source(source: Any) -> bool:
    """True for sources that deliver frames in real time: camera index (an int or a string of digits),
    URL, GStreamer pipeline."""
    if isinstance(source, bool):
        return False
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return True
    return isinstance(source, str) and (source.startswith(_URL_PREFIXES) or "!" in source)


def open_source(source: Any, *, open_timeout_s: float = 10.0, clock_start: float | None = None,
                target: DecodeTarget | None = None) -> FrameSource:
    """Open ``source``: an int or a string of digits (camera index), a video file, a URL, a GStreamer pipeline
    (a string containing ``!``), an image folder, or an iterable of frames / (frame, timestamp_ms).

    Live sources time-stamp frames from ``clock_start`` (a ``time.monotonic()`` value; default: now),
    so a reopened source continues the same clock. ``target``: an image folder's JPEGs are decoded at
    the smallest scale that fits it (None: full size, for frames that are shown or saved).

    Raises:
        SourceError: the source cannot be opened (missing file, unreachable URL, no camera, a folder
            nested too deep), within about ``open_timeout_s`` seconds for network sources.
    """
    if isinstance(source, str) and source.isdigit():
        source = int(source)  # "0" from sys.argv or a config file is camera 0, as on the command line
    if isinstance(source, (str, Path)) and not str(source).startswith(_URL_PREFIXES) and "!" not in str(source):
        path = Path(source)
        if path.is_dir():
            try:
                files = list_images(path)  # listed now: an empty folder, or one that cannot be walked, fails here
            except DatasetError as exc:
                raise SourceError(str(exc)) from None
            return _IterSource(_folder_frames(files, target), f"image folder {path}")
        if not path.exists():
            raise SourceError(f"{path}: no such video file or folder")
    if isinstance(source, (int, str, Path)):
        text = str(source)
        if isinstance(source, int):
            capture = cv2.VideoCapture(source)
        elif "!" in text:
            capture = cv2.VideoCapture(text, cv2.CAP_GSTREAMER)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(open_timeout_s * 1000)]
            capture = cv2.VideoCapture(text, cv2.CAP_ANY, params)
        if not capture.isOpened():
            capture.release()
            kind = "camera" if isinstance(source, int) else "source"
            raise SourceError(f"{text}: cannot open {kind} (missing, unreachable or unsupported by this OpenCV)")
        return _CaptureSource(capture, text, live_clock=is_live_source(source), clock_start=clock_start)
    if isinstance(source, Iterable):
        return _IterSource(iter(source), type(source).__name__)
    raise SourceError(f"unsupported source {type(source).__name__}: give a camera index, path, URL or iterable of frames")
