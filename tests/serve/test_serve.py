"""edgecls serve against the real server, started on 127.0.0.1 by each test (bounded request loops only)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from hostile import jpeg_with_junk_before_its_size  # noqa: E402
from serving import server  # noqa: E402


def _models(seed_export):
    return {(f.format, f.quantization): f.path for f in seed_export.files}


def _png(path: Path) -> bytes:
    return path.read_bytes()


def test_every_endpoint_answers_what_predict_answers(capsys, seed_export, digits_folders):
    from edgecls.cli import main

    models = _models(seed_export)
    tflite, onnx = models[("tflite", "int8")], models[("onnx", "fp32")]
    _, val = digits_folders
    images = sorted(val.rglob("*.png"))
    assert main(["predict", str(tflite), str(val), "--json", "--top-k", "3"]) == 0
    predicted = {json.loads(line)["image"]: json.loads(line) for line in capsys.readouterr().out.splitlines()}
    with server(f"digits={tflite}", f"fp32={onnx}", "--workers", "2") as client:
        assert client.get("/healthz").json() == {"status": "alive"}
        assert client.get("/readyz").json()["models"] == ["digits", "fp32"]
        listed = client.get("/v1/models").json()
        assert listed["default"] == "digits" and [m["name"] for m in listed["models"]] == ["digits", "fp32"]
        import hashlib

        sha = hashlib.sha256(tflite.read_bytes()).hexdigest()
        assert listed["models"][0]["sha256"] == sha and listed["models"][0]["labels"][3] == "3"
        for path in images:  # every held-out digit, three ways
            expected = predicted[str(path)]["categories"]
            raw = client.post("/v1/classify?top_k=3", content=_png(path), headers={"Content-Type": "image/png"}).json()
            assert raw["model"] == "digits" and raw["model_sha256"] == sha
            assert [c["label"] for c in raw["categories"]] == [c["label"] for c in expected]
            np.testing.assert_allclose([c["score"] for c in raw["categories"]], [c["score"] for c in expected], atol=1e-6)
            scene = client.post("/v1/vision/scene", files={"image": (path.name, _png(path), "image/png")}).json()
            assert scene == {"success": True, "label": expected[0]["label"], "confidence": pytest.approx(expected[0]["score"])}
        custom = client.post("/v1/vision/custom/fp32", files={"image": ("x.png", _png(images[0]), "image/png")},
                             data={"api_key": "ignored without --api-key"}).json()
        assert custom["success"] is True and custom["label"] == predicted[str(images[0])]["categories"][0]["label"]
        named = client.post("/v1/classify/fp32", files={"image": ("x.png", _png(images[0]), "image/png")},
                            data={"top_k": "2", "threshold": "0.0"}).json()
        assert named["model"] == "fp32" and len(named["categories"]) == 2
        metrics = client.get("/metrics").text
        assert f'edgecls_requests_total{{endpoint="scene",status="200"}} {len(images)}.0' in metrics
        assert "edgecls_inference_seconds_count" in metrics and 'edgecls_model_info{name="digits"' in metrics


def _pixel_bomb_png() -> bytes:
    data = bytearray(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    data[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")  # IHDR says 60000×60000
    return bytes(data)


def test_bad_requests_are_4xx_with_a_message_and_the_server_goes_on(seed_export, digits_folders, tmp_path):
    model = _models(seed_export)[("tflite", "int8")]
    _, val = digits_folders
    good = _png(next(val.rglob("*.png")))
    jpeg = cv2.imencode(".jpg", cv2.imread(str(next(val.rglob("*.png")))))[1].tobytes()
    key = tmp_path / "key.txt"
    key.write_text("s3cret\n")
    with server(str(model), "--api-key-file", str(key), "--max-body-mb", "0.05") as client:
        auth = {"X-API-Key": "s3cret"}
        cases = [
            ("no image", {"files": {"picture": ("x.png", good, "image/png")}, "headers": auth}, 400, "no image"),
            ("empty", {"content": b"", "headers": {**auth, "Content-Type": "image/png"}}, 400, "empty"),
            ("text", {"content": b"hello", "headers": {**auth, "Content-Type": "text/plain"}}, 415, "unsupported content type"),
            ("not an image", {"content": b"hello", "headers": {**auth, "Content-Type": "image/png"}}, 400, "not a decodable image"),
            ("truncated JPEG", {"content": jpeg[: len(jpeg) // 2], "headers": {**auth, "Content-Type": "image/jpeg"}}, 400, "truncated JPEG"),
            ("pixel bomb", {"content": _pixel_bomb_png(), "headers": {**auth, "Content-Type": "image/png"}}, 400, "over the limit"),
            ("JPEG bomb", {"content": jpeg_with_junk_before_its_size(), "headers": {**auth, "Content-Type": "image/jpeg"}}, 400, "declares a 20000×20000"),
            ("wrong key", {"content": good, "headers": {"X-API-Key": "guess", "Content-Type": "image/png"}}, 401, "API key"),
            ("no key", {"content": good, "headers": {"Content-Type": "image/png"}}, 401, "API key"),
            ("too large", {"content": bytes(60_000), "headers": {**auth, "Content-Type": "image/png"}}, 413, "over the limit"),
            ("bad top_k", {"content": good, "headers": {**auth, "Content-Type": "image/png"}, "params": {"top_k": "x"}}, 400, "top_k"),
        ]
        for name, kwargs, status, message in cases:
            response = client.post("/v1/classify", **kwargs)
            assert response.status_code == status, (name, response.text)
            assert response.json()["success"] is False and message in response.json()["error"], (name, response.text)
        scene = client.post("/v1/vision/custom/nope", files={"image": ("x.png", good, "image/png")}, data={"api_key": "s3cret"})
        assert scene.status_code == 404 and "no model named 'nope'" in scene.json()["error"]
        assert client.get("/v1/models").status_code == 401 and client.get("/metrics").status_code == 401
        assert client.get("/healthz").status_code == 200  # the one endpoint without the key
        wrong = client.get("/v1/classify"), client.get("/nowhere")
        assert [r.status_code for r in wrong] == [405, 404] and all(r.json()["success"] is False for r in wrong)
        ok = client.post("/v1/vision/scene", files={"image": ("x.png", good, "image/png")}, data={"api_key": "s3cret"})
        assert ok.status_code == 200 and ok.json()["success"] is True
        assert "Traceback" not in "".join(client.log.queue)


def test_model_swaps_under_load_lose_no_request(seed_export, digits_folders, tmp_path):
    models = _models(seed_export)
    first, second = models[("tflite", "int8")], models[("tflite", "fp32")]
    served = tmp_path / "served.tflite"
    shutil.copy(first, served)
    import hashlib

    shas = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)}
    _, val = digits_folders
    images = [_png(p) for p in sorted(val.rglob("*.png"))[:50]]
    answers: list[tuple[int, str | None]] = []
    with server(f"digits={served}", "--workers", "2") as client:
        url = str(client.base_url)
        stop = threading.Event()

        def load(offset: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as c:
                for i in range(300):  # bounded: 4 clients × 300 requests
                    r = c.post("/v1/classify", content=images[(i + offset) % len(images)],
                               headers={"Content-Type": "image/png"})
                    answers.append((r.status_code, r.json().get("model_sha256") or r.json().get("error")))

        clients = [threading.Thread(target=load, args=(k,)) for k in range(4)]
        for t in clients:
            t.start()
        reloads = []
        for n in range(6):
            if n == 3:  # a corrupt file once: refused, the loaded model keeps serving
                tmp = tmp_path / "corrupt.tflite"
                tmp.write_bytes(b"TFL3" + bytes(100))
            else:
                tmp = tmp_path / "next.tflite"
                shutil.copy(second if n % 2 == 0 else first, tmp)
            os.replace(tmp, served)
            reloads.append(client.post("/v1/models/digits/reload"))
        for t in clients:
            t.join()
        stop.set()
        metrics = client.get("/metrics").text
    assert len(answers) == 1200
    assert [(code, why) for code, why in answers if code != 200] == []
    assert {sha for _, sha in answers} <= shas
    assert [r.status_code for r in reloads] == [200, 200, 200, 422, 200, 200]
    assert "reload refused" in reloads[3].json()["error"]
    assert 'edgecls_model_reloads_total{model="digits",result="refused"} 1.0' in metrics
    assert 'edgecls_model_reloads_total{model="digits",result="ok"} 5.0' in metrics


def wait_for_line(lines: queue.Queue, text: str) -> str:
    """The server's next stderr line containing ``text`` (fails after 60 s without one)."""
    while True:
        line = lines.get(timeout=60)
        if text in line:
            return line


