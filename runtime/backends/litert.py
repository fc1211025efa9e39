"""LiteRT (TFLite) backend: ``ai_edge_litert``, else ``tflite_runtime``, else ``tensorflow.lite``.

CPU inference uses the LiteRT ``Interpreter`` (XNNPACK). ``device="gpu"`` uses
LiteRT's ``CompiledModel`` with the GPU accelerator (ai-edge-litert only).
The Interpreter is not thread-safe, so :meth:`run` holds a lock around
set-input / invoke / get-output. :meth:`run_filled` lets one image be written straight into the
interpreter's input tensor (no copy) while it holds the lock; a thread that finds the lock taken
writes its own buffer instead, so preprocessing in other threads still overlaps.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.backends.appended_zip import read_appended_card
from edgecls.runtime.backends.base import BackendConfig, in_steps
from edgecls.runtime.backends.tflite_graph import check_tflite_graph, schema_available
from edgecls.runtime.card import Quantization
from edgecls.runtime.engine_log import engine_output
from edgecls.runtime.errors import (
    BackendUnavailableError,
    ClosedError,
    DeviceUnavailableError,
    ModelLoadError,
    OptionError,
    engine_errors,
)
from edgecls.runtime.files import file_identity
from edgecls.runtime.tensors import TensorInfo

__all__ = ["open_litert", "LiteRTBackend", "BATCH_STEP", "LiteRTGpuBackend", "read_appended_card",
           "metadata_names", "check_flatbuffer"]

# tensorflow.lite itself is a lazy alias whose module has no Interpreter attribute: name the real module.
_INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite.python.interpreter")
_INSTALL_HINT = "pip install 'edgecls[tflite]' (installs ai-edge-litert)"
_log = logging.getLogger("edgecls")
BATCH_STEP = 8
"""Images per engine call of a batch (see :class:`LiteRTBackend`); a batch's last ``n % 8`` run one at a time."""


def _interpreter_class() -> tuple[type, str]:
    errors = []
    for module_name in _INTERPRETER_MODULES:
        try:
            module = importlib.import_module(module_name)
            return module.Interpreter, module_name.split(".")[0]
        except Exception as exc:  # a broken install (e.g. tflite_runtime on numpy 2) is not usable either
            errors.append(f"{module_name}: {exc.__class__.__name__}")
    raise BackendUnavailableError(
        f"no TFLite engine is installed ({'; '.join(errors)}); {_INSTALL_HINT}", extra="tflite"
    )


def metadata_names(path: Path) -> list[str] | None:
    """Names of the model's flatbuffer metadata entries (``TFLITE_METADATA`` for standard
    TFLite metadata); None when the file cannot be parsed or no schema module is installed."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        return None
    try:
        data = path.read_bytes()
        model = schema.Model.GetRootAs(data, 0)
        return [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    except Exception:
        return None


def _tensor_info(details: dict[str, Any]) -> TensorInfo:
    shape_sig = details.get("shape_signature", details["shape"])
    shape = tuple(None if int(d) < 0 else int(d) for d in shape_sig)
    scale, zero_point = details.get("quantization", (0.0, 0))
    quant = Quantization(float(scale), int(zero_point)) if scale else None
    return TensorInfo(details["name"], shape, np.dtype(details["dtype"]), quant)


UNCHECKED_NOTE = ("the graph was not checked before running (that needs ai-edge-litert's schema module): "
                  "open models from unknown sources in a separate process")


def check_flatbuffer(path: Path) -> None:
    """Raises ModelLoadError: ``path`` is not a TFLite flatbuffer."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelLoadError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")


def _load_interpreter(path: Path, threads: int, content: bytes | None = None) -> tuple[Any, str]:
    interpreter_cls, engine = _interpreter_class()
    source = {"model_path": str(path)} if content is None else {"model_content": content}
    with engine_output(), engine_errors(ModelLoadError, f"{path}: cannot load TFLite model"):
        interpreter = interpreter_cls(**source, num_threads=threads)
        interpreter.allocate_tensors()
        details = interpreter.get_input_details(), interpreter.get_output_details()  # names may not be UTF-8
    if len(details[0]) != 1 or len(details[1]) != 1:
        raise ModelLoadError(f"{path}: an image classifier needs exactly one input and one output tensor")
    return interpreter, engine


