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
from edgecls.runtime.tensors import TensorInfo

__all__ = ["open_litert", "LiteRTBackend", "LiteRTGpuBackend", "read_appended_card", "metadata_names",
           "check_flatbuffer"]

# tensorflow.lite itself is a lazy alias whose module has no Interpreter attribute: name the real module.
_INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite.python.interpreter")
_INSTALL_HINT = "pip install 'edgecls[tflite]' (installs ai-edge-litert)"


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


def _load_interpreter(path: Path, threads: int) -> tuple[Any, str]:
    interpreter_cls, engine = _interpreter_class()
    with engine_output(), engine_errors(ModelLoadError, f"{path}: cannot load TFLite model"):
        interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
        details = interpreter.get_input_details(), interpreter.get_output_details()  # names may not be UTF-8
    if len(details[0]) != 1 or len(details[1]) != 1:
        raise ModelLoadError(f"{path}: an image classifier needs exactly one input and one output tensor")
    return interpreter, engine


class LiteRTBackend:
    """CPU inference through the LiteRT Interpreter."""

    device = "cpu"

    def __init__(self, path: Path, config: BackendConfig, notes: tuple[str, ...] = ()) -> None:
        self._path = path
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
        self._direct = self._fixed in (None, 1) and all(int(d) > 0 for d in sizes)
        """Whether :meth:`run_filled` may write the interpreter's input tensor (one image of a fixed size)."""
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
            if self._batch != 1:
                self._resize(1)
            fill(self._interpreter.tensor(self._in["index"])()[0])  # the view dies before invoke, as it must
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._out["index"])
        finally:
            self._lock.release()

    def _resize(self, n: int) -> None:
        with engine_output():  # XNNPACK announces itself again
            self._interpreter.resize_tensor_input(self._in["index"], [n, *self._in["shape"][1:]])
            self._interpreter.allocate_tensors()
        self._batch = n

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._interpreter is None:
                raise ClosedError("the model was closed: open it again to classify")
            if batch.shape[0] != self._batch:
                self._resize(batch.shape[0])
            self._interpreter.set_tensor(self._in["index"], batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._out["index"])

    def embedded_card(self) -> str | None:
        return read_appended_card(self._path)

    def close(self) -> None:
        with self._lock:
            self._interpreter = None


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
    check_flatbuffer(path)
    check_tflite_graph(path)
    notes = () if schema_available() else (UNCHECKED_NOTE,)
    if config.device == "cpu":
        return LiteRTBackend(path, config, notes=notes)
    try:
        return LiteRTGpuBackend(path, config)
    except DeviceUnavailableError as exc:
        if config.device == "gpu":
            raise
        return LiteRTBackend(path, config, notes=(*notes, f"device='auto': no GPU, running on CPU ({exc})"))
