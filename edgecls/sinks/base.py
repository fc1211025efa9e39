"""The sink protocol and its error."""

from __future__ import annotations

from typing import Protocol

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.frames import FrameResult

__all__ = ["Sink", "SinkError"]


class SinkError(EdgeclsError):
    """A result sink cannot be opened or written: output file, display, MQTT broker."""


class Sink(Protocol):
    def send(self, result: FrameResult) -> bool:
        """Deliver one result; False asks the stream to stop (e.g. the window was closed)."""
        ...

    def close(self) -> None:
        """Finish and release; raises SinkError if results could not be delivered."""
        ...
