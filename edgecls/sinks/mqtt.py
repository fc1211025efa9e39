"""Publishing each result as JSON to an MQTT broker (needs the ``mqtt`` extra: paho-mqtt).

Without ``reconnect`` an unreachable broker, a refused connection or a connection lost
mid-stream is a :class:`SinkError`. With ``reconnect`` the client keeps retrying with
back-off (1 s doubling to 30 s) and results wait in a bounded buffer (oldest dropped and
counted when full); the buffer is sent, in order, with the next result after the
connection comes back, and on ``close()``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from edgecls.runtime.frames import FrameResult
from edgecls.sinks.base import SinkError

__all__ = ["MqttTarget", "MqttSink"]


MAX_TOPIC_BYTES = 65_535
"""MQTT encodes a topic's length in two bytes."""


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    topic: str

    @classmethod
    def parse(cls, text: str) -> MqttTarget:
        """``HOST[:PORT]/TOPIC`` (optionally prefixed ``mqtt://``); the port defaults to 1883.

        Raises:
            SinkError: no host or topic, a bad port, or a topic MQTT forbids (wildcards, NUL, not
                UTF-8, over 65,535 bytes).
        """
        body = text[len("mqtt://"):] if text.startswith("mqtt://") else text
        address, sep, topic = body.partition("/")
        host, _, port_text = address.partition(":")
        if not sep or not host or not topic:
            raise SinkError(f"MQTT target {text!r}: expected HOST[:PORT]/TOPIC, e.g. localhost:1883/edgecls/camera1")
        if "+" in topic or "#" in topic:
            raise SinkError(f"MQTT target {text!r}: a topic to publish to cannot contain the wildcards + or #")
        if "\0" in topic:
            raise SinkError(f"MQTT target {text!r}: a topic cannot contain a NUL character (MQTT forbids it)")
        try:
            encoded = topic.encode("utf-8")
        except UnicodeEncodeError:
            raise SinkError(f"MQTT target {text!r}: the topic is not valid UTF-8") from None
        if len(encoded) > MAX_TOPIC_BYTES:
            raise SinkError(f"MQTT target: the topic is {len(encoded):,} bytes; MQTT allows {MAX_TOPIC_BYTES:,}")
        try:
            port = int(port_text) if port_text else 1883
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise SinkError(f"MQTT target {text!r}: port must be a number from 1 to 65535") from None
        return cls(host, port, topic)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.topic}"


class MqttSink:
    """Publishes ``FrameResult.as_dict()`` as JSON with QoS 1 to ``target``.

    Raises:
        SinkError: paho-mqtt missing, bad target, broker unreachable or refusing (without
            ``reconnect``), connection lost, or results left undelivered at ``close()``.
    """

    def __init__(self, target: str | MqttTarget, *, reconnect: bool = False, buffer: int = 10_000,
                 connect_timeout_s: float = 5.0, close_timeout_s: float = 10.0, client_id: str | None = None) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise SinkError("the MQTT sink needs paho-mqtt: pip install 'edgecls[mqtt]'") from None
        self.target = target if isinstance(target, MqttTarget) else MqttTarget.parse(target)
        self._reconnect = reconnect
        self._close_timeout = close_timeout_s
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._problem: str | None = None
        self._buffer: deque[str] = deque()
        self._buffer_size = buffer
        self._pending: deque[Any] = deque()
        self.published = 0
        self.dropped = 0
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"edgecls-{os.getpid()}")
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, 30)
        # paho's own outgoing queue is unbounded by default: bound it, so a slow broker leaves results in
        # our buffer (bounded, oldest dropped and counted) and _pending never holds more than this.
        client.max_queued_messages_set(buffer)
        client.connect_timeout = connect_timeout_s
        self._client = client
        host, port = self.target.host, self.target.port
        if reconnect:
            client.connect_async(host, port, keepalive=30)
            client.loop_start()
            return
        try:
            client.connect(host, port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise SinkError(f"MQTT broker {host}:{port} unreachable: {exc} "
                            "(start the broker, or pass reconnect=True to buffer results until it is up)",
                            options=("reconnect",)) from None
        client.loop_start()
        if not self._connected.wait(connect_timeout_s) or self._problem:
            client.loop_stop()
            raise SinkError(f"MQTT broker {host}:{port} did not accept the connection: "
                            f"{self._problem or f'no answer within {connect_timeout_s:g} s'}")

    # paho callbacks (its network thread)
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._problem = str(reason)
            if not self._reconnect:
                self._connected.set()  # wake the constructor, which reports the problem
            return
        self._problem = None
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if reason.is_failure:
            self._problem = f"connection lost ({reason})"

    @property
    def buffered(self) -> int:
        """Results waiting for the connection (only with ``reconnect``)."""
        return len(self._buffer)

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self._problem is None

    def send(self, result: FrameResult) -> bool:
        self.send_payload(json.dumps(result.as_dict()))
        return True

    def send_payload(self, payload: str) -> None:
        """Publish (or, while disconnected with ``reconnect``, buffer) one JSON payload."""
        with self._lock:
            if not self._reconnect and not self.connected:
                raise SinkError(f"MQTT broker {self.target.host}:{self.target.port}: "
                                f"{self._problem or 'not connected'} (pass reconnect=True to ride out outages)",
                                options=("reconnect",))
            self._buffer.append(payload)
            if len(self._buffer) > self._buffer_size:
                self._buffer.popleft()
                self.dropped += 1
            if self.connected:
                self._flush()

    def _flush(self) -> None:
        while self._buffer:
            info = self._client.publish(self.target.topic, self._buffer[0], qos=1)
            if info.rc != 0:  # the connection dropped under us: keep it buffered
                return
            self._buffer.popleft()
            self._pending.append(info)
            self.published += 1
        if self._pending and self._pending[0].is_published():  # acknowledgements may come out of order
            self._pending = deque(info for info in self._pending if not info.is_published())

    def close(self) -> None:
        """Send what is buffered, wait for the broker to acknowledge every message, disconnect.

        Raises:
            SinkError: results still unacknowledged or buffered after ``close_timeout_s``.
        """
        deadline = time.monotonic() + self._close_timeout
        with self._lock:
            while self._buffer and time.monotonic() < deadline:
                if self.connected:
                    self._flush()
                if self._buffer:  # not connected (yet), or the connection dropped during the flush
                    time.sleep(0.05)
            for info in self._pending:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            lost = len(self._buffer) + sum(not info.is_published() for info in self._pending)
            self._pending.clear()
        self._client.disconnect()
        self._client.loop_stop()
        if lost or self.dropped:
            raise SinkError(f"MQTT broker {self.target}: {lost} results not delivered"
                            + (f", {self.dropped} dropped from a full buffer" if self.dropped else ""))