def test_sighup_and_a_replaced_file_reload_the_model(seed_export, tmp_path, digits_folders):
    import hashlib

    models = _models(seed_export)
    first, second = models[("tflite", "int8")], models[("tflite", "fp32")]
    served = tmp_path / "served.tflite"
    shutil.copy(first, served)
    _, val = digits_folders
    image = _png(next(val.rglob("*.png")))

    def sha_served(client) -> str:
        return client.post("/v1/classify", content=image, headers={"Content-Type": "image/png"}).json()["model_sha256"]

    with server(f"digits={served}", "--watch") as client:
        assert sha_served(client) == hashlib.sha256(first.read_bytes()).hexdigest()
        tmp = tmp_path / "new.tflite"
        shutil.copy(second, tmp)
        os.replace(tmp, served)  # replaced on disk: --watch reloads it
        assert "reloaded digits (file replaced)" in wait_for_line(client.log, "reloaded digits")
        assert sha_served(client) == hashlib.sha256(second.read_bytes()).hexdigest()
        client.proc.send_signal(signal.SIGHUP)
        assert "(SIGHUP)" in wait_for_line(client.log, "reloaded digits")
        (tmp_path / "bad.tflite").write_bytes(b"not a model")
        os.replace(tmp_path / "bad.tflite", served)
        assert "refused" in wait_for_line(client.log, "reload of digits")
        assert sha_served(client) == hashlib.sha256(second.read_bytes()).hexdigest()  # the old one serves on


