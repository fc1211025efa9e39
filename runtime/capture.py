"""Hard-example capture: keep the frames the model was unsure about, for people to label and retrain on.

A frame is *hard* when its top score is under ``below_score`` or its top-1/top-2 margin is under
``below_margin``. Hard frames are written as ``DIR/<predicted label>/<UTC time>-<writer>-<n>.jpg`` with a
JSON sidecar (scores, model sha256, source, frame, time) — the class-folder layout ``edgecls eval``,
``--calib`` and ``--val`` read, so a person can move the wrong ones into the right folder and use them.

Writing never blocks classification: :meth:`HardExamples.offer` decides and queues in microseconds; a
writer thread at a lower CPU priority encodes and writes; when the queue is full the frame is dropped
and counted. The folder never grows past ``max_files`` files or ``max_mb`` megabytes: the oldest
captures (by name, which starts with the time) are removed first, before a new one is written. Files
go through a :class:`~edgecls.runtime.capture_store.CaptureStore` (a folder by default), which makes them
appear whole. Several writers, in one process or several (two cameras, one folder), may share a folder:
names carry a random id per writer, the store's start-up cleanup leaves other writers' files in flight
alone, and each writer's caps count the captures there when it started plus its own.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from edgecls.runtime.capture_store import CaptureStore, FolderStore, folder_name
from edgecls.runtime.errors import OptionError
from edgecls.runtime.imageheader import header_size

__all__ = ["CaptureOptions", "CaptureStats", "CaptureStore", "FolderStore", "HardExamples", "Origin"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptureOptions:
    """Which frames to keep and how much disk they may take.

    Attributes:
        dir: the capture folder (created; one sub-folder per predicted label).
        below_score: capture when the top score is under this (None: no score rule).
        below_margin: capture when top-1 minus top-2 score is under this (None: no margin rule).
        near_threshold: a multi-label model's rule instead of those two: capture when any label's score is
            within this of its threshold (the model is unsure whether that label is present).
        every_n: keep one in every N hard frames (the 1st, the N+1-th, …): a long unsure stretch of
            video gives a few examples, not thousands of near-copies.
        max_per_minute: at most this many captures in any 60 s (None: no limit).
        max_files, max_mb: caps on the folder's captures; the oldest are removed first.
        queue_size: hard frames waiting for the writer; beyond it they are dropped and counted.
        jpeg_quality: 1–100.

    Raises:
        OptionError: no rule (both thresholds None), a threshold outside (0, 1], or a count or cap
            that is not positive.
    """

    dir: str | os.PathLike
    below_score: float | None = 0.6
    below_margin: float | None = None
    every_n: int = 1
    max_per_minute: float | None = None
    max_files: int = 10_000
    max_mb: float = 1_000.0
    queue_size: int = 64
    jpeg_quality: int = 90
    near_threshold: float = 0.1

    def __post_init__(self) -> None:
        if self.below_score is None and self.below_margin is None:
            raise OptionError("capture needs below_score or below_margin (or both)",
                              options=("below_score", "below_margin"))
        for name in ("below_score", "below_margin", "near_threshold"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise OptionError(f"{name} must be in (0, 1], got {value!r}", options=(name,))
        for name in ("every_n", "max_files", "queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(f"{name} must be a positive integer, got {value!r}", options=(name,))
        for name in ("max_per_minute", "max_mb"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise OptionError(f"{name} must be a positive number, got {value!r}", options=(name,))
        if not (isinstance(self.jpeg_quality, int) and 1 <= self.jpeg_quality <= 100):
            raise OptionError(f"jpeg_quality must be 1–100, got {self.jpeg_quality!r}", options=("jpeg_quality",))


@dataclass(frozen=True)
class Origin:
    """Where an offered frame came from, for its sidecar: the source, the frame's index and time, and (for a
    service whose model was reloaded) the model and labels that scored it."""

    source: str = ""
    index: int | None = None
    timestamp_ms: float | None = None
    model_sha256: str | None = None
    labels: Sequence[str] | None = None
    crop: tuple[int, int, int, int] | None = None
    """For a region of a frame: the part of the frame the saved crop is (left, top, right, bottom)."""


@dataclass(frozen=True)
class _Pending:
    """A hard frame queued for the writer thread."""

    frame: np.ndarray | bytes
    scores: np.ndarray
    top: int
    second: int | None
    reasons: list[str]
    color: str
    facts: dict[str, Any]
    when: dt.datetime
    number: int


@dataclass(frozen=True)
class CaptureStats:
    """What a capture did. ``hard = written + skipped + dropped + failed + queued``."""

    seen: int
    """Frames offered (classified)."""
    hard: int
    """Frames under a threshold."""
    written: int
    skipped: int
    """Hard frames left out on purpose (``every_n``, ``max_per_minute``, larger than ``max_mb``)."""
    dropped: int
    """Hard frames lost because the writer was behind (queue full)."""
    failed: int
    """Writes that failed (disk full, permissions); logged."""
    removed: int
    """Older captures removed to keep the caps."""
    queued: int
    """Waiting for the writer now (0 after close)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class HardExamples:
    """Decides which frames are hard and writes them on its own thread; thread-safe ``offer``.

    Create one per model (``Classifier.stream(..., capture=CaptureOptions(...))`` does) or share one
    between streams; ``close()`` writes what is queued and stops the thread.

    Raises:
        OptionError: ``options`` is not a :class:`CaptureOptions`.
        OSError: the folder cannot be created or read.
    """

    def __init__(self, options: CaptureOptions, *, labels: Sequence[str], model_sha256: str = "",
                 store: CaptureStore | None = None, clock: Callable[[], float] = time.monotonic,
                 thresholds: Sequence[float] | None = None) -> None:
        if not isinstance(options, CaptureOptions):
            raise OptionError(f"capture takes CaptureOptions, got {type(options).__name__}")
        self.options = options
        self._labels = tuple(labels)
        self._thresholds = None if thresholds is None else np.asarray(thresholds, np.float32)
        """A multi-label model's thresholds: then hard means a score near one (``near_threshold``)."""
        self._sha = model_sha256
        self._store = store or FolderStore(options.dir)
        self._clock = clock
        self._max_bytes = int(options.max_mb * 1e6)
        files = sorted(self._store.existing(), key=lambda item: item[0].split("/")[-1])
        self._files: deque[tuple[str, int]] = deque(files)
        self._bytes = sum(size for _, size in files)
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()
        self._counts = {"seen": 0, "hard": 0, "written": 0, "skipped": 0, "dropped": 0, "failed": 0, "removed": 0}
        self._number = 0
        self._id = secrets.token_hex(3)  # names stay apart from other writers' in the same folder
        self._queue: queue.Queue[_Pending | None] = queue.Queue(options.queue_size)
        self._closed = False
        self._thread = threading.Thread(target=self._writer, name="edgecls-capture-writer", daemon=True)
        self._thread.start()

    # -- the classifying thread's side --------------------------------------------------
    def offer(self, frame: np.ndarray | bytes, scores: np.ndarray, origin: Origin | None = None, *,
              color: str = "bgr", copy: bool = True, wait: bool = False, because: Sequence[str] = ()) -> bool:
        """Queue ``frame`` if ``scores`` make it hard and the rules let it through; never waits (unless
        ``wait``: then it waits for room in the queue instead of dropping, for work that is not live).

        ``frame``: a decoded image, or the bytes of an encoded one (a JPEG is kept as it came; other
        formats are re-encoded, on the writer thread). ``origin`` says where it came from (for the sidecar);
        its ``model_sha256`` and ``labels`` override the writer's own for this frame (a service whose model
        was reloaded). ``copy=False`` when the caller never touches an array ``frame`` again. ``because``:
        keep the frame for these reasons instead of the score rules (a drift alarm's sample; the caps and
        rate still apply). Returns whether it was queued.
        """
        scores = np.asarray(scores, np.float32)
        reasons, top, second = self._judge(scores)
        reasons = list(because) or reasons
        with self._lock:
            self._counts["seen"] += 1
            if not reasons or self._closed:
                return False
            self._counts["hard"] += 1
            if (self._counts["hard"] - 1) % self.options.every_n or not self._rate_allows():
                self._counts["skipped"] += 1
                return False
            self._number += 1
            number = self._number
        if copy and isinstance(frame, np.ndarray):
            frame = frame.copy()
        o = origin or Origin()
        facts = {"labels": tuple(o.labels) if o.labels is not None else self._labels,
                 "model_sha256": self._sha if o.model_sha256 is None else o.model_sha256, "source": o.source,
                 "frame": o.index, "timestamp_ms": None if o.timestamp_ms is None else round(float(o.timestamp_ms), 3),
                 **({"crop": list(o.crop)} if o.crop is not None else {})}
        item = _Pending(frame, scores.copy(), top, second, reasons, color, facts, dt.datetime.now(dt.timezone.utc),
                        number)
        try:
            self._queue.put(item, block=wait)
        except queue.Full:
            with self._lock:
                self._counts["dropped"] += 1
            return False
        return True

    def reasons(self, scores: np.ndarray | Sequence[float]) -> list[str]:
        """Why ``scores`` make a frame hard: ``"score"``, ``"margin"``, both, ``"threshold"`` (a multi-label
        model: a label's score near its threshold), or none (not hard)."""
        return self._judge(np.asarray(scores, np.float32))[0]

    def _judge(self, scores: np.ndarray) -> tuple[list[str], int, int | None]:
        top, second = _top_two(scores)
        o = self.options
        if self._thresholds is not None:
            near = bool((np.abs(scores - self._thresholds) < o.near_threshold).any())
            return (["threshold"] if near else []), top, second
        margin = scores[top] - (scores[second] if second is not None else 0.0)
        reasons = [name for name, hard in (("score", o.below_score is not None and scores[top] < o.below_score),
                                           ("margin", o.below_margin is not None and margin < o.below_margin))
                   if hard]
        return reasons, top, second

    def _rate_allows(self) -> bool:
        limit = self.options.max_per_minute
        if limit is None:
            return True
        now = self._clock()
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if len(self._recent) >= limit:
            return False
        self._recent.append(now)
        return True

    # -- the writer thread ------------------------------------------------------------------
    def _writer(self) -> None:
        _lower_priority()
        while (item := self._queue.get()) is not None:
            try:
                self._write(item)
            except Exception as exc:  # a full or read-only disk must not stop the camera
                with self._lock:
                    self._counts["failed"] += 1
                    first = self._counts["failed"] == 1
                if first:
                    _log.warning("capture: cannot write to %s: %s", self.options.dir, exc)
            finally:
                self._queue.task_done()

    def _write(self, item: _Pending) -> None:
        scores, top, second, facts = item.scores, item.top, item.second, dict(item.facts)
        picture, (width, height) = _picture(item.frame, item.color, self.options.jpeg_quality)
        labels = facts.pop("labels")
        label = labels[top] if top < len(labels) else str(top)
        present = {} if self._thresholds is None else {
            "labels": [labels[i] for i in np.flatnonzero(scores >= self._thresholds) if i < len(labels)],
            "near": [labels[i] for i in np.flatnonzero(np.abs(scores - self._thresholds) < self.options.near_threshold)
                     if i < len(labels)]}
        sidecar = json.dumps({
            "label": label, "score": round(float(scores[top]), 6), **present,
            "second": None if second is None else (labels[second] if second < len(labels) else str(second)),
            "margin": round(float(scores[top] - (scores[second] if second is not None else 0.0)), 6),
            "reasons": item.reasons, "scores": {name: round(float(s), 6) for name, s in zip(labels, scores, strict=True)},
            **facts, "time": item.when.isoformat(timespec="microseconds"), "width": width, "height": height,
        }, indent=1).encode()
        size = len(picture) + len(sidecar)
        if size > self._max_bytes:
            with self._lock:
                self._counts["skipped"] += 1
            return
        name = f"{folder_name(label)}/{item.when:%Y%m%d-%H%M%S-%f}-{self._id}-{item.number}"
        while self._files and (len(self._files) + 1 > self.options.max_files or self._bytes + size > self._max_bytes):
            old, old_size = self._files.popleft()
            self._store.remove(old)
            self._bytes -= old_size
            with self._lock:
                self._counts["removed"] += 1
        self._store.save(name, picture, sidecar)
        self._files.append((name, size))
        self._bytes += size
        with self._lock:
            self._counts["written"] += 1

    # -- state ----------------------------------------------------------------------------------
    @property
    def stats(self) -> CaptureStats:
        with self._lock:
            return CaptureStats(**self._counts, queued=self._queue.qsize())

    def flush(self) -> None:
        """Wait until everything queued so far is written (or has failed)."""
        self._queue.join()

    def close(self) -> CaptureStats:
        """Write what is queued, stop the writer thread and return the final counts. Idempotent."""
        with self._lock:
            closing, self._closed = not self._closed, True
        if closing:
            self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join()
        return self.stats

    def __enter__(self) -> HardExamples:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _lower_priority() -> None:
    """Run the calling thread only on CPU time nothing else wants (Linux ``SCHED_IDLE``; where that is not
    allowed, the lowest nice value): encoding and writing captures use the cores classification leaves
    idle, and where the cores are all busy the queue fills and frames are dropped and counted rather than
    slowing the stream. Elsewhere a no-op."""
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
    except (AttributeError, OSError):  # not Linux, or not permitted: the thread keeps the normal priority
        pass


def _top_two(scores: np.ndarray) -> tuple[int, int | None]:
    if scores.size < 2:
        return int(np.argmax(scores)), None
    two = np.argpartition(scores, -2)[-2:]
    first, second = (int(two[1]), int(two[0])) if scores[two[1]] >= scores[two[0]] else (int(two[0]), int(two[1]))
    return first, second


def _picture(frame: np.ndarray | bytes, color: str, quality: int) -> tuple[bytes, tuple[int, int]]:
    """The JPEG to save and its (width, height): a JPEG's own bytes, anything else encoded.

    Raises:
        OSError: the bytes are not a readable image, or encoding failed.
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        data = bytes(frame)
        size = header_size(data) if data.startswith(b"\xff\xd8\xff") else None
        if size is not None:
            return data, size
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError("the image bytes do not decode")
        color = "bgr"
    else:
        image = frame
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGR if color == "rgb" else cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 3 and color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"JPEG encoding failed for a {image.shape} frame")
    return data.tobytes(), (int(image.shape[1]), int(image.shape[0]))