class LiteRTBackend:
    """CPU inference through the LiteRT Interpreter.

    Single images run on the interpreter made at load. A batch runs in steps of :data:`BATCH_STEP` images on a
    second interpreter (made from the same file at the first such batch), the rest one image at a time on the
    first: neither is ever resized. A resize re-plans XNNPACK (measured here: about 2.5 ms for MobileNetV2 int8,
    more than one image's inference, and 5 ms for fp32), which a frame's varying number of regions would pay
    on every frame. The second interpreter is made only from the file as it was at load (same inode, size and
    times); a file replaced or written since runs its batches one image at a time on the first.
    """

    device = "cpu"

    def __init__(self, path: Path, config: BackendConfig, notes: tuple[str, ...] = (),
                 identity: tuple[int, ...] | None = None) -> None:
        self._path = path
        self._identity = identity if identity is not None else file_identity(os.stat(path))
        """The file as it was checked and loaded (:func:`~edgecls.runtime.files.file_identity`): what a batch
        interpreter may be made from."""
        self._threads = config.num_threads or os.cpu_count() or 1
        self._interpreter, engine = _load_interpreter(path, self._threads)
        self.name = "litert" if engine == "ai_edge_litert" else engine
        self.accelerators = ("XNNPACK",)
        self.notes = notes
        self._in = self._interpreter.get_input_details()[0]
        self._out = self._interpreter.get_output_details()[0]
        self.input = _tensor_info(self._in)
        self.output = _tensor_info(self._out)
        self._batch = int(self._in["shape"][0])
        signature = self._in.get("shape_signature")
        self._fixed = None if signature is None or len(signature) == 0 or signature[0] == -1 else self._batch
        """The batch size a file fixes in its signature (run in steps of it), None when it may be resized."""
        sizes = self._in["shape"][1:] if signature is None or len(signature) == 0 else signature[1:]
        self._direct = self._fixed in (None, 1) and self._batch == 1 and all(int(d) > 0 for d in sizes)
        """Whether :meth:`run_filled` may write the interpreter's input tensor (one image of a fixed size)."""
        self._many: Any = None
        """The interpreter for steps of :data:`BATCH_STEP` images (None until the first batch that has one)."""
        self._many_content: bytes | None = None  # the bytes it was made from, alive as long as it is
        self._lock = threading.Lock()

    @property
    def num_threads(self) -> int:
        return self._threads

    def run(self, batch: np.ndarray) -> np.ndarray:
        return in_steps(self._invoke, batch, self._fixed)

    def run_filled(self, fill: Callable[[np.ndarray], None], spare: np.ndarray) -> np.ndarray:
        """Run one input that ``fill`` writes straight into the interpreter's input tensor (no copy of it);
        while another thread runs the model, or for a file whose batch or size is not 1 × its input's,
        ``fill`` writes ``spare`` (a (1, ...) buffer) which is run as usual (so the two threads overlap)."""
        if not self._direct or not self._lock.acquire(blocking=False):
            fill(spare[0])
            return self.run(spare)
        try:
            if self._interpreter is None:
                raise ClosedError("the model was closed: open it again to classify")
            fill(self._interpreter.tensor(self._in["index"])()[0])  # the view dies before invoke, as it must
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._out["index"])
        finally:
            self._lock.release()

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._interpreter is None:
                raise ClosedError("the model was closed: open it again to classify")
            n = batch.shape[0]
            if n == self._batch:
                return self._run(self._interpreter, batch)
            many = self._batches() if n >= BATCH_STEP else None
            stepped = n - n % BATCH_STEP if many is not None else 0
            parts = [self._run(many, batch[i:i + BATCH_STEP]) for i in range(0, stepped, BATCH_STEP)]
            parts += [self._run(self._interpreter, batch[i:i + 1]) for i in range(stepped, n)]
            return np.concatenate(parts)

    def _run(self, interpreter: Any, batch: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(self._in["index"], batch)
        interpreter.invoke()
        return interpreter.get_tensor(self._out["index"])

    def _batches(self) -> Any:
        """The interpreter for steps of :data:`BATCH_STEP` images, made at the first call from the file as it
        was at load; None (with one log line) when the file was replaced or written since."""
        if self._many is None and self._identity:
            content = _same_file(self._path, self._identity)
            if content is None:
                _log.warning("%s: the file changed since it was loaded; its batches run one image at a time "
                             "(reload the model to batch again)", self._path)
                self._identity = ()  # warned once
                return None
            many, _ = _load_interpreter(self._path, self._threads, content)
            with engine_output():  # XNNPACK announces itself again
                many.resize_tensor_input(self._in["index"], [BATCH_STEP, *self._in["shape"][1:]])
                many.allocate_tensors()
            self._many, self._many_content = many, content
        return self._many

    def embedded_card(self) -> str | None:
        return read_appended_card(self._path)

    def close(self) -> None:
        with self._lock:
            self._interpreter = self._many = self._many_content = None


def _same_file(path: Path, identity: tuple[int, ...]) -> bytes | None:
    """The bytes of ``path`` when it is still the file of ``identity``
    (:func:`~edgecls.runtime.files.file_identity`), else None."""
    try:
        with open(path, "rb") as file:
            if file_identity(os.fstat(file.fileno())) != identity:
                return None
            content = file.read()
            same = file_identity(os.fstat(file.fileno())) == identity  # not written while it was read
    except OSError:
        return None
    return content if same else None


class LiteRTGpuBackend:
    """GPU inference through LiteRT's CompiledModel (ai-edge-litert only)."""

    device = "gpu"
    name = "litert"

    def __init__(self, path: Path, config: BackendConfig) -> None:
        try:
            from ai_edge_litert.compiled_model import CompiledModel
            from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        except ImportError:
            raise DeviceUnavailableError(
                f"{path}: the LiteRT GPU accelerator needs ai-edge-litert; pip install 'edgecls[tflite]'",
                extra="tflite",
            ) from None
        interpreter, _ = _load_interpreter(path, 1)  # tensor details with quantization
        self.input = _tensor_info(interpreter.get_input_details()[0])
        self.output = _tensor_info(interpreter.get_output_details()[0])
        del interpreter
        with engine_output(), engine_errors(DeviceUnavailableError, f"{path}: LiteRT found no usable GPU; use device='cpu', "
                           "or device='auto' to fall back"):
            self._model = CompiledModel.from_file(str(path), hardware_accel=HardwareAccelerator.GPU)
        self.accelerators = ("GPU",) if self._model.is_fully_accelerated() else ("GPU", "CPU")
        self.notes: tuple[str, ...] = ()
        self._path = path
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        rows = []
        with self._lock:
            if self._model is None:
                raise ClosedError("the model was closed: open it again to classify")
            inputs = self._model.create_input_buffers(0)
            outputs = self._model.create_output_buffers(0)
            classes = self.output.shape[-1]
            for item in batch:
                inputs[0].write(np.ascontiguousarray(item[None]))
                self._model.run_by_index(0, inputs, outputs)
                rows.append(outputs[0].read(classes, self.output.dtype))
        return np.stack(rows)

    def embedded_card(self) -> str | None:
        return read_appended_card(self._path)

    def close(self) -> None:
        with self._lock, engine_output():  # the accelerator says goodbye on fd 2
            self._model = None


def open_litert(path: Path, config: BackendConfig):
    """Open a .tflite file.

    Raises:
        ModelLoadError: not a TFLite flatbuffer, a malformed graph (``tflite_graph``), or LiteRT refused it.
        BackendUnavailableError, DeviceUnavailableError: see the classes.
        OptionError: ``profile=True``: LiteRT's Python API has no per-operator profiler.
    """
    if config.profile:
        raise OptionError(f"{path}: LiteRT's Python API has no per-operator profiler (its C++ benchmark_model "
                          "tool has: --enable_op_profiling=true); profile the .onnx export instead")
    identity = file_identity(os.stat(path))  # the file as checked here: what a batch interpreter may be made from
    check_flatbuffer(path)
    check_tflite_graph(path)
    notes = () if schema_available() else (UNCHECKED_NOTE,)
    if config.device == "cpu":
        return LiteRTBackend(path, config, notes=notes, identity=identity)
    try:
        return LiteRTGpuBackend(path, config)
    except DeviceUnavailableError as exc:
        if config.device == "gpu":
            raise
        return LiteRTBackend(path, config, notes=(*notes, f"device='auto': no GPU, running on CPU ({exc})"),
                             identity=identity)
