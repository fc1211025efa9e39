"""Safe mode: a model file is code until proven otherwise, so it is read before any loader sees it.

A Keras file names the classes its loader builds and a SavedModel holds graphs its loader runs, and not
every loader keeps its promises (tf_keras ignores ``safe_mode`` for ``.h5`` files and rebuilds a Lambda
from its marshalled bytecode; ``tf.saved_model.load`` runs whatever ops the restore holds, and the
graph runs whatever ops it holds once called). So, unless the caller says ``unsafe``:

- a Keras file (``.h5``/``.hdf5`` or ``.keras``): every class its configuration names must be one an
  image classifier is made of (:data:`KERAS_CLASSES`, Keras' own tensor operations, or a name the caller
  gave in ``custom_objects``); Lambda layers, a ``TFOpLambda`` calling anything outside TensorFlow's
  math and nn functions, and objects from modules outside Keras are refused;
- a SavedModel folder: every op of every graph and function must be a tensor operation in
  :data:`SAFE_OPS` (an allow-list, not a deny-list); reading a checkpoint is allowed only in what the
  saver's restore runs, writing one only in what its save runs.

Each refusal is an :class:`UnsafeModelError` (or a :class:`CustomObjectError` for a class that is no
Keras one) naming the file, the layer or function, and what it would do.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from edgecls.converters.errors import CustomObjectError, ExportError, UnsafeModelError

__all__ = ["check_model_file", "check_keras_config", "check_saved_model", "KERAS_CLASSES", "SAFE_OPS"]

_TRUST = "pass unsafe=True only if you trust this file"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

INITIALIZERS = frozenset({
    "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling",
    "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal",
    "IdentityInitializer",
})
"""Weight initializers (tf_keras records TensorFlow's own, ``tf.constant_initializer``, by their
``tensorflow.python.ops.init_ops_v2`` module)."""

KERAS_CLASSES = frozenset({
    # containers and inputs
    "Functional", "Sequential", "Model", "InputLayer",
    # core, convolution, pooling
    "Dense", "EinsumDense", "Activation", "Identity", "Embedding",
    "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D", "Conv1DTranspose",
    "Conv2DTranspose", "Convolution2DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
    "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "AvgPool1D", "AvgPool2D", "AvgPool3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "GlobalMaxPool3D", "AdaptiveAveragePooling2D", "AdaptiveMaxPooling2D",
    # normalization, regularization, activations
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization", "RMSNormalization",
    "Normalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "ActivityRegularization",
    "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU",
    # merging, reshaping, attention
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "Reshape", "Flatten", "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "MultiHeadAttention", "Attention", "AdditiveAttention",
    # image preprocessing and augmentation (identity at inference)
    "Rescaling", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
    "RandomContrast", "RandomBrightness", "RandomCrop", "RandomHeight", "RandomWidth",
    # layers of Keras Applications' own (ConvNeXt)
    "LayerScale", "StochasticDepth",
    # tf_keras' TensorFlow-op layers: the function they call is checked (_TF_FUNCTIONS)
    "TFOpLambda", "SlicingOpLambda",
    # regularizers, constraints, dtype policies (initializers: INITIALIZERS)
    "L1", "L2", "L1L2", "OrthogonalRegularizer", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint",
    "DTypePolicy", "Policy",
    # Keras 3's serialization of values
    "__keras_tensor__", "__tuple__", "__ellipsis__", "__slice__", "__numpy__", "__tensor__",
}) | INITIALIZERS
"""The Keras classes an image classifier is made of: the only ones a Keras file may name in safe mode
(besides Keras 3's own tensor operations, :func:`_keras_op_names`, and the caller's ``custom_objects``)."""

_TF_FUNCTION_PREFIXES = ("math.", "nn.", "__operators__.", "linalg.")
_TF_FUNCTIONS = frozenset({
    "reshape", "concat", "expand_dims", "squeeze", "transpose", "compat.v1.transpose", "cast", "clip_by_value",
    "identity", "image.resize", "split", "stack", "unstack", "pad", "tile", "reverse", "gather", "where",
    "ones_like", "zeros_like", "shape", "broadcast_to", "einsum", "matmul", "cumsum", "argmax", "argmin",
    "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "maximum", "minimum", "sqrt", "square", "abs",
})
"""What a ``TFOpLambda`` may call (besides the ``tf.math``, ``tf.nn``, ``tf.linalg`` functions and the
operators): tensor functions. Any other TensorFlow symbol (``tf.io.write_file``, ``tf.py_function``) is refused."""

ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "sigmoid", "hard_sigmoid",
    "hard_silu", "hard_swish", "softmax", "log_softmax", "softplus", "softsign", "tanh", "exponential", "mish",
    "celu", "glu", "hard_tanh", "log_sigmoid", "sparse_plus", "squareplus", "tanh_shrink", "sparsemax",
})

_DENIED_CLASSES = {
    "Lambda": "a Lambda layer, whose Python code Keras will not load in safe mode",
    "__lambda__": "a Python lambda",
    "TensorFlowOpLayer": "a TensorFlowOpLayer, which runs any TensorFlow op its configuration names",
    "ClassMethod": "a ClassMethod layer, which calls any TensorFlow symbol its configuration names",
    "InstanceMethod": "an InstanceMethod layer, which calls any method its configuration names",
    "InstanceProperty": "an InstanceProperty layer, which reads any attribute its configuration names",
    "TFSMLayer": "a TFSMLayer, which loads and runs another SavedModel",
    "__typespec__": "a TensorFlow TypeSpec, built from a class its configuration names",
}

SAFE_OPS = frozenset({
    # graph plumbing, variables, calls and control flow
    "Const", "Placeholder", "PlaceholderWithDefault", "Identity", "IdentityN", "NoOp", "StopGradient",
    "PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "While", "StatelessWhile", "Case",
    "StatelessCase", "Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond", "Assert", "CheckNumerics",
    "EnsureShape", "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp",
    "AssignSubVariableOp", "VarIsInitializedOp", "DisableCopyOnRead", "ResourceGather", "VariableV2", "Variable",
    "Assign", "IsVariableInitialized",
    # element-wise math
    "Abs", "Acos", "Acosh", "Add", "AddN", "AddV2", "Asin", "Asinh", "Atan", "Atan2", "Atanh", "Cast", "Ceil",
    "ClipByValue", "Cos", "Cosh", "Div", "DivNoNan", "Elu", "Equal", "Erf", "Erfc", "Exp", "Expm1", "Floor",
    "FloorDiv", "FloorMod", "Greater", "GreaterEqual", "IsFinite", "IsInf", "IsNan", "LeakyRelu", "Less",
    "LessEqual", "Log", "Log1p", "LogicalAnd", "LogicalNot", "LogicalOr", "Maximum", "Minimum", "Mod", "Mul",
    "MulNoNan", "Neg", "NotEqual", "Pow", "RealDiv", "Reciprocal", "Relu", "Relu6", "Round", "Rsqrt", "Select",
    "SelectV2", "Selu", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Square",
    "SquaredDifference", "Sub", "Tan", "Tanh", "Gelu",
    # reductions, linear algebra, neural-network ops
    "All", "Any", "ArgMax", "ArgMin", "Max", "Mean", "Min", "Prod", "Sum", "Cumsum", "Cumprod", "L2Loss",
    "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "BiasAdd", "Conv2D", "Conv3D",
    "Conv2DBackpropInput", "Conv3DBackpropInputV2", "DepthwiseConv2dNative", "AvgPool", "AvgPool3D", "MaxPool",
    "MaxPoolV2", "MaxPool3D", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "Softmax", "LogSoftmax",
    "TopKV2", "LRN",
    # shapes and indexing
    "BatchToSpaceND", "BroadcastArgs", "BroadcastTo", "Concat", "ConcatV2", "DepthToSpace", "ExpandDims", "Fill",
    "Gather", "GatherNd", "GatherV2", "InvertPermutation", "MirrorPad", "OneHot", "OnesLike", "Pack", "Pad", "PadV2",
    "Range", "Rank", "Reshape", "Reverse", "ReverseV2", "Shape", "ShapeN", "Size", "Slice", "SpaceToBatchND",
    "SpaceToDepth", "Split", "SplitV", "Squeeze", "StridedSlice", "Tile", "Transpose", "Unpack", "Where",
    "ZerosLike", "TensorScatterUpdate", "ScatterNd",
    # images
    "ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "ResizeArea", "ScaleAndTranslate", "CropAndResize",
    "AdjustContrastv2", "AdjustSaturation", "AdjustHue", "HSVToRGB", "RGBToHSV", "ImageProjectiveTransformV3",
    # random numbers (augmentation and dropout traced for training)
    "RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal", "StatelessRandomUniformV2",
    "StatelessRandomNormalV2", "StatelessTruncatedNormalV2", "StatelessRandomUniformIntV2",
    "StatelessRandomGetKeyCounter", "StatelessRandomGetAlg", "StatelessRandomGetKeyCounterAlg",
    "StatelessRandomUniform", "StatelessRandomNormal", "StatelessRandomUniformInt", "RngReadAndSkip",
    # quantization-aware training
    "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVarsPerChannel",
    "QuantizeAndDequantizeV2", "QuantizeAndDequantizeV3", "QuantizeAndDequantizeV4",
})
"""The TensorFlow ops a SavedModel may hold in safe mode: tensor operations that touch no file, process
or Python code."""

_RESTORE_OPS = frozenset({"RestoreV2", "Restore", "RestoreSlice"})
"""Allowed only in what the saver's restore runs (the loader reads the variables with them)."""
_SAVE_OPS = frozenset({"SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec",
                       "StringJoin", "StaticRegexFullMatch"})
