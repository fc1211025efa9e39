"""Per-frame results of streams and live sessions, and the classifier step they share."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from edgecls.runtime.capture import CaptureOptions, CaptureStats, HardExamples, Origin
from edgecls.runtime.errors import OptionError
from edgecls.runtime.latency import LatencyHistogram
from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.regions import CropPolicy, cut
from edgecls.runtime.results import Category, RegionResult

__all__ = ["FrameResult", "StreamSummary", "FrameClassifier", "check_capture", "check_positive", "open_capture"]


MAX_SMOOTH = 10_000
"""Score smoothing averages at most this many frames (the window is kept in memory)."""


def check_positive(name: str, value: Any) -> None:
    """Raise OptionError unless ``value`` is None or a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise OptionError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class FrameResult:
    """The classification of one frame."""

    index: int
    """Position of the frame in the source (0-based, counting every frame read or pushed)."""
    timestamp_ms: float
    """Capture timestamp: the file's position for video files, time since start for live sources,
    the caller's value for :meth:`LiveSession.classify_async`."""
    latency_ms: float
    """From the moment the frame was read (or pushed) to the result."""
    categories: tuple[Category, ...]
    frame: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The frame itself (BGR or as given) when the stream keeps frames, else None."""
    on: tuple[str, ...] = ()
    """A multi-label model's events: the labels that turned on at this frame (present, not before)."""
    off: tuple[str, ...] = ()
    """... and those that turned off."""
    regions: tuple[RegionResult, ...] | None = None
    """A stream with regions: each region's result, in the order the feed gave them (``categories`` empty)."""
    scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The frame's own scores (one per label, before any smoothing); None for a stream of regions."""

    @property
    def top(self) -> Category | None:
        return self.categories[0] if self.categories else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (no pixels): frame and index (both :attr:`index`), timestamp_ms, latency_ms,
        categories; ``on`` and ``off`` for a multi-label model's event."""
        data = {"frame": self.index, "index": self.index, "timestamp_ms": round(self.timestamp_ms, 3),
                "latency_ms": round(self.latency_ms, 3), "categories": [asdict(c) for c in self.categories]}
        if self.on or self.off:
            data |= {"on": list(self.on), "off": list(self.off)}
        if self.regions is not None:
            data["regions"] = [r.to_dict() for r in self.regions]
        return data


@dataclass(frozen=True)
class StreamSummary:
    frames_read: int
    """Frames read from the source, or pushed to a live session (counting those not classified)."""
    classified: int
    dropped: int
    fps: float
    """Classified frames per second of wall time since the stream started."""
    p50_latency_ms: float | None
    p99_latency_ms: float | None
    """Percentiles of latency_ms over every classified frame, within 1 % of the exact ones
    (:mod:`edgecls.runtime.latency`: constant memory however long the stream runs)."""
    ended: str
    """Why it stopped: "end of source", "max_frames", "closed", "interrupted" or "error: ..."."""
    reconnects: int = 0
    capture: CaptureStats | None = None
    """What hard-example capture did (None without capture)."""


def check_capture(capture: object) -> None:
    """Raises OptionError: ``capture`` is not None, :class:`CaptureOptions` or :class:`HardExamples`."""
    if capture is not None and not isinstance(capture, (CaptureOptions, HardExamples)):
        raise OptionError(f"capture takes CaptureOptions or HardExamples, got {type(capture).__name__}",
                          options=("capture",))


def open_capture(classifier: Any, capture: CaptureOptions | HardExamples | None) -> tuple[HardExamples | None, bool]:
    """(the writer, whether the caller owns it): options open a writer the stream closes; a
    :class:`HardExamples` the app made is used as it is and left open.

    Raises:
        OptionError: ``capture`` is neither.
        OSError: the capture folder cannot be created.
    """
    check_capture(capture)
    if capture is None or isinstance(capture, HardExamples):
        return capture, False
    output = classifier.card.output
    return HardExamples(capture, labels=classifier.labels, model_sha256=classifier.sha256,
                        thresholds=output.label_thresholds() if output.multi_label else None), True


