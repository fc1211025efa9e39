"""Keras files and SavedModels that hold code (built by the tests; nothing binary is committed).

Each writes a marker file when its code runs, so a test proves that nothing ran by the marker's absence.
Building a Keras model calls its layers once, so the builders remove the marker they wrote themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def edit_h5_config(path: Path, edit) -> None:
    """Rewrite the ``model_config`` of the ``.h5`` at ``path`` with ``edit(config)``."""
    import h5py

    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        edit(config)
        h5.attrs["model_config"] = json.dumps(config)


def layers_of(config: dict) -> list[dict]:
    return config["config"]["layers"]


def tf_keras_lambda_h5(path: Path, marker: Path, quirk: str) -> Path:
    """A Keras 2 (tf_keras) ``.h5`` whose Lambda writes ``marker``, with one config entry Keras 3 rejects
    and tf_keras accepts (``quirk``: ``dynamic`` on the Conv2D, or ``implementation`` on it), so that Keras 3
    refuses the file with an ordinary error and a loader falls back to tf_keras."""
    import tf_keras

    def write_marker(x, marker=str(marker)):
        with open(marker, "w") as f:
            f.write("code from the model file ran")
        return x

    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = tf_keras.layers.Lambda(write_marker, name="payload")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    tf_keras.Model(inputs, tf_keras.layers.Dense(3, activation="softmax")(x)).save(path)
    marker.unlink()

    def add_quirk(config):
        conv = next(layer for layer in layers_of(config) if layer["class_name"] == "Conv2D")
        conv["config"]["dynamic" if quirk == "dynamic" else "implementation"] = False if quirk == "dynamic" else 1

    edit_h5_config(path, add_quirk)
    return path


def tf_keras_op_h5(path: Path, function: str) -> Path:
    """A tf_keras ``.h5`` whose ``TFOpLambda`` (written for ``x * 0.5``) names the TensorFlow ``function``."""
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((16, 16, 3))
    x = tf.math.multiply(inputs, 0.5)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    tf_keras.Model(inputs, tf_keras.layers.Dense(3, activation="softmax")(x)).save(path)

    def rename(config):
        op = next(layer for layer in layers_of(config) if layer["class_name"] == "TFOpLambda")
        op["config"]["function"] = function

    edit_h5_config(path, rename)
    return path


def saved_model_with(folder: Path, marker: Path, payload: str) -> Path:
    """A SavedModel (``tf.saved_model.save``) whose serving function classifies by mean colour and also
    writes ``marker``: with ``tf.io.write_file`` (``payload="write_file"``) or from Python through
    ``tf.py_function`` (``"py_function"``)."""
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec((None, 16, 16, 3), tf.float32)])
        def serve(self, x):
            if payload == "write_file":
                tf.io.write_file(str(marker), "code from the model file ran")
            else:
                def write():
                    marker.write_text("code from the model file ran")
                    return np.float32(0)
                tf.py_function(write, [], tf.float32)
            return tf.nn.softmax(tf.reduce_mean(x, [1, 2]) @ self.w)

    model = Model()
    tf.saved_model.save(model, str(folder), signatures={"serving_default": model.serve})
    return folder


def add_op_to_function(folder: Path, function_prefix: str, op: str) -> Path:
    """``folder``'s SavedModel with a node of ``op`` (fed by two string constants) added to the first
    function whose name starts with ``function_prefix``; the file is only ever read, never run."""
    from tensorflow.core.framework import attr_value_pb2, node_def_pb2, tensor_pb2, types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    pb = folder / "saved_model.pb"
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    function = next(f for f in saved.meta_graphs[0].graph_def.library.function
                    if f.signature.name.startswith(function_prefix))
    for name in ("planted_a", "planted_b"):
        const = node_def_pb2.NodeDef(name=name, op="Const")
        const.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=types_pb2.DT_STRING))
        const.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING, string_val=[b"/tmp/planted"])))
        function.node_def.append(const)
    function.node_def.append(node_def_pb2.NodeDef(name="planted", op=op, input=["planted_a:output:0",
                                                                               "planted_b:output:0"]))
    pb.write_bytes(saved.SerializeToString())
    return folder
