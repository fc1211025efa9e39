"""A private Mosquitto broker on 127.0.0.1 for the MQTT tests, and a subscriber that records messages.

``tests/setup_mosquitto.sh`` installs Mosquitto (Debian's package): ``.ci/run`` runs it, and a test
that finds no broker runs it first (see ``side_envs``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from side_envs import ensure


def _find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def mosquitto_binary() -> str:
    ensure("tests/setup_mosquitto.sh", lambda: _find_mosquitto() is not None, "the mosquitto broker")
    return _find_mosquitto()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """``mosquitto`` listening on 127.0.0.1:``port``; start() waits until it accepts connections."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self._config = folder / f"mosquitto-{self.port}.conf"
        self._config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self._process: subprocess.Popen | None = None

    def start(self) -> Broker:
        self._process = subprocess.Popen([mosquitto_binary(), "-c", str(self._config)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


class Subscriber:
    """Records every payload published to ``topic`` (QoS 1) until stopped."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[str] = []
        self._arrived = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgecls-test-sub-{port}")
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(topic, qos=1)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def _on_message(self, client, userdata, message) -> None:
        with self._arrived:
            self.messages.append(message.payload.decode())
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[str]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
