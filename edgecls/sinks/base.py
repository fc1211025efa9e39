"""The sink protocol, and its error (:class:`~edgecls.runtime.errors.SinkError`, in the one hierarchy)."""

from __future__ import annotations

from typing import Protocol

from edgecls.runtime.errors import SinkError
from edgecls.runtime.frames import FrameResult

__all__ = ["Sink", "SinkError"]


class Sink(Protocol):
    def send(self, result: FrameResult) -> bool:
        """Deliver one result; False asks the stream to stop (e.g. the window was closed)."""
        ...

    def close(self) -> None:
        """Finish and release; raises SinkError if results could not be delivered."""
        ...