"""Allowed only in what the saver's save runs (never run by loading or classifying)."""

_OP_EFFECTS = {
    **dict.fromkeys(("WriteFile", "SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints"), "writes files"),
    **dict.fromkeys(("ReadFile", "RestoreV2", "Restore", "RestoreSlice", "ImmutableConst",
                     "InitializeTableFromTextFile", "InitializeTableFromTextFileV2"), "reads files"),
    **dict.fromkeys(("MatchingFiles", "MatchingFilesDataset"), "lists files"),
    **dict.fromkeys(("PyFunc", "EagerPyFunc", "PyFuncStateless"), "runs Python code"),
    **dict.fromkeys(("Print", "PrintV2"), "writes to a stream or file"),
}


def check_model_file(path: Path, custom_names: Iterable[str] = ()) -> None:
    """Refuse ``path`` (a Keras file or a SavedModel folder) when it holds code; see the module docstring.

    Raises:
        UnsafeModelError: a Lambda layer, a class or op that can run code or touch files.
        CustomObjectError: a class that is no Keras one and not in ``custom_names``.
        ExportError: the file's configuration cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        check_saved_model(path)
        return
    config = _keras_config(path)
    if config is not None:
        check_keras_config(config, path, custom_names)


def _keras_config(path: Path) -> Any | None:
    """The model configuration a Keras file holds (HDF5 ``model_config``, or ``config.json`` in a ``.keras``
    zip), None when the file holds neither (the loader then refuses it for what it is)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as exc:
        raise ExportError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    text = None
    if head == HDF5_SIGNATURE:
        import h5py

        try:
            with h5py.File(path, "r") as h5:
                text = h5.attrs.get("model_config")
        except (OSError, KeyError, ValueError) as exc:
            raise ExportError(f"{path}: cannot load the Keras model (not a readable HDF5 file: {exc})") from None
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                if "config.json" in archive.namelist():
                    text = archive.read("config.json")
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, ValueError) as exc:
            raise ExportError(f"{path}: cannot read the .keras archive ({exc})") from None
    if text is None:
        return None
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else str(text))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ExportError(f"{path}: the model configuration is not readable JSON ({type(exc).__name__})") from None