def test_a_full_queue_answers_503_with_retry_after_at_once(seed_export, digits_folders):
    """In process (httpx's ASGI transport): the one classifier held until the second request is answered."""
    import asyncio

    from edgecls.serve import ModelSet, ServeOptions, create_app

    model = _models(seed_export)[("tflite", "int8")]
    _, val = digits_folders
    image = _png(next(val.rglob("*.png")))
    models = ModelSet([("digits", model)], workers=1, threads=1)
    pool = models.get(None).pool
    entered, release = threading.Event(), threading.Event()
    borrow = pool.borrow

    @contextmanager
    def held():
        entered.set()
        release.wait(60)
        with borrow() as clf:
            yield clf

    pool.borrow = held
    app = create_app(models, ServeOptions(max_queue=0))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edgecls") as client:
            post = lambda: client.post("/v1/classify", content=image, headers={"Content-Type": "image/png"})  # noqa: E731
            first = asyncio.create_task(post())
            await asyncio.to_thread(entered.wait, 60)
            second = await post()
            release.set()
            return await first, second

    try:
        first, second = asyncio.run(scenario())
    finally:
        release.set()
        models.close()
    assert first.status_code == 200 and first.json()["model"] == "digits"
    assert second.status_code == 503 and second.headers["retry-after"] == "1" and "busy" in second.json()["error"]


def test_the_service_runs_without_tensorflow(seed_export, digits_folders, tmp_path):
    """TensorFlow, Keras and Ray blocked in the server's process (sitecustomize): one runtime extra is enough."""
    from builders import blocked_env

    model = _models(seed_export)[("onnx", "int8")]
    _, val = digits_folders
    with server(str(model), env=blocked_env(tmp_path)) as client:
        answer = client.post("/v1/vision/scene", files={"image": ("x.png", _png(next(val.rglob("*.png"))), "image/png")})
        assert answer.status_code == 200 and answer.json()["success"] is True


