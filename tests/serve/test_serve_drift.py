"""``edgecls serve --drift``: each model's drift on /metrics, read by Prometheus' own text parser."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
parser = pytest.importorskip("prometheus_client.parser")

from serving import server  # noqa: E402


def _drift(client) -> dict[tuple[str, str], float]:
    """{(metric, signal): value} of the digits model's drift gauges."""
    found = {}
    for family in parser.text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("edgecls_drift_") and sample.labels.get("model") == "digits":
                found[(sample.name, sample.labels["signal"])] = sample.value
    return found


def test_the_drift_gauges_follow_the_frames_a_service_classifies(int8_model, digits):
    images, _ = digits
    held_out = images[1400:][np.random.default_rng(0).integers(0, len(images) - 1400, 200)]
    png = [cv2.imencode(".png", x[:, :, ::-1])[1].tobytes() for x in held_out]
    dark = [cv2.imencode(".png", (x[:, :, ::-1] * 0.3).astype(np.uint8))[1].tobytes() for x in held_out]
    with server(f"digits={int8_model}", "--workers", "2", "--drift-window", "200", "--drift-every", "1") as client:
        assert _drift(client) == {}  # no window yet: no gauge
        for body in png:
            assert client.post("/v1/classify", content=body, headers={"Content-Type": "image/png"}).status_code == 200
        clean = _drift(client)
        for body in dark:
            client.post("/v1/classify", content=body, headers={"Content-Type": "image/png"})
        darkened = _drift(client)
    assert clean[("edgecls_drift_state", "brightness")] == 0 and clean[("edgecls_drift_psi", "brightness")] < 0.1
    assert max(v for (name, _), v in clean.items() if name == "edgecls_drift_state") < 2
    assert darkened[("edgecls_drift_state", "brightness")] == 2 and darkened[("edgecls_drift_psi", "brightness")] > 0.25
    assert {signal for _, signal in darkened} >= {"brightness", "contrast", "sharpness", "score", "classes"}
