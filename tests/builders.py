"""Builders of the fixture models and data the tests use (real digits, tiny models).

The runtime's parity fixtures export Keras models with the plain TFLiteConverter
and tf2onnx, independently of edgecls' converters, so a converter bug cannot hide
a runtime bug; the colour model is built with ``onnx.helper`` so runtime tests
need no TensorFlow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edgecls.realdata import (  # noqa: F401 - one home for real data
    ATTRIBUTES,
    HEAD_SHAPES,
    attribute_matrix,
    binary_labels,
    digits_rgb,
    head_model,
    seed_cnn,
    warm_batchnorm,
    write_digits,
)
from edgecls.runtime.card import InputSpec, ModelCard, Normalization, OutputSpec, Provenance

DIGIT_LABELS = tuple(str(i) for i in range(10))

SEED = int(os.environ.get("EDGECLS_TEST_SEED", "0"))
"""Every training in the suite is seeded from this (``EDGECLS_TEST_SEED``, 0 by default): the suite must
pass whatever it is, as it must on any machine, where the same seed trains another model."""


def seeded(offset: int = 0) -> int:
    """Seed Python, numpy and TensorFlow with ``SEED + offset`` and make TensorFlow's ops deterministic, for
    one training in a test; returns the seed."""
    import keras
    import tensorflow as tf

    seed = SEED + offset
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return seed


COLOR_LABELS = ("red", "green", "blue", "gray")


def train_seed_cnn(images: np.ndarray, labels: np.ndarray, epochs: int = 8):
    """The seed CNN trained on x/255 inputs (as the seed writes it)."""
    seeded()
    model = seed_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images.astype("float32") / 255.0, labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def card_for(labels, *, size=32, dtype="float32", quant=None, fmt="", scheme="fp32") -> ModelCard:
    return ModelCard(
        labels=tuple(labels),
        input=InputSpec(height=size, width=size, dtype=dtype, quantization=quant,
                        normalization=Normalization(baked=True, mean=(0.0,), std=(255.0,))),
        output=OutputSpec(num_classes=len(labels)),
        name="seed_cnn",
        provenance=Provenance(edgecls_version="test", format=fmt, quantization=scheme),
    )


def export_tflite(model, path: Path, calib: np.ndarray | None = None) -> Path:
    """Plain TFLiteConverter export; full-integer uint8 I/O when ``calib`` is given."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calib is not None:
        def representative():
            for image in calib:
                yield [image[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    path.write_bytes(converter.convert())
    return path


def export_onnx(model, path: Path) -> Path:
    """tf2onnx ``from_function`` export (``from_keras`` fails with Keras 3)."""
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="image"),)
    function = tf.function(lambda x: model(x, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=17)
    path.write_bytes(proto.SerializeToString())
    return path


def color_onnx(path: Path, *, layout: str = "NHWC", dtype: str = "float32", batch: int | None = None) -> Path:
    """A 4-class colour classifier (mean colour → linear → softmax) taking raw 0-255 RGB."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1, -1, -1, 0], [-1, 1, -1, 0], [-1, -1, 1, 0]], np.float32) * 0.05
    axes = [1, 2] if layout == "NHWC" else [2, 3]
    shape = [batch or "N", 8, 8, 3] if layout == "NHWC" else [batch or "N", 3, 8, 8]
    elem = TensorProto.FLOAT if dtype == "float32" else TensorProto.UINT8
    nodes = [] if dtype == "float32" else [helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT)]
    src = "image" if dtype == "float32" else "x"
    nodes += [
        helper.make_node("ReduceMean", [src, "axes"], ["mean"], keepdims=0),
        helper.make_node("MatMul", ["mean", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "color",
        [helper.make_tensor_value_info("image", elem, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch or "N", 4])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array(axes, np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def write_image_folder(root: Path, images: np.ndarray, labels: np.ndarray, names: tuple[str, ...] | None = None) -> Path:
    """Write RGB images as PNG files into ``root/<digit>/`` folders (or ``root/<names[label]>/``)."""
    return write_digits(root, images, labels, *([names] if names else []))


def concurrent_mismatches(clf, images, *, color: str = "bgr", threads: int = 8, calls: int = 40) -> list[int]:
    """Indices whose scores differed from sequential ones when ``threads`` threads share ``clf``."""
    import threading

    expected = [clf.scores(image, color=color) for image in images]
    mismatches: list[int] = []

    def worker(offset: int) -> None:
        for i in range(calls):
            k = (i + offset) % len(images)
            if not np.array_equal(clf.scores(images[k], color=color), expected[k]):
                mismatches.append(k)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return mismatches


def predict_scores(json_lines: str) -> dict[str, dict[str, float]]:
    """``edgecls predict --json`` output as {image: {label: score}}."""
    results = [json.loads(line) for line in json_lines.strip().splitlines()]
    return {r["image"]: {c["label"]: c["score"] for c in r["categories"]} for r in results}


def small_cnn_body(keras, x):
    """Conv 16 → pool → Conv 32 → pool → Dense 10 softmax on tensor ``x`` (the tests' preprocessing models)."""
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(10, activation="softmax")(x)


def preprocessing_model(kind: str, size: int, images: np.ndarray, labels: np.ndarray, epochs: int = 6):
    """A digits classifier whose normalization is written as Keras users write it, trained on ``images``.

    ``kind``:
        ``tutorial``: Keras' image-classification tutorial: augmentation block (RandomFlip,
            RandomRotation, RandomZoom), ``Rescaling(1/255)``, then the CNN; trained on raw pixels.
        ``nested``: a functional model whose first layer is a nested Sequential block of
            RandomContrast, Dropout-free augmentation and ``Rescaling(1/127.5, -1)``; raw pixels.
        ``normalization``: augmentation (RandomTranslation), then ``Normalization`` adapted on
            the training images; raw pixels.
        ``symmetric``: no normalizing layer at all; trained on pixels scaled to [-1, 1].
        ``ops``: the transfer-learning tutorial's ``preprocess_input(inputs)`` (MobileNetV2's, x/127.5 - 1)
            written as ops in the graph, no layer to find; raw pixels.
    """
    import keras

    seeded()
    x_train = images.astype("float32")
    inputs = keras.Input((size, size, 3), name="pixels")
    if kind == "tutorial":
        augment = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
                                    keras.layers.RandomZoom(0.1)], name="data_augmentation")
        x = keras.layers.Rescaling(1.0 / 255, name="rescaling")(augment(inputs))
    elif kind == "nested":
        block = keras.Sequential([keras.layers.RandomContrast(0.1), keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")],
                                 name="preprocess")
        x = block(inputs)
    elif kind == "normalization":
        norm = keras.layers.Normalization(name="normalize")
        norm.adapt(x_train)
        x = norm(keras.layers.RandomTranslation(0.05, 0.05)(inputs))
    elif kind == "ops":
        x = keras.applications.mobilenet_v2.preprocess_input(inputs)
    elif kind == "symmetric":
        x = inputs
        x_train = x_train / 127.5 - 1.0
    else:
        raise ValueError(kind)
    model = keras.Model(inputs, small_cnn_body(keras, x), name=f"{kind}_cnn")
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, labels, epochs=epochs, batch_size=32, verbose=0)
    return model


SITE_BLOCKER = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "tensorflow", "keras"):
            raise ImportError(f"blocked for the test: {name}")
        return None
sys.meta_path.insert(0, _Block())
"""


def blocked_env(folder: Path) -> dict[str, str]:
    """An environment in which Ray, TensorFlow and Keras cannot be imported, in a process and in every
    process it starts (a ``sitecustomize`` in ``folder/site`` on PYTHONPATH)."""
    import os

    site = folder / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITE_BLOCKER)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def write_attribute_list(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """PNG files under ``root/images`` and ``root/labels.csv`` (path,labels: the digit's attributes)."""
    import cv2

    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = ["path,labels"]
    for i, (image, attributes) in enumerate(zip(images, attribute_matrix(labels), strict=True)):
        name = f"images/{i:05d}.png"
        cv2.imwrite(str(root / name), image[:, :, ::-1])
        lines.append(f"{name},{' '.join(a for a, on in zip(ATTRIBUTES, attributes, strict=True) if on)}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"


def read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, as OpenCV decodes them."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            capture.release()
            return frames
        frames.append(frame)
