"""Nothing from a model file runs at export unless the user says --unsafe, whichever loader reads it
(issue 28, findings 1 and 2); the models users really have keep exporting.

Each hostile file is built here and writes a marker when its code runs: its absence is the proof. The
refusals run ``edgecls export`` in a fresh process (one ``error:`` line naming the file and the cause,
exit 1, no traceback).
"""

from __future__ import annotations

import numpy as np
import pytest
from hostile import run_cli
from hostile_keras import (
    add_op_to_function,
    edit_h5_config,
    layers_of,
    saved_model_with,
    tf_keras_lambda_h5,
    tf_keras_op_h5,
)


def _refused(run, model, *causes: str) -> str:
    assert (run.exit_code, run.signal) == (1, None), (run.exit_code, run.stderr[-3000:])
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr[-3000:]
    assert str(model) in errors[0] and all(cause in errors[0] for cause in causes), errors[0]
    assert "Traceback" not in run.stderr
    return errors[0]


@pytest.mark.parametrize("quirk", ["dynamic", pytest.param("implementation", marks=pytest.mark.slow)])
def test_a_keras2_h5_lambda_never_runs_without_unsafe(tmp_path, quirk):
    marker = tmp_path / "marker"
    model = tf_keras_lambda_h5(tmp_path / "evil.h5", marker, quirk)
    run = run_cli(["export", str(model), "-o", str(tmp_path / "out"), "--formats", "onnx"], tmp_path)
    error = _refused(run, model, "Lambda", "'payload'")
    assert "--unsafe" in error
    assert not marker.exists() and not (tmp_path / "out").exists()
    # the refusal is safe mode's: with --unsafe the same file loads (through tf_keras) and its code runs
    unsafe = run_cli(["export", str(model), "-o", str(tmp_path / "out"), "--formats", "onnx", "--unsafe"], tmp_path)
    assert unsafe.exit_code == 0, unsafe.stderr[-3000:]
    assert "loaded with tf_keras" in unsafe.stdout + unsafe.stderr and marker.exists()


@pytest.mark.parametrize("function", ["io.write_file", "py_function", "compat.v1.py_func"])
def test_a_tf_keras_op_layer_may_call_only_tensor_functions(tmp_path, function):
    from edgecls.converters import export
    from edgecls.converters.errors import UnsafeModelError

    model = tf_keras_op_h5(tmp_path / "op.h5", function)
    with pytest.raises(UnsafeModelError, match=rf"op\.h5: .*calls the TensorFlow function '{function}'"):
        export(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("payload, op", [("write_file", "WriteFile"), ("py_function", "EagerPyFunc")])
def test_a_saved_model_that_touches_files_or_python_is_refused(tmp_path, payload, op):
    marker = tmp_path / "marker"
    folder = saved_model_with(tmp_path / "model", marker, payload)
    run = run_cli(["export", str(folder), "-o", str(tmp_path / "out"), "--formats", "onnx"], tmp_path)
    _refused(run, folder, f"'{op}'", "--unsafe")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_py_function_run_with_unsafe_is_one_error_line(tmp_path):
    """With --unsafe the graph runs, and a py_function whose Python is not in this process fails cleanly."""
    folder = saved_model_with(tmp_path / "model", tmp_path / "marker", "py_function")
    run = run_cli(["export", str(folder), "-o", str(tmp_path / "out"), "--formats", "onnx", "--unsafe"], tmp_path)
    _refused(run, folder, "failed while classifying images", "pyfunc")


@pytest.mark.parametrize("where, op, allowed", [
    ("__inference__traced_restore", "WriteFile", False),  # the restore may read a checkpoint, not write files
    ("__inference_serve", "RestoreV2", False),  # reading a checkpoint outside the variables' restore
    ("__inference__traced_restore", "RestoreV2", True),  # what the restore does
    ("__inference__traced_save", "MergeV2Checkpoints", True),  # what the save does (never run by a load)
])
def test_checkpoint_ops_are_allowed_only_where_the_saver_runs_them(tmp_path, where, op, allowed):
    from edgecls.converters.errors import UnsafeModelError
    from edgecls.converters.safe_mode import check_saved_model

    folder = saved_model_with(tmp_path / "model", tmp_path / "marker", "write_file")
    # the payload's own WriteFile out of the way: the serving function without it
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((folder / "saved_model.pb").read_bytes())
    for function in saved.meta_graphs[0].graph_def.library.function:
        kept = [n for n in function.node_def if n.op != "WriteFile"]
        del function.node_def[:]
        function.node_def.extend(kept)
    (folder / "saved_model.pb").write_bytes(saved.SerializeToString())
    check_saved_model(folder)  # clean now
    add_op_to_function(folder, where, op)
    if allowed:
        check_saved_model(folder)
    else:
        with pytest.raises(UnsafeModelError, match=rf"the SavedModel runs the op '{op}' \(function {where}"):
            check_saved_model(folder)


def _small_cnn(keras, inputs, x=None):
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs if x is None else x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))


def _keras2_h5(path):
    """A Keras 2 file Keras 3 will not read (``dynamic`` on a Conv2D): tf_keras loads it."""
    import tf_keras

    _small_cnn(tf_keras, tf_keras.Input((24, 24, 3))).save(path)

    def quirk(config):
        next(lr for lr in layers_of(config) if lr["class_name"] == "Conv2D")["config"]["dynamic"] = False

    edit_h5_config(path, quirk)
    return path


def _keras2_preprocess_h5(path):
    """The transfer-learning tutorial's shape in tf_keras: preprocess_input as TFOpLambda layers."""
    import tf_keras

    inputs = tf_keras.Input((24, 24, 3))
    _small_cnn(tf_keras, inputs, tf_keras.applications.mobilenet_v2.preprocess_input(inputs)).save(path)
    return path


def _keras3(path):
    import keras

    _small_cnn(keras, keras.Input((24, 24, 3))).save(path)
    return path


def _exported(path):
    import keras

    _small_cnn(keras, keras.Input((24, 24, 3))).export(str(path), verbose=False)
    return path


def _tf_saved(path):
    import keras
    import tensorflow as tf

    tf.saved_model.save(_small_cnn(keras, keras.Input((24, 24, 3))), str(path))
    return path


@pytest.mark.parametrize("name, build", [
    ("keras2.h5", _keras2_h5), ("keras2_preprocess.h5", _keras2_preprocess_h5), ("keras3.h5", _keras3),
    ("model.keras", _keras3), ("exported", _exported), ("tf_saved", _tf_saved),
], ids=["tf_keras-h5", "tf_keras-preprocess_input", "keras3-h5", "keras", "model.export", "tf.saved_model.save"])
def test_the_models_users_have_keep_exporting(tmp_path, name, build):
    from edgecls.converters import export
    from edgecls.runtime import Classifier

    model = build(tmp_path / name)
    report = export(model, tmp_path / "out", formats=["tflite", "onnx"])
    assert report.ok and len(report.files) == 2
    if name == "keras2.h5":
        assert "loaded with tf_keras (Keras 2 file)" in report.notes
    frame = np.random.default_rng(0).integers(0, 256, (24, 24, 3), np.uint8)
    scores = []
    for exported in report.files:
        assert exported.validation.top1_agreement >= 0.999
        with Classifier.from_path(exported.path) as clf:
            scores.append(clf.scores(frame, color="rgb"))
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-4)
