"""The OpenVINO backend on this CPU: every file ``edgecls export`` makes (both formats, fp32/fp16/dynamic/int8)
and plain converter output without a card load, read their cards, and answer as ONNX Runtime / LiteRT do;
an absent GPU or NPU falls back to the CPU with a note; the compiled-model cache is written and reused."""

from __future__ import annotations

import builders
import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime.backends.openvino import pick_device


def _scores(path, images, **kwargs) -> tuple[np.ndarray, Classifier]:
    with Classifier.from_path(path, **kwargs) as clf:
        batch = clf.scores_batch(list(images), color="rgb")
        one = np.stack([clf.scores(image, color="rgb") for image in images[:16]])
        np.testing.assert_allclose(one, batch[:16], atol=0.02)  # batch-1 and batch compilations agree
        return batch, clf


@pytest.fixture(scope="module")
def held_out(digits):
    images, labels = digits
    return images[1400:], labels[1400:]


def test_every_exported_file_loads_and_agrees_with_the_default_engine(seed_export, held_out):
    images, labels = held_out
    assert len(seed_export.files) == 8  # tflite and onnx × fp32, fp16, dynamic, int8
    for f in seed_export.files:
        default, ref = _scores(f.path, images)
        scores, clf = _scores(f.path, images, backend="openvino", num_threads=2)
        assert clf.backend.name == "openvino" and clf.backend.device == "cpu" and clf.has_card
        assert clf.card.labels == ref.card.labels and clf.card.input == ref.card.input, f.path.name
        agreement = (scores.argmax(1) == default.argmax(1)).mean()
        accuracy, ref_accuracy = (scores.argmax(1) == labels).mean(), (default.argmax(1) == labels).mean()
        assert agreement >= 0.99 and accuracy >= ref_accuracy - 0.01, (f.path.name, agreement, accuracy)


def test_files_without_a_card_load_as_for_the_other_engines(seed_model, digits, tmp_path, held_out):
    """Plain converter output: the input size, dtype and quantization (uint8 I/O of a full-integer TFLite
    file, read from the flatbuffer: OpenVINO does not report it) come from the file."""
    import keras

    images, _ = held_out
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, seed_model(keras.layers.Rescaling(1.0 / 255.0)(inputs)))
    files = [builders.export_tflite(model, tmp_path / "plain_fp32.tflite"),
             builders.export_tflite(model, tmp_path / "plain_int8.tflite", calib=digits[0][:200]),
             builders.export_onnx(model, tmp_path / "plain_fp32.onnx")]
    for path in files:
        default, ref = _scores(path, images, labels=builders.DIGIT_LABELS)
        scores, clf = _scores(path, images, labels=builders.DIGIT_LABELS, backend="openvino")
        assert not clf.has_card and clf.backend.input.dtype == ref.backend.input.dtype
        assert clf.backend.input.quantization == ref.backend.input.quantization, path.name
        assert clf.backend.output.quantization == ref.backend.output.quantization, path.name
        assert (scores.argmax(1) == default.argmax(1)).mean() >= 0.99, path.name


def test_an_absent_gpu_or_npu_falls_back_to_the_cpu_with_a_note(int8_model):
    import openvino

    available = list(openvino.Core().available_devices)
    for device in ("gpu", "npu", "auto"):
        with Classifier.from_path(int8_model, backend="openvino", device=device) as clf:
            kinds = {d.split(".")[0] for d in available}
            if clf.backend.device == "cpu":  # this machine has neither: the note says what happened
                assert "running on CPU" in " ".join(clf.notes) and not ({"GPU", "NPU"} & kinds and device == "auto")
            else:
                assert clf.backend.device.upper() in kinds and not clf.notes
    assert pick_device("npu", ["CPU", "GPU.0"]) == ("CPU", "device='npu': OpenVINO found no NPU (devices: CPU, "
                                                           "GPU.0); running on CPU")
    assert pick_device("gpu", ["CPU", "GPU.0", "GPU.1"]) == ("GPU.0", None)
    assert pick_device("auto", ["CPU", "NPU"]) == ("NPU", None)
    assert pick_device("auto", ["CPU", "NPU", "GPU"]) == ("GPU", None)
    assert pick_device("cpu", ["CPU", "GPU"]) == ("CPU", None)


def test_the_other_engines_refuse_an_npu_naming_the_one_that_has_it(int8_model):
    from edgecls.runtime.errors import DeviceUnavailableError

    with pytest.raises(DeviceUnavailableError, match="backend openvino runs on Intel GPUs and NPUs"):
        Classifier.from_path(int8_model, device="npu")


def test_the_compiled_model_cache_is_written_then_used(seed_export, held_out, tmp_path, monkeypatch):
    images, _ = held_out
    path = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("onnx", "int8"))
    cache = tmp_path / "cache"
    first, _ = _scores(path, images[:32], backend="openvino", cache_dir=cache)
    blobs = {p.name: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert blobs  # the compiled model, kept
    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(cache))  # the same folder, by the environment
    second, _ = _scores(path, images[:32], backend="openvino")
    assert {p.name: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == blobs  # read, not rewritten
    np.testing.assert_array_equal(first, second)


def test_f32_precision_gives_the_other_engines_scores(seed_export, held_out, monkeypatch):
    """``EDGECLS_OPENVINO_PRECISION=f32``: the float files' scores equal ONNX Runtime's and LiteRT's to 1e-4
    (OpenVINO's default may run float layers in bf16)."""
    images, _ = held_out
    monkeypatch.setenv("EDGECLS_OPENVINO_PRECISION", "f32")
    for f in seed_export.files:
        if f.quantization == "fp32":
            default, _ = _scores(f.path, images)
            scores, _ = _scores(f.path, images, backend="openvino")
            np.testing.assert_allclose(scores, default, atol=1e-4)


def test_the_commands_run_on_openvino_like_the_other_engines(capsys, tmp_path, int8_model, digits_folders):
    """``--backend openvino`` on predict, stream, explain and batch gives the default engine's answers."""
    import json

    from edgecls.cli import main

    pq = pytest.importorskip("pyarrow.parquet")
    _, val = digits_folders
    folder = val / "3"

    def labels(argv: list[str]) -> list[str]:
        assert main([str(a) for a in argv]) == 0
        return [json.loads(line).get("categories", [{}])[0].get("label")
                for line in capsys.readouterr().out.splitlines() if '"categories"' in line]

    for command in (["predict", int8_model, folder, "--json"],
                    ["stream", int8_model, folder, "--json", "--max-frames", "12"]):
        default, ov = labels(command), labels([*command, "--backend", "openvino"])
        assert len(default) >= 12 and np.mean([a == b for a, b in zip(default, ov, strict=True)]) >= 0.99, command
    image = sorted(folder.glob("*.png"))[0]
    answer = labels(["predict", int8_model, image, "--json"])[0]
    assert main(["explain", str(int8_model), str(image), "-o", str(tmp_path / "why"), "--backend", "openvino",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["label"] == answer
    for engine in ("auto", "openvino"):
        assert main(["batch", str(int8_model), str(folder), "-o", str(tmp_path / engine), "--backend", engine,
                     "--workers", "1"]) == 0
    capsys.readouterr()
    rows = {engine: {r["path"]: r["label"] for r in pq.read_table(tmp_path / engine).to_pylist()}
            for engine in ("auto", "openvino")}
    assert rows["auto"].keys() == rows["openvino"].keys()
    assert np.mean([rows["auto"][k] == rows["openvino"][k] for k in rows["auto"]]) >= 0.99
