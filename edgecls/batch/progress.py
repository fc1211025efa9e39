"""Progress of a batch run: a bar with rate and ETA on a terminal, a line per tenth of the work otherwise
(a log, or a test waiting for the run to be half done)."""

from __future__ import annotations

import os
import threading
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Counts finished items (thread-safe) and shows them on ``stream`` (None: silent)."""

    def __init__(self, total: int, stream: TextIO | None, *, tty: bool | None = None) -> None:
        self.total, self.done = total, 0
        self._tty = bool(stream is not None and (stream.isatty() if tty is None else tty))
        self._own = None
        try:  # its own descriptor: an engine may point fd 2 elsewhere while it runs (engine_output)
            self._own = os.fdopen(os.dup(stream.fileno()), "w", buffering=1)  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):  # no file descriptor (a StringIO): write to it as is
            pass
        self._stream = self._own or stream
        self._start = time.perf_counter()
        self._tenth = 0
        self._lock = threading.Lock()
        self._shown = 0.0

    def close(self) -> None:
        """Release the descriptor it writes to."""
        if self._own is not None:
            self._own.close()
            self._own = self._stream = None

    def update(self, n: int) -> None:
        with self._lock:
            self.done = min(self.total, self.done + n)
            self._show()

    def set(self, done: int) -> None:
        """The count from a source that reports totals (Ray's ledger)."""
        with self._lock:
            if done > self.done:
                self.done = min(self.total, done)
                self._show()

    def _show(self) -> None:
        if self._stream is None or self.total == 0:
            return
        elapsed = time.perf_counter() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self._tty:
            now = time.perf_counter()
            if now - self._shown < 0.2 and self.done < self.total:
                return
            self._shown = now
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            width = 30
            filled = int(width * self.done / self.total)
            self._stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,} "
                               f"{rate:,.0f}/s ETA {int(eta) // 60}:{int(eta) % 60:02d} ")
            if self.done >= self.total:
                self._stream.write("\n")
            self._stream.flush()
            return
        tenth = 10 * self.done // self.total
        if tenth > self._tenth:
            self._tenth = tenth
            self._stream.write(f"batch: {self.done:,} of {self.total:,} classified ({self.done * 100 // self.total}%), "
                               f"{rate:,.0f}/s\n")
            self._stream.flush()
