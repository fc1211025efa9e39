"""Export inputs: Keras formats, safety, labels, options, overwrite and atomicity."""

import builders
import numpy as np
import pytest

from edgecls.converters import ExportError, OutputExistsError, export
from edgecls.converters.errors import CustomObjectError, UnsafeModelError
from edgecls.runtime import Classifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def small_model(seed_model):
    """The trained seed CNN (x/255 inputs, no normalizing layer)."""
    return seed_model


def _fp32(path, out, **kwargs):
    kwargs.setdefault("labels", builders.DIGIT_LABELS)
    return export(path, out, formats=["tflite", "onnx"], quantize=["fp32"], **kwargs)


def _assert_agrees(report, images):
    assert report.ok
    for f in report.files:
        assert f.validation.top1_agreement == 1.0 and f.validation.max_abs_diff < 1e-4
        with Classifier.from_path(f.path) as clf:
            assert clf.classify(images[0], color="rgb").top is not None


def test_keras3_h5_and_keras_formats(small_model, tmp_path, digits):
    for name in ("m.h5", "m.keras"):
        small_model.save(tmp_path / name)
        _assert_agrees(_fp32(tmp_path / name, tmp_path / name.replace(".", "_")), digits[0])


def test_legacy_tf_keras_h5(tmp_path, digits):
    tf_keras = pytest.importorskip("tf_keras")
    model = tf_keras.Sequential([
        tf_keras.Input((32, 32, 3)),
        tf_keras.layers.Conv2D(8, 3, activation="relu"),
        tf_keras.layers.GlobalAveragePooling2D(),
        tf_keras.layers.Dense(10, activation="softmax"),
    ])
    model.save(tmp_path / "legacy.h5")
    _assert_agrees(_fp32(tmp_path / "legacy.h5", tmp_path / "out"), digits[0])


def test_saved_model_folders(small_model, tmp_path, digits):
    small_model.export(str(tmp_path / "k3_saved"))  # Keras 3: endpoint 'serve'
    _assert_agrees(_fp32(tmp_path / "k3_saved", tmp_path / "out1"), digits[0])
    tf_keras = pytest.importorskip("tf_keras")
    legacy = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), tf_keras.layers.Flatten(),
                                  tf_keras.layers.Dense(10, activation="softmax")])
    legacy.save(str(tmp_path / "tfk_saved"))  # tf_keras: endpoint 'serving_default'
    _assert_agrees(_fp32(tmp_path / "tfk_saved", tmp_path / "out2"), digits[0])


def _lambda_model():
    import keras

    return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Lambda(lambda x: x * 2.0),
                             keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])


def test_lambda_layer_refused_without_unsafe(tmp_path, digits):
    _lambda_model().save(tmp_path / "lam.keras")
    _lambda_model().save(tmp_path / "lam.h5")
    for name in ("lam.keras", "lam.h5"):  # an .h5 is not retried with tf_keras: the refusal is typed, not a string
        with pytest.raises(UnsafeModelError, match=rf"{name}: the model has a Lambda layer.*unsafe=True") as err:
            _fp32(tmp_path / name, tmp_path / "out")
        assert err.value.options == ("unsafe",)
    assert not (tmp_path / "out").exists()
    _assert_agrees(_fp32(tmp_path / "lam.keras", tmp_path / "out", unsafe=True), digits[0])


def test_custom_layer_needs_custom_objects(tmp_path, digits):
    module = tmp_path / "layers_mod.py"
    module.write_text(
        "import keras\n\n"
        "@keras.saving.register_keras_serializable(package='edgecls_test')\n"
        "class Doubler(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return x * 2.0\n"
    )
    import importlib.util

    spec = importlib.util.spec_from_file_location("layers_mod_writer", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), mod.Doubler(), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "custom.keras")
    registry = keras.saving.get_custom_objects()
    saved = dict(registry)
    registry.clear()  # as in a fresh process that never imported the module
    try:
        with pytest.raises(CustomObjectError, match="Doubler"):
            _fp32(tmp_path / "custom.keras", tmp_path / "out")
    finally:
        registry.update(saved)
    _assert_agrees(_fp32(tmp_path / "custom.keras", tmp_path / "out", custom_objects=module), digits[0])


def test_labels_count_must_match(small_model, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join("abcdefghi"))  # 9 labels, 10 outputs
    with pytest.raises(ExportError, match=r"labels.txt: 9 labels but the model outputs 10 classes"):
        export(small_model, tmp_path / "out", labels=labels)


