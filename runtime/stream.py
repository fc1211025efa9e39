"""Video and live-stream classification: a reader thread ahead of the classifier.

- ``video`` mode: every frame (or every N-th), in order, none dropped; the reader
  decodes ahead into a bounded queue, so throughput approaches 1 / max(decode, classify).
- ``live`` mode: the reader keeps only the newest frame; the classifier takes it when
  free; frames overwritten before being taken are dropped and counted.

Iteration ends when the source ends or breaks (or, with ``reconnect``, when reopening it
fails), or after ``max_frames``; leaving the ``with`` block, ``close()``, Ctrl-C or an
exception in the loop joins the reader thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edgecls.runtime.capture import CaptureOptions, HardExamples
from edgecls.runtime.errors import OptionError
from edgecls.runtime.frames import (
    FrameClassifier,
    FrameResult,
    StreamSummary,
    check_capture,
    check_positive,
    open_capture,
)
from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.reconnect import Reconnect, ReconnectingSource
from edgecls.runtime.region_feed import region_feed
from edgecls.runtime.slot import FrameSlot
from edgecls.runtime.sources import FrameSource, is_live_source, open_source

__all__ = ["FrameResult", "StreamSummary", "Stream", "StreamOptions", "MODES", "Reconnect"]

MODES = ("video", "live")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamOptions:
    """How :meth:`Classifier.stream` reads and reports a source.

    Attributes:
        mode: ``"video"`` (every ``every``-th frame, in order) or ``"live"`` (the newest frame; the others
            dropped and counted).
        every: classify every N-th frame.
        max_frames: stop after this many classified frames.
        smooth: average scores over the last K frames.
        events: yield only the frames whose top label changed (or fell below the threshold).
        color: the colour order of frames from an iterable (``"bgr"``, as OpenCV delivers them, or ``"rgb"``).
        keep_frames: put each frame in its result (for drawing or saving).
        reconnect: ``True`` or a :class:`Reconnect` policy: reopen a camera, URL or pipeline that breaks.
        queue_size: frames decoded ahead in ``video`` mode.
        open_timeout_s: how long a network source may take to open.
        regions: classify the boxes of each frame instead of the whole frame: a callable ``(index,
            timestamp_ms, frame) -> boxes`` or a JSON-lines file a detector writes (see
            :mod:`edgecls.runtime.region_feed`); each result's ``regions`` holds one result per box.
        crop: the crop policy of those regions (default: the card's, else ``square``).

    Raises:
        OptionError: a bad mode, every, max_frames or queue_size; regions with smooth or events.
    """

    mode: str = "video"
    every: int = 1
    max_frames: int | None = None
    smooth: int | None = None
    events: bool = False
    color: str = "bgr"
    keep_frames: bool = False
    reconnect: Reconnect | bool | None = None
    queue_size: int = 8
    open_timeout_s: float = 10.0
    regions: Any = None
    crop: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise OptionError(f"mode must be 'video' or 'live', got {self.mode!r}")
        for name in ("every", "max_frames", "queue_size"):
            check_positive(name, getattr(self, name))



class Stream:
    """Iterator of :class:`FrameResult` over a source; create it with ``Classifier.stream``."""

    def __init__(self, classifier: Any, source: Any, options: StreamOptions | None = None,
                 classify: ClassifyOptions | None = None, capture: CaptureOptions | HardExamples | None = None) -> None:
        """Raises OptionError (reconnect for a source that cannot reconnect, bad capture or classify options),
        SourceError (the source cannot be opened)."""
        o = options or StreamOptions()
        policy = Reconnect() if o.reconnect is True else (o.reconnect or None)
        if policy is not None and not is_live_source(source):
            raise OptionError(f"reconnect applies to cameras, URLs and GStreamer pipelines, not to {source!r}")
        check_capture(capture)  # before the source opens
        self._every, self._max = o.every, o.max_frames
        feed = region_feed(o.regions)  # bad options fail before the source opens
        self._frames = FrameClassifier(classifier, classify or ClassifyOptions(), smooth=o.smooth, events=o.events,
                                       color=o.color, keep_frames=o.keep_frames, regions=feed, crop=o.crop)
        self._own_feed = feed if feed is not o.regions else None  # a file this stream opened and closes
        self._stop = threading.Event()
        self._source: FrameSource | ReconnectingSource = (
            ReconnectingSource(source, policy, self._stop, open_timeout_s=o.open_timeout_s) if policy
            else open_source(source, open_timeout_s=o.open_timeout_s,
                             target=None if o.keep_frames or feed else classifier.decode_target))
        try:
            self._capture, self._owns_capture = open_capture(classifier, capture)
        except BaseException:
            self._source.close()
            if self._own_feed is not None:
                self._own_feed.close()
            raise
        self._frames.capture_to(self._capture, self._source.description)
        self._join_timeout = o.open_timeout_s + 5.0
        self._slot = FrameSlot(o.mode == "live", o.queue_size)
        self._read = 0
        self._ended = "closed"
        self._error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._reader, name="edgecls-stream-reader", daemon=True)
        self._thread.start()

    @property
    def source_fps(self) -> float | None:
        """Frames per second the source declares (video files, most cameras), else None."""
        return self._source.fps

    # -- reader thread -----------------------------------------------------------
    def _reader(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._source.read()
                if item is None:
                    self._error = getattr(self._source, "last_error", None)
                    break
                frame, timestamp = item
                index = self._read
                self._read += 1
                if index % self._every == 0:
                    self._slot.put((index, timestamp, time.perf_counter(), frame), self._stop)
        except Exception as exc:  # a broken source ends the stream; the summary says why
            self._error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self._slot.finish()

    # -- iteration ----------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        return self

    def __next__(self) -> FrameResult:
        while True:
            if self._max is not None and self._frames.classified >= self._max:
                self._end("max_frames")
                raise StopIteration
            item = self._slot.take()
            if item is None:
                self._end(f"error: {self._error}" if self._error and not self._stop.is_set() else "end of source")
                raise StopIteration
            result = self._frames(*item)
            if result is not None:
                return result

    def _end(self, why: str) -> None:
        if not self._closed:
            self._ended = why
        self.close()

    # -- state ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Frames read and waiting for the classifier (≤ 1 in live mode)."""
        return self._slot.pending()

    @property
    def summary(self) -> StreamSummary:
        return self._frames.summary(frames_read=self._read, dropped=self._slot.dropped, ended=self._ended,
                                    reconnects=getattr(self._source, "reconnects", 0))

    def close(self) -> None:
        """Stop reading, join the reader thread, release the source and write the captures still queued.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._slot.finish()
        if self._own_feed is not None:
            self._own_feed.close()
        if self._owns_capture:
            self._capture.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(self._join_timeout)  # reads are bounded by the source's timeouts
            if self._thread.is_alive():  # never close a capture another thread is reading from
                _log.warning("stream reader still blocked in %s after %.0f s; leaving it (daemon thread)",
                             self._source.description, self._join_timeout)
                return
        self._source.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._closed and exc_type is not None:
            self._ended = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else f"error: {exc_type.__name__}"
        self.close()