def test_connections_send_at_once():
    """The listening socket is TCP with TCP_NODELAY, inherited by what it accepts: without it every answer on
    a keep-alive connection waited 40 ms for the client's delayed ACK."""
    import socket

    from edgecls.serve.run import listen

    listener = listen("127.0.0.1", 0)
    with listener, socket.create_connection(listener.getsockname()[:2]):
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.proto == socket.IPPROTO_TCP
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_service_captures_the_images_it_was_unsure_about(capsys, seed_export, digits_folders, digits, tmp_path):
    """--capture: exactly the requests under the threshold, a JPEG kept byte for byte, PNGs re-encoded; the
    queue written out when the server stops; counts in /metrics."""
    from edgecls.cli import main

    model = _models(seed_export)[("tflite", "int8")]
    _, val = digits_folders
    pngs = sorted(val.rglob("*.png"))[:120]
    images, _ = digits
    jpegs = [cv2.imencode(".jpg", cv2.resize(cv2.addWeighted(images[i], 0.5, images[i + 1], 0.5, 0)[:, :, ::-1],
                                             (64, 64)), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
             for i in range(1400, 1440)]
    for i, data in enumerate(jpegs):
        (tmp_path / f"blend{i:02d}.jpg").write_bytes(data)
    assert main(["predict", str(model), *map(str, pngs), *(str(tmp_path / f"blend{i:02d}.jpg") for i in range(40)),
                 "--json", "--top-k", "1"]) == 0
    tops = {Path(line["image"]).name: line["categories"][0]["score"]
            for line in map(json.loads, capsys.readouterr().out.splitlines())}
    hard = {name for name, score in tops.items() if score < 0.9}
    assert any(n.startswith("blend") for n in hard) and any(n.endswith(".png") for n in hard) and len(hard) < len(tops)
    folder = tmp_path / "hard"
    with server(f"digits={model}", "--capture", str(folder), "--capture-below", "0.9", "--workers", "2") as client:
        for path in pngs:
            assert client.post("/v1/vision/scene", files={"image": (path.name, _png(path), "image/png")}).status_code == 200
        for data in jpegs:
            answer = client.post("/v1/classify", content=data, headers={"Content-Type": "image/jpeg"})
            assert answer.status_code == 200
        metrics = client.get("/metrics").text
        assert f'edgecls_captures_total{{model="digits",outcome="hard"}} {len(hard)}.0' in metrics
    assert client.proc.returncode == 143  # SIGTERM, after writing out what was queued
    sidecars = sorted(folder.glob("*/*.json"))
    assert len(sidecars) == len(hard) and len(list(folder.glob("*/*.jpg"))) == len(hard)
    sha = __import__("hashlib").sha256(model.read_bytes()).hexdigest()
    kept_jpegs = 0
    for sidecar in sidecars:
        meta = json.loads(sidecar.read_text())
        assert meta["model_sha256"] == sha and meta["score"] < 0.9 and "from 127.0.0.1" in meta["source"]
        picture = sidecar.with_suffix(".jpg").read_bytes()
        kept_jpegs += picture in jpegs  # a JPEG request is kept as it came
        assert cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (meta["height"], meta["width"])
    assert kept_jpegs == sum(1 for n in hard if n.startswith("blend"))
    assert sorted(round(json.loads(s.read_text())["score"], 5) for s in sidecars) == \
        sorted(round(tops[n], 5) for n in hard)


def test_a_model_that_fails_to_load_closes_the_ones_loaded_before_it(seed_export, tmp_path, monkeypatch):
    from edgecls.runtime import Classifier
    from edgecls.runtime.errors import EdgeclsError
    from edgecls.serve import ModelSet

    model = _models(seed_export)[("tflite", "int8")]
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x1c\x00\x00\x00TFL3 and nothing else")
    opened, closed = [], []
    real_open, real_close = Classifier.from_path, Classifier.close

    def open_(cls, *args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    def close(self):
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(Classifier, "from_path", classmethod(open_))
    monkeypatch.setattr(Classifier, "close", close)
    with pytest.raises(EdgeclsError, match=r"broken\.tflite"):
        ModelSet([("good", model), ("broken", broken)], workers=2, threads=1)
    assert len(opened) == 2 and all(any(c is o for c in closed) for o in opened)


# -- failing safe (issue 28: findings 3, 4 and 5) --------------------------------------------------------


def _tree(root: Path, skip: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if skip not in p.parents and p != skip}


def test_card_names_never_place_captures_outside_the_capture_folder(tmp_path, digits_folders):
    """Two models whose cards are named ``../../escape`` and ``/abs/elsewhere``: their folders are made safe
    names inside --capture DIR; nothing is created, written or cleaned outside it."""
    from hostile import card_text, onnx_model

    def named(path: Path, name: str) -> Path:
        card = json.loads(card_text())
        card["name"] = name
        return onnx_model(path, card=json.dumps(card))

    (tmp_path / "m").mkdir()
    first, second = named(tmp_path / "m" / "a.onnx", "../../escape"), named(tmp_path / "m" / "b.onnx", "/abs/elsewhere")
    folder = tmp_path / "m" / "hard"
    escape = tmp_path / "escape"  # where ../../escape would land from tmp_path/m/hard
    escape.mkdir()
    stale = escape / ".stale.jpg.tmp"  # a leftover the start-up cleanup would have removed there
    stale.write_bytes(b"not ours")
    os.utime(stale, (0, 0))
    before = _tree(tmp_path, folder)
    image = _png(next(digits_folders[1].rglob("*.png")))
    with server(str(first), str(second), "--capture", str(folder), "--capture-below", "1") as client:
        names = [m["name"] for m in client.get("/v1/models").json()["models"]]
        assert names == [".._.._escape", "_abs_elsewhere"]
        for name in names:
            answer = client.post(f"/v1/classify/{name}", content=image, headers={"Content-Type": "image/png"})
            assert answer.status_code == 200, answer.text
    assert _tree(tmp_path, folder) == before and stale.exists()
    assert not Path("/abs").exists()
    for name in names:  # every request captured (four classes: no score near 1), each in its model's folder
        assert len(list((folder / name).glob("*/*.jpg"))) == 1


def _multipart(parts: list[tuple[str, bytes, bool]], boundary: str = "edgeclsboundary") -> bytes:
    body = b""
    for name, data, is_file in parts:
        disposition = f'form-data; name="{name}"' + ('; filename="x.png"' if is_file else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += b"Content-Type: image/png\r\n\r\n" if is_file else b"\r\n"
        body += data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def _request_head(url: str, path: str, length: int, boundary: str = "edgeclsboundary") -> bytes:
    host = url.split("//")[1]
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def _connect(url: str):
    import socket

    host, port = url.split("//")[1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=60)


def _status(sock) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split()[1])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_wrong_form_key_is_refused_before_the_image_is_read(seed_export, tmp_path):
    """A DeepStack client sends api_key before the image: a wrong one is answered 401 while most of the
    image is still unsent."""
    key = tmp_path / "key.txt"
    key.write_text("s3cret")
    body = _multipart([("api_key", b"guess", False), ("image", bytes(19_000_000), True)])
    with server(str(_models(seed_export)[("tflite", "int8")]), "--api-key-file", str(key)) as client, \
            _connect(str(client.base_url)) as sock:
        sock.sendall(_request_head(str(client.base_url), "/v1/vision/scene", len(body)) + body[:200_000])
        assert _status(sock) == 401


def test_unauthenticated_bodies_hold_bounded_memory_and_the_server_answers_on(seed_export, digits_folders, tmp_path):
    """16 clients upload 19 MB each with no key (the image first, as a client that sends no key at all):
    at most 4 bodies are held before their key is known, the rest are answered 503 as their image begins;
    the server's peak RSS rises by at most 150 MB and it answers an authorized request afterwards."""
    key = tmp_path / "key.txt"
    key.write_text("s3cret")
    image = _png(next(digits_folders[1].rglob("*.png")))
    body = _multipart([("image", bytes(19_000_000), True)])
    with server(str(_models(seed_export)[("tflite", "int8")]), "--api-key-file", str(key)) as client:
        url = str(client.base_url)
        warm = client.post("/v1/vision/scene", files={"image": ("x.png", image, "image/png")}, data={"api_key": "s3cret"})
        assert warm.status_code == 200
        before = _peak_rss_mb(client.proc.pid)
        statuses: list[int] = []

        def upload() -> None:
            with _connect(url) as sock:
                try:
                    sock.sendall(_request_head(url, "/v1/vision/scene", len(body)) + body)
                except OSError:  # answered (503) and closed before the whole body was sent
                    pass
                statuses.append(_status(sock))

        clients = [threading.Thread(target=upload) for _ in range(16)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        grown = _peak_rss_mb(client.proc.pid) - before
        after = client.post("/v1/vision/scene", files={"image": ("x.png", image, "image/png")}, data={"api_key": "s3cret"})
        assert after.status_code == 200 and after.json()["success"] is True
    assert len(statuses) == 16 and set(statuses) <= {401, 503} and 401 in statuses and 503 in statuses, statuses
    assert grown <= 150, f"peak RSS grew by {grown:.0f} MB"
    assert "Traceback" not in "".join(client.log.queue)


def test_a_client_that_goes_away_mid_upload_is_one_log_line(seed_export):
    body = _multipart([("image", bytes(2_000_000), True)])
    with server(str(_models(seed_export)[("tflite", "int8")])) as client:
        with _connect(str(client.base_url)) as sock:
            sock.sendall(_request_head(str(client.base_url), "/v1/classify", len(body)) + body[:100_000])
        line = wait_for_line(client.log, "went away")
        assert "POST /v1/classify" in line
        assert client.get("/healthz").status_code == 200  # after the line: the server has moved on
        logged = "".join(client.log.queue)
    assert "Traceback" not in logged and "ClientDisconnect" not in logged


def test_an_engine_failure_is_a_5xx_that_names_no_server_path(tmp_path, digits_folders):
    from hostile import card_text, onnx_model

    model = onnx_model(tmp_path / "failing.onnx", fail_when_bright=True, card=card_text())
    image = cv2.imencode(".png", np.full((16, 16, 3), 250, np.uint8))[1].tobytes()
    dark = _png(next(digits_folders[1].rglob("*.png")))
    with server(str(model)) as client:
        assert client.post("/v1/classify", content=dark, headers={"Content-Type": "image/png"}).status_code == 200
        answer = client.post("/v1/classify", content=image, headers={"Content-Type": "image/png"})
        assert answer.status_code == 500, answer.text
        assert answer.json()["success"] is False and "InferenceError" in answer.json()["error"]
        assert str(tmp_path) not in answer.text and "failing.onnx" not in answer.text
        scene = client.post("/v1/vision/scene", files={"image": ("x.png", image, "image/png")})
        assert scene.status_code == 500 and "failing.onnx" not in scene.text
        logged = wait_for_line(client.log, "failed:")
    assert str(model) in logged and "inference failed" in logged


def test_a_scripted_fake_model_is_served_and_its_failing_call_is_a_5xx(tmp_path):
    """The service on a fake model file (no trained model: ``EDGECLS_PLUGINS=edgecls.runtime.testing``),
    one classifier: the start-up check is engine call 0, so the scripted failure of call 2 is exactly the
    second request, a 500 naming the InferenceError; the requests around it answer by brightness."""
    from edgecls.runtime.testing import write_fake_model

    model = write_fake_model(tmp_path / "bands.fake", ["dark", "bright"], scores="brightness", size=(8, 8),
                             fail_at=[2], name="bands")

    def png(value):
        return cv2.imencode(".png", np.full((24, 24, 3), value, np.uint8))[1].tobytes()

    env = {**os.environ, "EDGECLS_PLUGINS": "edgecls.runtime.testing"}
    with server(str(model), "--workers", "1", env=env) as client:
        answers = [client.post("/v1/classify", content=png(v), headers={"Content-Type": "image/png"})
                   for v in (230, 20, 20, 230)]
        assert [a.status_code for a in answers] == [200, 500, 200, 200], [a.text for a in answers]
        assert [a.json()["categories"][0]["label"] for a in answers if a.status_code == 200] == ["bright", "dark",
                                                                                               "bright"]
        assert "InferenceError" in answers[1].json()["error"] and "bands.fake" not in answers[1].text
        assert client.get("/v1/models").json()["models"][0]["name"] == "bands"


def test_a_deepstack_client_sends_boxes_and_gets_one_answer_per_box_in_order(seed_export, digits, tmp_path):
    """A detector's answer forwarded as it came (DeepStack's detection JSON in the form field ``boxes``):
    ``/v1/vision/custom/NAME`` answers a detection-shaped list, one box each in order, labelled as
    ``classify_regions`` labels them in-process; ``/v1/classify`` answers ``regions``; bad boxes are 400
    naming the box; the capture keeps the crops the model was unsure about, not the frame."""
    from edgecls.realdata import pasted_digits
    from edgecls.runtime import Classifier

    images, labels = digits
    frame, boxes, _ = pasted_digits(images[1400:], labels[1400:], sizes=((1280, 720),), frames=1)[0]
    jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    detector = {"success": True, "predictions": [
        {"label": "digit", "confidence": 0.9, "x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1}
        for x0, y0, x1, y1 in boxes] + [{"label": "digit", "x_min": 5000, "y_min": 0, "x_max": 5100, "y_max": 40}]}
    model = _models(seed_export)[("tflite", "int8")]
    with Classifier.from_path(model) as clf:
        expected = clf.classify_regions(jpeg, detector, crop="square:1.1")
        default = clf.classify_regions(jpeg, boxes)  # the card has no policy: square:1
        name = clf.card.name
    capture = tmp_path / "hard"
    with server(str(model), "--capture", str(capture), "--capture-below", "0.999") as client:
        form = {"boxes": json.dumps(detector), "crop": "square:1.1"}
        answer = client.post(f"/v1/vision/custom/{name}", files={"image": ("f.jpg", jpeg, "image/jpeg")}, data=form)
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert answer.json()["success"] is True and len(predictions) == len(boxes) + 1
        for p, e, box in zip(predictions, expected, [*boxes, (5000, 0, 5100, 40)], strict=True):
            assert (p["x_min"], p["y_min"], p["x_max"], p["y_max"]) == box and p["detector_label"] == "digit"
            assert p["label"] == (e.top.label if e.top else None)
            assert p["confidence"] == pytest.approx(e.top.score if e.top else 0.0, abs=1e-6)
        assert predictions[-1]["skipped"] == "outside the frame" and predictions[-1]["label"] is None
        regions = client.post("/v1/classify", files={"image": ("f.jpg", jpeg, "image/jpeg")},
                              data={"boxes": json.dumps([list(b) for b in boxes])}).json()["regions"]
        assert [r["crop"]["right"] - r["crop"]["left"] for r in regions] == [max(x1 - x0, y1 - y0)
                                                                            for x0, y0, x1, y1 in boxes]
        for bad, message in (("[[1, 2, 3]]", "region 0: a box is four numbers"), ("{not json", "boxes must be JSON"),
                             ("[[10, 10, 5, 20]]", "region 0: a box needs x_max > x_min"),
                             ("[[0, 0, 1%s, 9]]" % ("0" * 400), "region 0: a box is four finite numbers"),
                             (json.dumps([[0, 0, 9, 9]] * 257), "more than 256 boxes"),
                             ("[" * 5_000, "boxes must be JSON")):  # nested too deep for the parser: still a 400
            refused = client.post("/v1/vision/scene", files={"image": ("f.jpg", jpeg, "image/jpeg")},
                                  data={"boxes": bad})
            assert refused.status_code == 400 and message in refused.json()["error"], refused.text
        refused = client.post("/v1/classify", files={"image": ("f.jpg", jpeg, "image/jpeg")},
                              data={"boxes": "[[0, 0, 9, 9]]", "crop": "blob"})
        assert refused.status_code == 400 and "unknown crop mode 'blob'" in refused.json()["error"]
    sidecars = [json.loads(p.read_text()) for p in capture.rglob("*.json")]
    unsure = [e for e in [*expected[:-1], *default] if e.top.score < 0.999]
    assert len(sidecars) == len(unsure) > 0  # the server wrote its queue out on SIGTERM
    assert sorted(tuple(m["crop"]) for m in sidecars) == sorted(
        (e.crop.left, e.crop.top, e.crop.right, e.crop.bottom) for e in unsure)
    for meta in sidecars:
        left, top, right, bottom = meta["crop"]
        assert (meta["width"], meta["height"]) == (right - left, bottom - top) and meta["width"] < 1280