_NOT_LOADED = ("compile_config", "training_config")
"""Parts of a configuration the loader does not build (edgecls loads with ``compile=False``): the
optimizer, loss and metrics."""


def _objects(config: Any) -> Iterator[tuple[dict, str]]:
    """Every serialized object (a dict with ``class_name``) in ``config`` that loading builds, with the name
    of the layer it is in."""
    stack: list[tuple[Any, str]] = [(config, "the model")]
    while stack:
        value, layer = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("class_name"), str):
                inner = value.get("config")
                name = value.get("name", inner.get("name") if isinstance(inner, dict) else None)
                layer = f"layer {name!r}" if isinstance(name, str) else layer
                yield value, layer
            stack.extend((v, layer) for k, v in value.items() if k not in _NOT_LOADED)
        elif isinstance(value, list):
            stack.extend((v, layer) for v in value)


def check_keras_config(config: Any, path: Path, custom_names: Iterable[str] = ()) -> None:
    """Refuse a Keras model configuration that names a class outside :data:`KERAS_CLASSES` and
    ``custom_names``, a module outside Keras, a TensorFlow function outside math, or an unknown activation.

    Raises:
        UnsafeModelError, CustomObjectError: see :func:`check_model_file`.
    """
    custom = set(custom_names)
    known = KERAS_CLASSES | _keras_op_names()
    for obj, where in _objects(config):
        name, module = obj["class_name"], obj.get("module")
        if name in custom or (obj.get("registered_name") or "") in custom:
            continue
        if name in _DENIED_CLASSES:
            raise UnsafeModelError(f"{path}: the model has {_DENIED_CLASSES[name]} ({where}); {_TRUST}",
                                   options=("unsafe",))
        if name == "function":  # Keras 3's serialized function: an activation by name
            if not (isinstance(module, str) and module.startswith("keras") and obj.get("config") in ACTIVATIONS):
                raise UnsafeModelError(f"{path}: {where} names the function {obj.get('config')!r} from "
                                       f"{module!r}, which is not a Keras activation; {_TRUST}", options=("unsafe",))
            continue
        if isinstance(module, str) and not module.startswith(("keras", "tf_keras")) \
                and not (module.startswith("tensorflow.python.ops.init_ops") and name in INITIALIZERS):
            raise CustomObjectError(f"{path}: unknown custom layer or object {name!r} ({where}, from the module "
                                    f"{module!r}); pass custom_objects= (a module or a dict) with its class",
                                    options=("custom_objects",))
        if name not in known:
            raise _unknown_class(path, name, where)
        if name in ("TFOpLambda", "SlicingOpLambda"):
            _check_tf_function(path, obj, where)
        inner = obj.get("config")
        if isinstance(inner, dict):
            for key in ("activation", "recurrent_activation"):
                value = inner.get(key)
                if isinstance(value, str) and value not in ACTIVATIONS:
                    raise UnsafeModelError(f"{path}: {where} has the activation {value!r}, which is not a Keras "
                                           f"activation; {_TRUST}", options=("unsafe",))