class FrameClassifier:
    """Classifies frames one at a time: optional score smoothing, latency bookkeeping, events filter.

    Not thread-safe: one stream or live session drives it from one thread.

    Raises:
        OptionError: ``smooth`` is not a positive integer (at most ``MAX_SMOOTH``), or ``color`` is not "bgr" or "rgb".
    """

    def __init__(self, classifier: Any, options: ClassifyOptions, *, smooth: int | None = None,
                 events: bool = False, color: str = "bgr", keep_frames: bool = False,
                 regions: Any = None, crop: str | CropPolicy | None = None) -> None:
        check_positive("smooth", smooth)
        if regions is not None and (smooth or events):
            raise OptionError("smooth and events follow a whole frame's answer; a stream of regions has one per box")
        if smooth is not None and smooth > MAX_SMOOTH:
            raise OptionError(f"smooth is {smooth}; at most {MAX_SMOOTH} frames are averaged")
        if color not in ("bgr", "rgb"):
            raise OptionError(f"color must be 'bgr' or 'rgb', got {color!r}")
        self._clf = classifier
        self._options = options
        self._window: deque[np.ndarray] | None = deque(maxlen=smooth) if smooth else None
        self._events = events
        self._color = color
        self._keep = keep_frames
        self._capture: HardExamples | None = None
        self._source = ""
        self._last_label: str | None = None
        self._multi = classifier.card.output.multi_label
        self._last_set: tuple[str, ...] = ()
        self._latencies = LatencyHistogram()  # O(1) memory: streams run for months
        self._start = time.perf_counter()
        self._regions = regions
        self._policy = CropPolicy.parse(crop if crop is not None else classifier.card.input.crop)

    def capture_to(self, capture: HardExamples | None, source: str) -> None:
        """Offer every frame from now on to ``capture`` (its scores before smoothing), naming ``source``."""
        self._capture, self._source = capture, source

    @property
    def classified(self) -> int:
        return self._latencies.count

    @property
    def follows_frames(self) -> bool:
        """Whether results follow a whole frame's answer over time (smoothing or events): no regions then."""
        return self._window is not None or self._events

    def __call__(self, index: int, timestamp_ms: float, read_at: float, frame: np.ndarray,
                 regions: list | None = None) -> FrameResult | None:
        """Classify ``frame`` (or, with ``regions`` or a region feed, its boxes); None when ``events`` is on
        and the top label did not change.

        Raises:
            ImageError: the frame is not a usable image.
            RegionError: the region feed gave something that is not boxes.
        """
        if regions is not None or self._regions is not None:
            boxes = regions if regions is not None else self._regions(index, timestamp_ms, frame)
            return self._by_region(index, timestamp_ms, read_at, frame, boxes or [])
        own = scores = self._clf.scores(frame, color=self._color)
        if self._capture is not None:  # the frame's own scores, before smoothing
            self._capture.offer(frame, scores, Origin(self._source, index, timestamp_ms), color=self._color,
                                copy=self._keep)
        if self._window is not None:
            self._window.append(scores)
            scores = np.mean(self._window, axis=0)
        categories = self._clf.categorize(scores, self._options)
        latency = (time.perf_counter() - read_at) * 1000.0
        self._latencies.add(latency)
        result = FrameResult(index, timestamp_ms, latency, categories, frame if self._keep else None, scores=own)
        if self._events:
            return self._event(result)
        return result

    def _by_region(self, index: int, timestamp_ms: float, read_at: float, frame: np.ndarray,
                   boxes: list) -> FrameResult:
        """Each region of this frame, as one batch; the capture gets the crops."""
        from edgecls.runtime.region_batch import classify_regions

        results = classify_regions(self._clf, frame, boxes, self._policy, self._options, self._color) if boxes else []
        for r in results if self._capture is not None else ():
            if r.crop is not None:
                self._capture.offer(cut(frame, r.crop, self._policy), r.scores,
                                    Origin(self._source, index, timestamp_ms,
                                           crop=(r.crop.left, r.crop.top, r.crop.right, r.crop.bottom)),
                                    color=self._color)
        latency = (time.perf_counter() - read_at) * 1000.0
        self._latencies.add(latency)
        return FrameResult(index, timestamp_ms, latency, (), frame if self._keep else None, regions=tuple(results))

    def _event(self, result: FrameResult) -> FrameResult | None:
        """``result`` when the answer changed (the top label; a multi-label model's set of labels, with what
        turned on and off), else None."""
        if self._multi:
            present = tuple(sorted(c.label for c in result.categories))
            before, self._last_set = self._last_set, present
            if present == before:
                return None
            was = set(before)
            return replace(result, on=tuple(x for x in present if x not in was),
                           off=tuple(sorted(was - set(present))))
        label = result.top.label if result.top else None  # None: below the score threshold
        changed, self._last_label = label != self._last_label, label
        return result if changed else None

    def summary(self, *, frames_read: int, dropped: int, ended: str, reconnects: int = 0) -> StreamSummary:
        elapsed = time.perf_counter() - self._start
        return StreamSummary(
            frames_read=frames_read, classified=self.classified, dropped=dropped,
            fps=self.classified / elapsed if elapsed > 0 else 0.0,
            p50_latency_ms=self._latencies.percentile(50),
            p99_latency_ms=self._latencies.percentile(99),
            ended=ended, reconnects=reconnects,
            capture=None if self._capture is None else self._capture.stats,
        )
