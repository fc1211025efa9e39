"""Live sessions: the app pushes frames from its own capture loop, results arrive on a callback.

The equivalent of MediaPipe Tasks' LIVE_STREAM running mode: ``classify_async`` returns at
once; a worker thread classifies the newest frame whenever it is free and drops (and counts)
frames that were overtaken while it was busy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgecls.runtime.capture import CaptureOptions, HardExamples
from edgecls.runtime.errors import StreamError
from edgecls.runtime.frames import FrameClassifier, FrameResult, StreamSummary, open_capture
from edgecls.runtime.images import to_pixels
from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.regions import regions_from
from edgecls.runtime.slot import FrameSlot

__all__ = ["LiveSession", "ResultCallback"]

ResultCallback = Callable[[FrameResult], None]


class LiveSession:
    """Asynchronous classification of frames the app supplies; create it with ``Classifier.live``.

    The callback runs on the session's worker thread with a :class:`FrameResult` whose ``frame``
    is the pushed frame (a private copy), so it can be drawn on or forwarded.
    """

    def __init__(self, classifier: Any, callback: ResultCallback, *, options: ClassifyOptions | None = None,
                 smooth: int | None = None, events: bool = False, color: str = "bgr",
                 capture: CaptureOptions | HardExamples | None = None, crop: str | None = None) -> None:
        if not callable(callback):
            raise StreamError(f"result callback must be callable, got {type(callback).__name__}")
        self._frames = FrameClassifier(classifier, options or ClassifyOptions(), smooth=smooth, events=events,
                                       color=color, keep_frames=True, crop=crop)
        self._capture, self._owns_capture = open_capture(classifier, capture)
        self._frames.capture_to(self._capture, "live")
        self._color = color
        self._callback = callback
        self._slot = FrameSlot(live=True)
        self._stop = threading.Event()
        self._pushed = 0
        self._last_ts: float | None = None
        self._failure: BaseException | None = None
        self._closed = False
        self._ended = "closed"
        self._thread = threading.Thread(target=self._worker, name="edgecls-live-worker", daemon=True)
        self._thread.start()

    def classify_async(self, frame: np.ndarray, timestamp_ms: float, regions: Any = None) -> None:
        """Queue ``frame`` (BGR by default) captured at ``timestamp_ms``; returns without waiting. With
        ``regions`` (the boxes a detector found in it, as :func:`~edgecls.runtime.regions.regions_from` reads
        them), its result holds one result per box in ``regions`` instead of the frame's categories.

        A frame still waiting when the next one arrives is dropped and counted in ``summary``.

        Raises:
            ImageError: ``frame`` is not a usable image array.
            RegionError: ``regions`` that are not boxes.
            StreamError: the session is closed, ``timestamp_ms`` does not increase, or the
                callback raised (the original exception is chained).
        """
        self._raise_failure()
        if self._closed:
            raise StreamError("classify_async called on a closed live session")
        if not isinstance(frame, np.ndarray):
            raise StreamError(f"classify_async takes an image array, got {type(frame).__name__}")
        if self._last_ts is not None and not timestamp_ms > self._last_ts:
            raise StreamError(f"timestamps must increase: got {timestamp_ms} after {self._last_ts}")
        boxes = None if regions is None else regions_from(regions)  # checked now, in the caller's thread
        if boxes is not None and self._frames.follows_frames:
            raise StreamError("smooth and events follow a whole frame's answer; regions have one per box")
        pixels = to_pixels(frame, color=self._color).array  # validates now, in the caller's thread
        if np.shares_memory(pixels, frame):
            pixels = pixels.copy()  # the app may reuse its buffer for the next capture
        self._last_ts = timestamp_ms
        index, self._pushed = self._pushed, self._pushed + 1
        self._slot.put((index, float(timestamp_ms), time.perf_counter(), pixels, boxes), self._stop)

    def _worker(self) -> None:
        while (item := self._slot.take()) is not None:
            try:
                result = self._frames(*item)
                if result is not None:
                    self._callback(result)
            except BaseException as exc:  # reported to the app on its next call
                self._failure = exc
                self._ended = f"error: {exc.__class__.__name__}"
                self._slot.finish()
                return

    def _raise_failure(self) -> None:
        if self._failure is not None:
            exc, self._failure = self._failure, None
            raise StreamError(f"live session stopped: the result callback or classification raised "
                              f"{exc.__class__.__name__}: {exc}") from exc

    @property
    def summary(self) -> StreamSummary:
        return self._frames.summary(frames_read=self._pushed, dropped=self._slot.dropped, ended=self._ended)

    def close(self) -> None:
        """Classify the frame still waiting (if any), join the worker, write the captures still queued
        and stop. Idempotent.

        Raises:
            StreamError: the callback raised and the app has not been told yet.
        """
        if not self._closed:
            self._closed = True
            self._slot.finish()
            if threading.current_thread() is not self._thread:
                self._thread.join()
            if self._owns_capture:
                self._capture.close()
        self._raise_failure()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self._failure = None  # the app's own exception is already on its way
            self._ended = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else f"error: {exc_type.__name__}"
        self.close()