def _unknown_class(path: Path, name: str, where: str) -> Exception:
    import keras

    if isinstance(getattr(keras.layers, name, None), type):
        return UnsafeModelError(f"{path}: {where} is a Keras {name}, which is not a layer an image classifier is "
                                f"made of, so edgecls does not load it in safe mode; {_TRUST}", options=("unsafe",))
    return CustomObjectError(f"{path}: unknown custom layer or object {name!r} ({where}); pass custom_objects= "
                             "(a module or a dict) with its class", options=("custom_objects",))


def _check_tf_function(path: Path, obj: dict, where: str) -> None:
    inner = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    function = inner.get("function")
    if not isinstance(function, str) or not (function.startswith(_TF_FUNCTION_PREFIXES) or function in _TF_FUNCTIONS):
        raise UnsafeModelError(f"{path}: {where} calls the TensorFlow function {function!r}, which is not a tensor "
                               f"operation edgecls knows to be safe; {_TRUST}", options=("unsafe",))


def _keras_op_names() -> frozenset[str]:
    """The class names of Keras 3's own tensor operations (``keras.ops``'s numpy, nn, math and image
    functions), which a functional model records as layers."""
    from keras.src.ops import image, math, nn, numpy
    from keras.src.ops.operation import Operation

    return frozenset(name for module in (numpy, nn, math, image) for name, value in vars(module).items()
                     if isinstance(value, type) and issubclass(value, Operation) and value is not Operation)


