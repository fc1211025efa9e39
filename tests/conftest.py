"""Shared fixtures: real digits, the trained seed CNN and its exports, a TF-free ONNX model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import builders
import side_envs


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say at the end which side environments the run used (a test that needs one sets it up), and the
    seed its trainings used."""
    terminalreporter.write_sep("-", "edgecls test environment")
    terminalreporter.write_line(f"training seed: {builders.SEED} (EDGECLS_TEST_SEED); engine threads: "
                                f"{os.environ.get('EDGECLS_NUM_THREADS') or 'every core'} (EDGECLS_NUM_THREADS)")
    if not side_envs.USED:
        terminalreporter.write_line("side environments: none used")
    for what, how in sorted(side_envs.USED.items()):
        terminalreporter.write_line(f"side environment: {what} ({how})")


@pytest.fixture(scope="session")
def digits():
    """(images uint8 RGB N×32×32×3, labels) of scikit-learn's handwritten digits."""
    return builders.digits_rgb()


@pytest.fixture(scope="session")
def color_model(tmp_path_factory) -> Path:
    """A 4-class colour classifier in ONNX with an embedded card (no TensorFlow)."""
    from edgecls.converters.metadata import embed_card_file

    path = builders.color_onnx(tmp_path_factory.mktemp("color") / "color.onnx")
    embed_card_file(path, builders.card_for(builders.COLOR_LABELS, size=8))
    return path


@pytest.fixture(scope="session")
def seed_model(digits):
    """The seed CNN trained once per test run on the digits (x/255 inputs, as the seed writes it)."""
    pytest.importorskip("tensorflow")
    images, labels = digits
    return builders.train_seed_cnn(images[:1400], labels[:1400], epochs=8)


@pytest.fixture(scope="session")
def seed_exports(tmp_path_factory, digits, seed_model):
    """The seed CNN trained on digits, and its fp32/int8 TFLite and fp32 ONNX exports with cards.

    Returns (keras_model, {"tflite_fp32": path, "tflite_int8": path, "onnx_fp32": path}, (x_val, y_val)).
    """
    pytest.importorskip("tensorflow")
    import keras

    from edgecls.converters.metadata import embed_card_file
    from edgecls.runtime.backends import open_backend

    images, labels = digits
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, seed_model(keras.layers.Rescaling(1.0 / 255.0)(inputs)))  # raw pixels in
    out = tmp_path_factory.mktemp("seed")
    paths = {
        "tflite_fp32": builders.export_tflite(model, out / "seed_fp32.tflite"),
        "tflite_int8": builders.export_tflite(model, out / "seed_int8.tflite", calib=images[:200]),
        "onnx_fp32": builders.export_onnx(model, out / "seed_fp32.onnx"),
    }
    for name, path in paths.items():
        backend = open_backend(path)
        card = builders.card_for(builders.DIGIT_LABELS, dtype=backend.input.dtype_name,
                                 quant=backend.input.quantization, fmt=path.suffix[1:],
                                 scheme=name.split("_")[1])
        backend.close()
        embed_card_file(path, card)
    return model, paths, (images[1400:], labels[1400:])


@pytest.fixture(scope="session")
def digits_folders(tmp_path_factory, digits):
    """train/ and val/ image folders (one sub-folder per digit) of the real digits."""
    images, labels = digits
    root = tmp_path_factory.mktemp("digits")
    builders.write_image_folder(root / "train", images[:1400], labels[:1400])
    builders.write_image_folder(root / "val", images[1400:], labels[1400:])
    return root / "train", root / "val"


@pytest.fixture(scope="session")
def seed_h5(tmp_path_factory, seed_model):
    """The trained seed CNN (x/255 inputs), saved as .h5."""
    path = tmp_path_factory.mktemp("seed_h5") / "seed.h5"
    seed_model.save(path)
    return path


@pytest.fixture(scope="session")
def seed_export(tmp_path_factory, seed_h5, digits_folders):
    """``export()`` of the seed CNN to every format × quantization, calibrated and validated on digits."""
    from edgecls.converters import export

    train, val = digits_folders
    out = tmp_path_factory.mktemp("seed_export")
    report = export(seed_h5, out, quantize=["fp32", "fp16", "dynamic", "int8"], calibration=train, validation=val)
    return report


@pytest.fixture(scope="session")
def int8_model(seed_export):
    return next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "int8"))


@pytest.fixture(scope="session")
def digit_video(tmp_path_factory, digits):
    """An MJPG video of 40 held-out digits (64×64 frames) and their labels."""
    images, labels = digits
    path = tmp_path_factory.mktemp("video") / "digits.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    for image in images[1400:1440]:
        writer.write(cv2.resize(image[:, :, ::-1], (64, 64), interpolation=cv2.INTER_NEAREST))
    writer.release()
    return path, [str(label) for label in labels[1400:1440]]
