"""Where stream results go besides stdout: an annotated video, a window, an MQTT broker.

Each sink has ``send(result) -> bool`` (False asks the stream to stop) and ``close()``;
they raise :class:`SinkError`. They need a :class:`~edgecls.runtime.FrameResult` with its
frame for drawing (``keep_frames=True``) and the ``mqtt`` extra for MQTT.
"""

from edgecls.sinks.base import Sink, SinkError

__all__ = ["Sink", "SinkError"]
