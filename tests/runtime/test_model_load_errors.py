"""Every documented model-loading error, with its message naming the file and cause."""

import builders
import numpy as np
import pytest
from hostile import external_data_model

from edgecls.converters.metadata import embed_card_file
from edgecls.runtime import Classifier
from edgecls.runtime.errors import (
    BackendUnavailableError,
    CardError,
    DeviceUnavailableError,
    EdgeclsError,
    ModelLoadError,
    UnsupportedFormatError,
)


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda d: d / "missing.tflite", ModelLoadError, "no such model file"),
        (lambda d: (d / "dir.onnx").mkdir() or d / "dir.onnx", ModelLoadError, "is a folder"),
        (lambda d: _file(d / "empty.tflite", b""), ModelLoadError, r"model file is empty \(0 bytes\)"),
        (lambda d: _file(d / "empty.onnx", b""), ModelLoadError, "model file is empty"),
        (lambda d: _file(d / "junk.tflite", np.random.default_rng(0).bytes(4096)), ModelLoadError, "not a TFLite model"),
        (lambda d: _file(d / "junk.onnx", np.random.default_rng(0).bytes(4096)), ModelLoadError, "cannot load ONNX model"),
        (lambda d: _file(d / "model.pb", b"x"), UnsupportedFormatError, r"unsupported model format \.pb"),
    ],
)
def test_bad_model_files(tmp_path, make, error, message):
    path = make(tmp_path)
    with pytest.raises(error, match=message) as info:
        Classifier.from_path(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, EdgeclsError)


def test_backend_that_does_not_read_the_suffix(color_model):
    with pytest.raises(UnsupportedFormatError, match=r"backend 'tflite' reads \.tflite files, not \.onnx"):
        Classifier.from_path(color_model, backend="tflite")


def test_card_contradicting_the_model(tmp_path):
    path = builders.color_onnx(tmp_path / "m.onnx")
    embed_card_file(path, builders.card_for(["a", "b", "c"], size=8))
    with pytest.raises(CardError, match="model card has 3 labels but the model outputs 4 scores"):
        Classifier.from_path(path)
    embed_card_file(path, builders.card_for(builders.COLOR_LABELS, size=16))
    with pytest.raises(CardError, match=r"says input 16x16x3 but the model's input tensor is"):
        Classifier.from_path(path)


def test_non_image_input(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path = _file(tmp_path / "flat.onnx", model.SerializeToString())
    with pytest.raises(ModelLoadError, match="an image input has rank 4"):
        Classifier.from_path(path)


def test_malformed_card_is_ignored_with_a_note(tmp_path):
    import onnx

    path = builders.color_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.metadata_props.append(onnx.StringStringEntryProto(key="edgecls.card", value="{broken"))
    path.write_bytes(model.SerializeToString())
    with Classifier.from_path(path) as clf:
        assert not clf.has_card
        assert any("ignoring its malformed model card" in note for note in clf.notes)
        assert clf.classify(np.zeros((8, 8, 3), np.uint8)).top is not None


def test_gpu_requests(color_model, seed_exports):
    """device='gpu' runs on a GPU or fails clearly; device='auto' falls back and says so."""
    _, paths, _ = seed_exports
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for path in (color_model, paths["tflite_fp32"]):
        with Classifier.from_path(path) as cpu:
            expected = cpu.scores(image)
        try:
            gpu = Classifier.from_path(path, device="gpu")
        except DeviceUnavailableError as exc:
            assert isinstance(exc, BackendUnavailableError) and "GPU" in str(exc) and str(path) in str(exc)
            with Classifier.from_path(path, device="auto") as clf:
                assert clf.backend.device == "cpu"
                assert any("running on CPU" in note for note in clf.notes)
        else:
            with gpu:
                assert gpu.backend.device == "gpu"
                assert np.abs(gpu.scores(image) - expected).max() < 1e-2


@pytest.mark.parametrize("name", ["tflite_int8", "tflite_fp32", "onnx_fp32"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
def test_truncated_model_files(tmp_path, seed_exports, name, fraction):
    _, paths, _ = seed_exports
    data = paths[name].read_bytes()
    path = _file(tmp_path / paths[name].name, data[: int(len(data) * fraction)])
    with pytest.raises(ModelLoadError, match="cannot load") as info:
        Classifier.from_path(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    from edgecls.runtime.backends.onnx_external import check_external_data

    (tmp_path / "secret.bin").write_bytes(np.full(6, 7, np.float32).tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    path = external_data_model(folder, location)
    with pytest.raises(ModelLoadError, match="points outside the model's folder") as info:
        check_external_data(path)
    assert location in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ModelLoadError, match="points outside the model's folder"):
        Classifier.from_path(path)


def test_external_data_next_to_the_model_is_read(tmp_path):
    from edgecls.runtime.backends.onnx_external import check_external_data, external_locations

    (tmp_path / "weights.bin").write_bytes(np.full(6, 7, np.float32).tobytes())
    path = external_data_model(tmp_path, "weights.bin")
    assert external_locations(path.read_bytes()) == ["weights.bin"]
    check_external_data(path)  # no error: the weights sit next to the model
    import onnxruntime as ort

    out = ort.InferenceSession(str(path)).run(None, {"x": np.ones((1, 3), np.float32)})[0]
    assert out.tolist() == [[21.0, 21.0]]
