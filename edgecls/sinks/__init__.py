"""Where stream results go besides stdout: an annotated video, a window, an MQTT broker.

Each sink has ``send(result) -> bool`` (False asks the stream to stop) and ``close()``;
they raise :class:`SinkError`. They need a :class:`~edgecls.runtime.FrameResult` with its
frame for drawing (``keep_frames=True``) and the ``mqtt`` extra for MQTT.

Sinks are registered by name in :data:`SINKS` (``"mqtt"``, ``"video"``, ``"window"``); a factory takes a
:class:`SinkRequest` and imports its sink's packages only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgecls.runtime.registry import Registry
from edgecls.sinks.base import Sink, SinkError

__all__ = ["Sink", "SinkError", "SinkRequest", "SINKS", "register_sink", "open_sink"]


@dataclass(frozen=True)
class SinkRequest:
    """What a sink is opened with: ``target`` is its file, ``HOST[:PORT]/TOPIC`` or window title."""

    target: str
    fps: float = 30.0
    """Frames per second of a written video."""
    overwrite: bool = False
    """Replace a file that exists."""
    reconnect: bool = False
    """Keep results while a broker is away, and reconnect."""


SinkFactory = Callable[[SinkRequest], Sink]
SINKS: Registry[SinkFactory] = Registry("sink", error=SinkError)
"""Every sink factory, by name."""


def register_sink(name: str, factory: SinkFactory, *, replace: bool = False) -> SinkFactory:
    """Add a sink factory under ``name``; returns it.

    Raises:
        OptionError: ``name`` is taken and ``replace`` is false.
    """
    return SINKS.register(name, factory, replace=replace)


def open_sink(name: str, request: SinkRequest) -> Sink:
    """Open the sink called ``name``.

    Raises:
        SinkError: no sink is registered so, or it cannot be opened.
    """
    return SINKS.lookup(name)(request)


def _mqtt(request: SinkRequest) -> Sink:
    from edgecls.sinks.mqtt import MqttSink

    return MqttSink(request.target, reconnect=request.reconnect)


def _video(request: SinkRequest) -> Sink:
    from edgecls.sinks.video import VideoFileSink

    return VideoFileSink(request.target, request.fps, overwrite=request.overwrite)


def _window(request: SinkRequest) -> Sink:
    from edgecls.sinks.window import WindowSink

    return WindowSink(request.target)


register_sink("mqtt", _mqtt)
register_sink("video", _video)
register_sink("window", _window)
