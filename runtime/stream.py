"""Video and live-stream classification: a reader thread ahead of the classifier.

- ``video`` mode: every frame (or every N-th), in order, none dropped; the reader
  decodes ahead into a bounded queue, so throughput approaches 1 / max(decode, classify).
- ``live`` mode: the reader keeps only the newest frame; the classifier takes it when
  free; frames overwritten before being taken are dropped and counted.

Iteration ends when the source ends or breaks, or after ``max_frames``; leaving the
``with`` block, ``close()`` or an exception in the loop joins the reader thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.results import Category
from edgecls.runtime.sources import FrameSource, open_source

__all__ = ["FrameResult", "StreamSummary", "Stream", "MODES"]

MODES = ("video", "live")


@dataclass(frozen=True)
class FrameResult:
    """The classification of one frame."""

    index: int
    """Position of the frame in the source (0-based, counting every frame read)."""
    timestamp_ms: float
    """Capture timestamp: the file's position for video files, time since start for live sources."""
    latency_ms: float
    """From the moment the frame was read to the result."""
    categories: tuple[Category, ...]

    @property
    def top(self) -> Category | None:
        return self.categories[0] if self.categories else None


@dataclass(frozen=True)
class StreamSummary:
    frames_read: int
    classified: int
    dropped: int
    fps: float
    p50_latency_ms: float | None
    p99_latency_ms: float | None
    ended: str
    """Why iteration stopped: "end of source", "max_frames", "closed" or "error: ..."."""


class _Slot:
    """Frames handed from the reader to the classifier: a bounded FIFO (video) or newest-only (live)."""

    def __init__(self, live: bool, capacity: int) -> None:
        self._items: deque = deque()
        self._live = live
        self._capacity = 1 if live else capacity
        self._cond = threading.Condition()
        self.done = False
        self.dropped = 0

    def put(self, item: Any, stop: threading.Event) -> None:
        with self._cond:
            if self._live:
                self.dropped += len(self._items)
                self._items.clear()
            else:
                while len(self._items) >= self._capacity and not stop.is_set():
                    self._cond.wait(0.05)
            self._items.append(item)
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.done = True
            self._cond.notify_all()

    def take(self) -> Any | None:
        with self._cond:
            while not self._items and not self.done:
                self._cond.wait(0.05)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def pending(self) -> int:
        with self._cond:
            return len(self._items)


class Stream:
    """Iterator of :class:`FrameResult` over a source; create it with ``Classifier.stream``."""

    def __init__(self, classifier: Any, source: Any, *, mode: str = "video", every: int = 1,
                 max_frames: int | None = None, smooth: int | None = None, events: bool = False,
                 options: ClassifyOptions | None = None, queue_size: int = 8, open_timeout_s: float = 10.0) -> None:
        from edgecls.runtime.errors import OptionError

        if mode not in MODES:
            raise OptionError(f"mode must be 'video' or 'live', got {mode!r}")
        for name, value in (("every", every), ("max_frames", max_frames), ("smooth", smooth)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise OptionError(f"{name} must be a positive integer, got {value!r}")
        self._clf = classifier
        self._options = options or ClassifyOptions()
        self._every, self._max, self._events = every, max_frames, events
        self._window: deque[np.ndarray] | None = deque(maxlen=smooth) if smooth else None
        self._source: FrameSource = open_source(source, open_timeout_s=open_timeout_s)
        self._slot = _Slot(mode == "live", queue_size)
        self._stop = threading.Event()
        self._read = 0
        self._latencies: list[float] = []
        self._classified = 0
        self._last_label: str | None = None
        self._ended = "closed"
        self._error: str | None = None
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._reader, name="edgecls-stream-reader", daemon=True)
        self._thread.start()

    # -- reader thread -----------------------------------------------------------
    def _reader(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._source.read()
                if item is None:
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
            if self._max is not None and self._classified >= self._max:
                self._ended = "max_frames"
                self.close()
                raise StopIteration
            item = self._slot.take()
            if item is None:
                self._ended = f"error: {self._error}" if self._error else "end of source"
                self.close()
                raise StopIteration
            result = self._classify(*item)
            if not self._events or self._is_event(result):
                return result

    def _classify(self, index: int, timestamp: float, read_at: float, frame: np.ndarray) -> FrameResult:
        scores = self._clf.scores(frame)
        if self._window is not None:
            self._window.append(scores)
            scores = np.mean(self._window, axis=0)
        categories = self._clf.categorize(scores, self._options)
        latency = (time.perf_counter() - read_at) * 1000.0
        self._latencies.append(latency)
        self._classified += 1
        return FrameResult(index, timestamp, latency, categories)

    def _is_event(self, result: FrameResult) -> bool:
        label = result.top.label if result.top else None
        changed = label != self._last_label
        self._last_label = label
        return changed

    # -- state ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Frames read and waiting for the classifier (≤ 1 in live mode)."""
        return self._slot.pending()

    @property
    def summary(self) -> StreamSummary:
        elapsed = time.perf_counter() - self._start
        lat = np.asarray(self._latencies) if self._latencies else None
        return StreamSummary(
            frames_read=self._read, classified=self._classified, dropped=self._slot.dropped,
            fps=self._classified / elapsed if elapsed > 0 else 0.0,
            p50_latency_ms=None if lat is None else float(np.percentile(lat, 50)),
            p99_latency_ms=None if lat is None else float(np.percentile(lat, 99)),
            ended=self._ended,
        )

    def close(self) -> None:
        """Stop reading, join the reader thread and release the source. Idempotent."""
        self._stop.set()
        self._slot.finish()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
        self._source.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
