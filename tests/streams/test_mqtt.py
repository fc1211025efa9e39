"""``--mqtt``: results published to a real Mosquitto broker started on 127.0.0.1 by the test."""

import json
import time

import pytest

from edgecls.cli import main
from edgecls.sinks import SinkError

pytest.importorskip("paho.mqtt.client", reason="the mqtt extra (paho-mqtt) is part of .[all]")

from mqtt_broker import Broker, Subscriber, free_port

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture()
def broker(tmp_path):
    broker = Broker(tmp_path).start()
    yield broker
    broker.stop()


def test_subscriber_receives_every_result(capsys, broker, int8_model, digit_video):
    path, expected = digit_video
    subscriber = Subscriber(broker.port, "edgecls/test/#")
    try:
        code = main(["stream", str(int8_model), str(path), "--json", "--mqtt",
                     f"127.0.0.1:{broker.port}/edgecls/test/camera1"])
        printed = capsys.readouterr().out.strip().splitlines()
        received = subscriber.wait_for(40)
    finally:
        subscriber.stop()
    assert code == 0
    frames = [json.loads(line) for line in printed[:-1]]
    assert [json.loads(m) for m in received] == frames  # every result, in order, as printed
    assert [m["frame"] for m in frames] == list(range(40))
    assert sum(m["categories"][0]["label"] == label for m, label in zip(frames, expected, strict=True)) >= 36


def test_unreachable_broker_is_a_clear_error(capsys, int8_model, digit_video):
    path, _ = digit_video
    port = free_port()  # nothing listens there
    code = main(["stream", str(int8_model), str(path), "--mqtt", f"127.0.0.1:{port}/edgecls/x"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: MQTT broker 127.0.0.1:{port} unreachable" in err and "--reconnect" in err


@pytest.mark.parametrize("target, message", [
    ("localhost", "expected HOST\\[:PORT\\]/TOPIC"),
    ("localhost:99999/t", "port must be a number"),
    ("localhost:abc/t", "port must be a number"),
    ("localhost/cams/#", "cannot contain the wildcards"),
    ("/topic", "expected HOST"),
])
def test_bad_targets(target, message):
    from edgecls.sinks.mqtt import MqttTarget

    with pytest.raises(SinkError, match=message):
        MqttTarget.parse(target)


def test_parsed_target():
    from edgecls.sinks.mqtt import MqttTarget

    assert MqttTarget.parse("mqtt://broker.lan/a/b") == MqttTarget("broker.lan", 1883, "a/b")
    assert str(MqttTarget.parse("10.0.0.2:1884/cam")) == "10.0.0.2:1884/cam"


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_reconnect_buffers_until_the_broker_comes_up(tmp_path):
    from edgecls.sinks.mqtt import MqttSink

    broker = Broker(tmp_path)  # not started yet: the broker is down when the stream begins
    sink = MqttSink(f"127.0.0.1:{broker.port}/edgecls/buffered", reconnect=True)
    payloads = [json.dumps({"frame": i}) for i in range(10)]
    try:
        for p in payloads[:5]:
            sink.send_payload(p)
        assert sink.buffered == 5 and sink.published == 0
        broker.start()
        subscriber = Subscriber(broker.port, "edgecls/buffered")
        _wait(lambda: sink.connected)  # paho retries with back-off (1 s, doubling)
        for p in payloads[5:]:
            sink.send_payload(p)  # sends the buffered five first, then this one
        sink.close()
        received = subscriber.wait_for(10)
        subscriber.stop()
    finally:
        broker.stop()
    assert received == payloads and sink.buffered == 0 and sink.published == 10


def test_lost_broker_without_reconnect_is_an_error(tmp_path):
    from edgecls.sinks.mqtt import MqttSink

    broker = Broker(tmp_path).start()
    sink = MqttSink(f"127.0.0.1:{broker.port}/edgecls/lost")
    sink.send_payload("{}")
    broker.stop()
    _wait(lambda: not sink.connected)
    with pytest.raises(SinkError, match="connection lost"):
        sink.send_payload("{}")
    sink.close()  # nothing undelivered: the first result was acknowledged


def test_a_drift_event_reaches_the_broker_when_the_scene_darkens(capsys, broker, int8_model, digits, tmp_path):
    """An image folder as the camera: 200 held-out digits, then 200 darkened; with --drift-window 200 the
    second window alerts, and its ``drift`` event (what changed, why) is published beside the results."""
    import cv2
    import numpy as np

    images, _ = digits
    chosen = images[1400:][np.random.default_rng(0).integers(0, len(images) - 1400, 400)]
    folder = tmp_path / "camera"
    folder.mkdir()
    for i, image in enumerate(chosen):
        cv2.imwrite(str(folder / f"{i:04d}.png"), (image[:, :, ::-1] * (1.0 if i < 200 else 0.3)).astype(np.uint8))
    subscriber = Subscriber(broker.port, "edgecls/drift/#")
    try:
        code = main(["stream", str(int8_model), str(folder), "--json", "--drift-window", "200", "--drift-every", "1", "--mqtt",
                     f"127.0.0.1:{broker.port}/edgecls/drift/camera1"])
        printed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[:-1]]
        events = [m for m in printed if m.get("event") == "drift"]
        received = [json.loads(m) for m in subscriber.wait_for(400 + len(events))]
    finally:
        subscriber.stop()
    assert code == 0
    assert [m for m in received if m.get("event") == "drift"] == events and len(received) == 400 + len(events)
    alerts = [e for e in events if e["state"] == "alert"]
    assert alerts and alerts[0]["window"] == 1 and "brightness" in alerts[0]["changed"]
    assert alerts[0]["signals"]["brightness"]["reason"].startswith("brightness fell")
