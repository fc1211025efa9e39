"""The hand-over between a producer thread and the classifier: bounded FIFO or newest-only."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["FrameSlot"]


class FrameSlot:
    """Frames handed from a reader (or the app) to the classifier.

    ``live=False``: a FIFO of at most ``capacity`` items; ``put`` waits for room, so nothing is
    dropped and memory stays bounded. ``live=True``: holds only the newest item; ``put``
    replaces a waiting one and counts it in :attr:`dropped`.
    """

    def __init__(self, live: bool, capacity: int = 8) -> None:
        self._items: deque = deque()
        self._live = live
        self._capacity = 1 if live else capacity
        self._cond = threading.Condition()
        self.done = False
        self.dropped = 0

    def put(self, item: Any, stop: threading.Event) -> None:
        """Hand over ``item``; in FIFO mode waits for room unless ``stop`` is set."""
        with self._cond:
            if self._live:
                self.dropped += len(self._items)
                self._items.clear()
            else:
                while len(self._items) >= self._capacity and not stop.is_set() and not self.done:
                    self._cond.wait(0.05)
            self._items.append(item)
            self._cond.notify_all()

    def finish(self) -> None:
        """No more items: ``take`` returns None once the slot is empty."""
        with self._cond:
            self.done = True
            self._cond.notify_all()

    def take(self) -> Any | None:
        """The next item, waiting for one; None when finished and empty."""
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
