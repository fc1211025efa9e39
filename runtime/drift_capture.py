"""A drift alarm's evidence: a bounded, uniform sample of the frames of each window that alerted, kept in
the capture layout (:mod:`edgecls.runtime.capture`) for a person to label and retrain on.

A reservoir of ``size`` frames (each frame of the window equally likely to be in it, O(size) memory
however long the window) is filled as frames are classified; when the monitor closes a window in
``alert``, the reservoir goes to the capture writer (its caps and rate apply), each frame with the
alerting signals as its reasons; then it starts again for the next window.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from edgecls.runtime.capture import HardExamples, Origin

__all__ = ["DriftSample"]


class DriftSample:
    """The frames of the current window, sampled; written when it alerts."""

    def __init__(self, writer: HardExamples, size: int = 16, *, monitor: Any = None, seed: int = 0) -> None:
        self.writer, self.size, self.monitor = writer, size, monitor
        self._windows = 0
        self._random = random.Random(seed)
        self._kept: list[tuple[np.ndarray, np.ndarray, Origin]] = []
        self._seen = 0
        self.saved = 0
        """Frames handed to the writer so far."""

    def offer(self, frame: np.ndarray, scores: np.ndarray, origin: Origin) -> None:
        """One classified frame of the current window (kept by reservoir sampling; nothing is copied)."""
        self._seen += 1
        if len(self._kept) < self.size:
            self._kept.append((frame, scores, origin))
            return
        slot = self._random.randrange(self._seen)
        if slot < self.size:
            self._kept[slot] = (frame, scores, origin)

    def follow(self, result: Any, source: str = "") -> None:
        """A stream's result (:class:`~edgecls.runtime.FrameResult`, kept frames): when ``monitor`` closed a
        window since the last one, that window's sample first; then this frame into the next window's."""
        if self.monitor is not None and self.monitor.windows != self._windows:
            self._windows = self.monitor.windows
            self.window_closed(self.monitor.last)
        if result.frame is not None and result.scores is not None:
            self.offer(result.frame, result.scores, Origin(source, result.index, result.timestamp_ms))

    def window_closed(self, report: Any, color: str = "bgr") -> int:
        """The monitor closed a window: write the sample when its ``report`` is in alert; start a new one.
        Returns how many frames were handed to the writer."""
        handed = 0
        if report.state == "alert":
            because = [f"drift: {name}" for name in report.moved("alert")]
            for frame, scores, origin in self._kept:
                handed += self.writer.offer(frame, scores, origin, color=color, copy=False, because=because)
        self.saved += handed
        self._kept, self._seen = [], 0
        return handed
