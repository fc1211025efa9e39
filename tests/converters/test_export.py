"""``edgecls.converters.export`` on the seed CNN trained on real digits."""

import hashlib
import json
import zipfile

import pytest
from mediapipe_env import mediapipe_classify

from edgecls.runtime import Classifier
from edgecls.runtime.card import CARD_FILE_NAME

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

QUANTS = ("fp32", "fp16", "dynamic", "int8")


def test_every_format_and_quantization_exports_and_loads(seed_export, seed_h5):
    report = seed_export
    assert report.ok
    assert sorted((f.format, f.quantization) for f in report.files) == sorted(
        (fmt, q) for fmt in ("tflite", "onnx") for q in QUANTS)
    sha = hashlib.sha256(seed_h5.read_bytes()).hexdigest()
    for f in report.files:
        assert f.path.exists() and f.path.name == f"seed_{f.quantization}.{f.format}"
        with Classifier.from_path(f.path) as clf:
            card = clf.card
            assert clf.has_card and card.labels == tuple(str(i) for i in range(10))
            assert card.input.normalization.baked and card.input.normalization.std == (255.0,)
            prov = card.provenance
            assert (prov.format, prov.quantization, prov.source_file) == (f.format, f.quantization, "seed.h5")
            assert prov.source_sha256 == sha
            assert prov.validation["top1_agreement"] == f.validation.top1_agreement
            assert prov.validation["images"] == 397
    assert report.path == report.out_dir / "seed_report.json"
    on_disk = json.loads(report.path.read_text())
    assert on_disk["ok"] and len(on_disk["files"]) == 8
    # the exporting process's peak (VmHWM) when the report was written: this process, earlier, so no more than
    # its peak now, and with TensorFlow loaded well over 100 MB
    from edgecls.runtime.memory import peak_rss_mb

    assert 100 < on_disk["peak_rss_mb"] <= peak_rss_mb() + 1


def test_int8_accuracy_is_within_one_point_of_float(seed_export):
    by_name = {(f.format, f.quantization): f.validation for f in seed_export.files}
    for fmt in ("tflite", "onnx"):
        fp32, int8 = by_name[(fmt, "fp32")], by_name[(fmt, "int8")]
        assert fp32.accuracy == fp32.keras_accuracy  # float export classifies exactly like Keras
        assert fp32.keras_accuracy >= 0.9
        assert fp32.accuracy - int8.accuracy <= 0.01, fmt
        assert int8.top1_agreement >= 0.98


def test_int8_tflite_has_uint8_input_and_takes_raw_pixels(seed_export):
    path = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "int8"))
    with Classifier.from_path(path) as clf:
        assert clf.card.input.dtype == "uint8"
        assert clf.backend.output.dtype_name == "uint8"


def test_validation_in_card_matches_an_independent_run(seed_export, digits):
    images, labels = digits
    f = next(f for f in seed_export.files if (f.format, f.quantization) == ("onnx", "int8"))
    with Classifier.from_path(f.path) as clf:
        scores = clf.scores_batch(list(images[1400:]), color="rgb")
    assert (scores.argmax(1) == labels[1400:]).mean() == pytest.approx(f.validation.accuracy)


def test_mediapipe_loads_every_tflite_with_its_labels(seed_export, digits, tmp_path):
    import cv2

    images, _ = digits
    image_path = tmp_path / "digit.png"
    cv2.imwrite(str(image_path), images[1500][:, :, ::-1])
    models = [f.path for f in seed_export.files if f.format == "tflite"]
    results = mediapipe_classify(image_path, models)
    for model in models:  # the same file and image in two runtimes: the same answer, whatever the model learned
        with Classifier.from_path(model) as clf:
            ours = clf.classify(image_path, max_results=3).categories
        theirs = results[str(model)]
        assert theirs[0][0] == ours[0].label, model.name
        assert abs(theirs[0][1] - ours[0].score) < 0.02


def test_card_json_also_readable_without_edgecls(seed_export):
    f = next(f for f in seed_export.files if f.format == "tflite")
    with zipfile.ZipFile(f.path) as archive:
        card = json.loads(archive.read(CARD_FILE_NAME))
    assert card["schema_version"] == 1 and card["provenance"]["quantization"] == f.quantization


def _quantization_scales(path) -> list[list[float]]:
    """The scale of every QuantizeLinear, in graph order (tensor names differ between two loads)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return [init[n.input[1]].ravel().tolist() for n in graph.node if n.op_type == "QuantizeLinear"]


def test_onnx_calibration_in_strides_sees_every_image(seed_h5, digits, tmp_path, monkeypatch):
    # ONNX Runtime folds activations into its ranges a few images at a time (bounded memory): the ranges
    # must be those of all images at once, whatever the image count (16 is a multiple of the stride:
    # with CalibMaxIntermediateOutputs, onnxruntime 1.32 dropped every image and failed).
    from edgecls.converters import export
    from edgecls.converters.formats import onnx_format

    images = digits[0][:16]
    strided = export(seed_h5, tmp_path / "strided", formats=["onnx"], quantize=["int8"], calibration=images,
                     min_agreement=0.0).files[0].path
    monkeypatch.setattr(onnx_format, "CALIBRATION_FLUSH", 10**6)
    at_once = export(seed_h5, tmp_path / "at_once", formats=["onnx"], quantize=["int8"], calibration=images,
                     min_agreement=0.0).files[0].path
    scales = _quantization_scales(strided)
    assert len(scales) > 5 and scales == _quantization_scales(at_once)
    assert onnx_format.calibration_stride(16) == 8 and onnx_format.calibration_stride(13) == 1


def test_exported_files_get_the_mode_the_umask_gives(seed_export):
    """mkstemp creates 0600, which survived the rename: another user (a camera service) could not read."""
    import os
    import stat

    from edgecls.converters.atomic import current_umask

    mask = current_umask()
    assert mask == os.umask(mask)  # read without changing it
    for path in [f.path for f in seed_export.files] + [seed_export.path]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


def test_two_models_exported_into_one_folder_keep_a_report_each(seed_h5, tmp_path):
    from edgecls.converters import export

    first = export(seed_h5, tmp_path, name="first", formats=["tflite"], quantize=["fp32"])
    second = export(seed_h5, tmp_path, name="second", formats=["tflite"], quantize=["fp32"])
    assert (first.path.name, second.path.name) == ("first_report.json", "second_report.json")
    assert json.loads(first.path.read_text())["files"][0]["path"].endswith("first_fp32.tflite")