def test_int8_without_calibration_data(small_model, tmp_path):
    with pytest.raises(ExportError, match="int8 needs calibration images: pass calibration="):
        export(small_model, tmp_path / "out", quantize=["int8"])


def test_no_overwrite_without_force(small_model, tmp_path):
    first = export(small_model, tmp_path, formats=["onnx"], labels=builders.DIGIT_LABELS)
    path = first.files[0].path
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists; pass force=True"):
        export(small_model, tmp_path, formats=["onnx"], labels=builders.DIGIT_LABELS)
    assert path.read_bytes() == before
    again = export(small_model, tmp_path, formats=["onnx"], labels=builders.DIGIT_LABELS, force=True)
    assert again.files[0].path == path


def test_failed_export_leaves_no_partial_files(small_model, tmp_path, monkeypatch):
    from edgecls.converters.formats.onnx_format import OnnxFormat

    def broken(self, job, quantization):
        raise ExportError("simulated failure")

    monkeypatch.setattr(OnnxFormat, "convert", broken)
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="simulated failure"):
        export(small_model, out, formats=["tflite", "onnx"], labels=builders.DIGIT_LABELS)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["model_fp32.tflite"]  # complete, validated file; nothing partial, no temp files


def test_unwritable_output_folder_fails_before_any_work(small_model, tmp_path, monkeypatch):
    import errno
    import tempfile

    from edgecls.converters.formats.tflite_format import TFLiteFormat

    def never(self, job, quantization):
        raise AssertionError("conversion started although the folder cannot take files")

    monkeypatch.setattr(TFLiteFormat, "convert", never)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot create the output folder"):
        export(small_model, blocker / "out", formats=["tflite"], labels=builders.DIGIT_LABELS)

    real_mkstemp = tempfile.mkstemp

    def full_disk(*args, **kwargs):
        if str(kwargs.get("dir", "")).startswith(str(tmp_path)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", full_disk)
    with pytest.raises(ExportError, match=r"out: cannot write to the output folder \(No space left on device\)"):
        export(small_model, tmp_path / "out", formats=["tflite"], labels=builders.DIGIT_LABELS)


def test_atomic_write_reports_a_full_or_read_only_folder(tmp_path, monkeypatch):
    import errno
    import os

    from edgecls.converters.atomic import atomic_write_bytes

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(ExportError, match=r"model.tflite: cannot write \(Read-only file system\)"):
        atomic_write_bytes(tmp_path / "model.tflite", b"data")
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_normalizing_first_layer_is_detected(tmp_path, digits):
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    report = export(model, tmp_path, formats=["onnx"], labels=builders.DIGIT_LABELS)
    assert report.normalization.name == "raw"
    assert any("Rescaling layer" in note for note in report.notes)
    assert report.ok


def test_custom_mean_std_is_baked(tmp_path, digits):
    import keras

    images = digits[0][:16]
    inner = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    report = export(inner, tmp_path, formats=["onnx"], labels=builders.DIGIT_LABELS,
                    mean=[120, 110, 100], std=[60, 50, 40])
    expected = inner(((images.astype("float32") - [120, 110, 100]) / [60, 50, 40]).astype("float32")).numpy()
    with Classifier.from_path(report.files[0].path) as clf:
        got = clf.scores_batch(list(images), color="rgb")
    assert np.abs(got - expected).max() < 1e-5


@pytest.mark.parametrize("shape_error", ["two_inputs", "two_outputs", "not_classifier", "free_size"])
def test_models_that_are_not_image_classifiers(tmp_path, shape_error):
    import keras

    a = keras.Input((32, 32, 3))
    if shape_error == "two_inputs":
        b = keras.Input((32, 32, 3))
        model = keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Add()([a, b]))))
        message = "has 2 inputs"
    elif shape_error == "two_outputs":
        flat = keras.layers.Flatten()(a)
        model = keras.Model(a, [keras.layers.Dense(3)(flat), keras.layers.Dense(2)(flat)])
        message = "has 2 outputs"
    elif shape_error == "not_classifier":
        model = keras.Model(a, keras.layers.Conv2D(3, 1)(a))
        message = "a classifier outputs"
    else:
        free = keras.Input((None, None, 3))
        model = keras.Model(free, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(free)))
        message = r"pass input_size=\(H, W\)"
    with pytest.raises(ExportError, match=message):
        export(model, tmp_path)


