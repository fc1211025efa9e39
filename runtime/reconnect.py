"""Reopening a live source (camera, URL, pipeline) that breaks, with exponential back-off."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecls.runtime.errors import OptionError, SourceError
from edgecls.runtime.sources import FrameSource, open_source

__all__ = ["Reconnect", "ReconnectingSource"]


@dataclass(frozen=True)
class Reconnect:
    """How a stream reopens a live source that ended or failed.

    Delays double from ``initial_delay_s`` up to ``max_delay_s``; after ``attempts``
    consecutive failed reopenings (None: never give up) the stream ends with the last error.
    A frame read successfully resets the count.
    """

    attempts: int | None = None
    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts is not None and (isinstance(self.attempts, bool) or self.attempts <= 0):
            raise OptionError(f"Reconnect.attempts must be a positive integer or None, got {self.attempts!r}")
        if not 0 < self.initial_delay_s <= self.max_delay_s:
            raise OptionError("Reconnect delays must satisfy 0 < initial_delay_s <= max_delay_s, got "
                              f"{self.initial_delay_s!r} and {self.max_delay_s!r}")

    def delay(self, failures: int) -> float | None:
        """Seconds to wait before attempt ``failures + 1``, or None when the attempts are used up."""
        if self.attempts is not None and failures >= self.attempts:
            return None
        return min(self.initial_delay_s * 2.0 ** min(failures, 32), self.max_delay_s)


class ReconnectingSource:
    """A :class:`FrameSource` that reopens ``source`` when it ends or raises.

    ``read`` returns None only when ``stop`` is set or the attempts are used up; in the
    latter case :attr:`last_error` says why.
    """

    def __init__(self, source: Any, policy: Reconnect, stop: threading.Event, *, open_timeout_s: float) -> None:
        self._spec, self._policy, self._stop, self._timeout = source, policy, stop, open_timeout_s
        self._clock = time.monotonic()
        self._current: FrameSource | None = open_source(source, open_timeout_s=open_timeout_s,
                                                        clock_start=self._clock)
        self.description = self._current.description
        self.fps = self._current.fps
        self.reconnects = 0
        self.last_error: str | None = None
        self._failures = 0  # consecutive reopenings without a frame read

    def read(self) -> tuple[np.ndarray, float] | None:
        while not self._stop.is_set():
            if self._current is not None:
                try:
                    item = self._current.read()
                except Exception as exc:  # a broken source is reopened like an ended one
                    item, self.last_error = None, f"{exc.__class__.__name__}: {exc}"
                if item is not None:
                    self._failures = 0
                    return item
                self._current.close()
                self._current = None
                self.last_error = self.last_error or f"{self.description}: source ended"
            if not self._reopen():
                return None
        return None

    def _reopen(self) -> bool:
        while (delay := self._policy.delay(self._failures)) is not None:
            self._failures += 1
            if self._stop.wait(delay):
                return False
            try:
                self._current = open_source(self._spec, open_timeout_s=self._timeout, clock_start=self._clock)
            except SourceError as exc:
                self.last_error = str(exc)
                continue
            self.reconnects += 1
            self.last_error = None
            return True
        return False

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