def check_saved_model(path: Path) -> None:
    """Refuse a SavedModel folder whose graphs hold an op outside :data:`SAFE_OPS` (reading a checkpoint
    allowed in what the saver's restore runs, writing one in what its save runs).

    Raises:
        UnsafeModelError: an op that can touch files, processes or Python, named with its function.
        ExportError: ``saved_model.pb`` cannot be read or parsed.
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString((path / "saved_model.pb").read_bytes())
    except (OSError, DecodeError, RecursionError) as exc:
        raise ExportError(f"{path}: not a readable SavedModel ({type(exc).__name__})") from None
    for meta in saved.meta_graphs:
        _check_meta_graph(path, meta)


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def _called(node_attrs: Any) -> Iterator[str]:
    """The functions a node's attributes name (``f``, ``then_branch``, ``body``, lists of branches)."""
    for value in node_attrs.values():
        if value.func.name:
            yield value.func.name
        for func in value.list.func:
            yield func.name


def _closure(roots: Iterable[str], edges: Callable[[str], Iterable[str]]) -> set[str]:
    """Every name reachable from ``roots`` along ``edges`` (the roots included)."""
    seen, stack = set(), list(roots)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(n for n in edges(name) if n not in seen)
    return seen


def _ancestors(nodes: dict[str, Any], roots: Iterable[str]) -> set[str]:
    """The graph nodes ``roots`` take their inputs from, transitively."""
    return _closure((r for r in roots if r in nodes),
                    lambda name: (n for n in map(_node_name, nodes[name].input) if n in nodes))


def _reach(functions: dict[str, Any], roots: Iterable[str]) -> set[str]:
    """The library functions ``roots`` call, transitively."""
    return _closure((r for r in roots if r in functions),
                    lambda name: (f for node in functions[name].node_def for f in _called(node.attr) if f in functions))


def _check_meta_graph(path: Path, meta: Any) -> None:
    graph = meta.graph_def
    nodes = {n.name: n for n in graph.node}
    functions = {f.signature.name: f for f in graph.library.function}
    saver = meta.saver_def
    save_roots = [_node_name(saver.save_tensor_name)] if saver.save_tensor_name else []
    restore_roots = [_node_name(saver.restore_op_name)] if saver.restore_op_name else []
    save_nodes, restore_nodes = _ancestors(nodes, save_roots), _ancestors(nodes, restore_roots)
    others = [n for n in nodes if n not in save_nodes | restore_nodes]
    other_fns = _reach(functions, [f for n in others for f in _called(nodes[n].attr)]
                       + list(meta.object_graph_def.concrete_functions))
    # a node or function the signatures, init ops or objects also reach gets no saver allowance
    shared = _ancestors(nodes, others)
    restore_fns = _reach(functions, [f for n in restore_nodes - shared for f in _called(nodes[n].attr)]) - other_fns
    save_fns = _reach(functions, [f for n in save_nodes - shared - restore_nodes
                                  for f in _called(nodes[n].attr)]) - other_fns - restore_fns
    for name, node in nodes.items():
        allowed = _RESTORE_OPS if name in restore_nodes - shared else _SAVE_OPS if name in save_nodes - shared else ()
        _check_op(path, node.op, allowed, "the graph")
    for name, function in functions.items():
        allowed = _RESTORE_OPS if name in restore_fns else _SAVE_OPS if name in save_fns else ()
        for node in function.node_def:
            _check_op(path, node.op, allowed, f"function {name}")


def _check_op(path: Path, op: str, allowed: Iterable[str], where: str) -> None:
    if op in SAFE_OPS or op in allowed:
        return
    effect = _OP_EFFECTS.get(op, "is not a tensor operation edgecls knows to be safe")
    raise UnsafeModelError(f"{path}: the SavedModel runs the op {op!r} ({where}), which {effect}; edgecls loads a "
                           f"SavedModel in safe mode only when every op is a tensor operation; {_TRUST}",
                           options=("unsafe",))