def test_free_size_with_input_size(tmp_path):
    import keras

    free = keras.Input((None, None, 3))
    model = keras.Model(free, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(free)))
    report = export(model, tmp_path, formats=["tflite"], input_size=(48, 64), labels=["a", "b", "c"])
    with Classifier.from_path(report.files[0].path) as clf:
        assert (clf.card.input.height, clf.card.input.width) == (48, 64)


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "weights.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(ExportError, match=r"weights\.h5: cannot load the Keras model"):
        export(bad, tmp_path / "out")
    with pytest.raises(ExportError, match="no such model file"):
        export(tmp_path / "missing.h5", tmp_path / "out")


@pytest.mark.parametrize("fmt, says", [
    ("onnx", "ONNX: layer '{}' has TensorFlow op BesselI1e that tf2onnx cannot translate"),
    ("tflite", "TFLite conversion (fp32) failed (layer '{}': 'tf.BesselI1e' op is neither a custom op"),
])
def test_unconvertible_layer_fails_fast_naming_layer_and_format(fmt, says, tmp_path, digits):
    """An op a converter cannot translate stops the export before calibration, quantization or validation."""
    import keras
    import tensorflow as tf

    class Bessel(keras.layers.Layer):
        def call(self, x):
            return tf.math.bessel_i1e(x)

    inputs = keras.Input((32, 32, 3))
    x = Bessel(name="odd_bessel")(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x)),
                        name="odd")
    steps = []
    with pytest.raises(ExportError) as err:
        export(model, tmp_path, formats=[fmt], quantize=["fp32", "int8"], calibration=digits[0][:20],
               on_step=lambda message, done, total: steps.append(message))
    assert says.format("odd_1/odd_bessel_1/bessel_i1e") in str(err.value)
    assert steps[-1] == f"converting to {fmt}" and not any("int8" in s or "validating" in s for s in steps)
    assert list(tmp_path.iterdir()) == []


def test_max_drop_is_an_accuracy_budget_that_replaces_or_joins_the_agreement_floor():
    """--max-drop N: within N accuracy points of Keras on labelled images; with --min-agreement both must hold."""
    from pathlib import Path

    from edgecls.converters.report import ExportedFile
    from edgecls.converters.validate import Validation

    def exported(agreement, accuracy, min_agreement, max_drop):
        v = Validation(images=400, source="val", top1_agreement=agreement, max_abs_diff=0.1, mean_abs_diff=0.01,
                       accuracy=accuracy, keras_accuracy=0.90)
        return ExportedFile(Path("m.tflite"), "tflite", "int8", 1, v, min_agreement, 1.0, max_drop=max_drop)

    assert exported(0.90, 0.895, None, 1.0).passed  # low agreement, 0.5 point drop: within the budget
    assert not exported(0.99, 0.885, None, 1.0).passed  # 1.5 points over a 1-point budget
    assert not exported(0.90, 0.900, 0.95, 1.0).passed  # both given: the agreement floor still binds
    assert exported(0.99, 0.900, 0.95, 1.0).passed
    assert not exported(0.99, None, None, 1.0).passed  # no accuracy to check: never counts as within budget


def test_max_drop_end_to_end(seed_h5, digits_folders, tmp_path):
    train, val = digits_folders
    report = export(seed_h5, tmp_path / "a", formats=["tflite"], quantize=["fp32", "int8"], calibration=train,
                    validation=val, max_drop=1.0)
    assert report.options.max_drop == 1.0
    for f in report.files:
        assert f.min_agreement is None and f.max_drop == 1.0
        assert f.passed == (f.validation.accuracy_drop * 100 <= 1.0)
    with pytest.raises(ExportError, match="max_drop needs labelled validation images"):
        export(seed_h5, tmp_path / "b", formats=["tflite"], max_drop=1.0, labels=builders.DIGIT_LABELS)


def test_export_takes_typed_options_or_keywords_not_both(tmp_path):
    from edgecls.converters import ExportError, ExportOptions, export

    with pytest.raises(ExportError, match="as an ExportOptions or as keywords, not both"):
        export(tmp_path / "m.h5", tmp_path, ExportOptions(), quantize=["int8"])
    with pytest.raises(ExportError, match=r"unknown export option.*quantise; choose from formats, quantize"):
        export(tmp_path / "m.h5", tmp_path, quantise=["int8"])
