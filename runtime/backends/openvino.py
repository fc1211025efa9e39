"""OpenVINO backend: the exported ``.onnx`` and ``.tflite`` files on Intel CPUs, integrated GPUs and NPUs.

The model is read by OpenVINO's own ONNX and TFLite front ends and compiled for the device with the
latency hint (one stream, ``INFERENCE_NUM_THREADS`` engine threads on the CPU) and OpenVINO's default
precision (bf16 for float layers on CPUs that have it; ``EDGECLS_OPENVINO_PRECISION=f32`` for exact f32). The batch-1 model is
compiled with a static shape (measured faster than a dynamic one on this CPU); a batch of another size
runs on a second, dynamic-batch compilation made on first use (CPU), or in steps of one (GPU, NPU: they
want static shapes). With a cache folder (``BackendConfig.cache_dir``, else ``EDGECLS_CACHE_DIR``) the
compiled model is kept there and the next start loads it instead of compiling again. A GPU or NPU
that is not there falls back to the CPU with a note (as OpenVINO's own AUTO device does). Nothing from
the file runs beyond its graph: an ``.onnx`` file's external data must lie beside it, and a ``.tflite``
graph passes the same structural check as for LiteRT.

One infer request per compiled model, behind a lock: :meth:`run` is safe from several threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.backends.appended_zip import read_appended_card
from edgecls.runtime.backends.base import BackendConfig, in_steps
from edgecls.runtime.card import CARD_METADATA_KEY, Quantization
from edgecls.runtime.engine_log import engine_output
from edgecls.runtime.errors import BackendUnavailableError, ClosedError, ModelLoadError, OptionError, engine_errors
from edgecls.runtime.tensors import TensorInfo

__all__ = ["OpenVINOBackend", "open_openvino", "CACHE_ENV", "PRECISION_ENV", "pick_device"]

CACHE_ENV = "EDGECLS_CACHE_DIR"
"""A folder for compiled models (OpenVINO's ``CACHE_DIR``), used when ``BackendConfig.cache_dir`` is None."""
PRECISION_ENV = "EDGECLS_OPENVINO_PRECISION"
"""OpenVINO's ``INFERENCE_PRECISION_HINT`` (``f32`` for results equal to the other engines'); unset: OpenVINO's
default, which runs float layers in bf16 on CPUs that have it (this one: 0.99+ top-1 agreement, measured)."""
_DEVICES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise BackendUnavailableError("OpenVINO is not installed; pip install 'edgecls[openvino]'",
                                      extra="openvino") from None
    return openvino


def pick_device(asked: str, available: list[str]) -> tuple[str, str | None]:
    """The OpenVINO device for ``asked`` (``cpu``, ``gpu``, ``npu``, ``auto``: a GPU, else an NPU, else
    the CPU) among ``available`` (``Core.available_devices``: ``CPU``, ``GPU.0``, ``NPU``...), and the note
    when it had to fall back to the CPU."""
    def present(kind: str) -> str | None:
        return next((d for d in available if d.split(".")[0] == kind), None)

    if asked == "cpu":
        return "CPU", None
    wanted = ("GPU", "NPU") if asked == "auto" else (_DEVICES[asked],)
    for kind in wanted:
        device = present(kind)
        if device is not None:
            return device, None
    return "CPU", (f"device={asked!r}: OpenVINO found no {' or '.join(wanted)} "
                   f"(devices: {', '.join(available) or 'none'}); running on CPU")


def _tensor_info(port: Any, quantization: Quantization | None, path: Path) -> TensorInfo:
    dtype = np.dtype(port.get_element_type().to_dtype())
    if dtype.kind not in "fiu":
        raise ModelLoadError(f"{path}: tensor has type {dtype}, not an image or score tensor")
    shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    names = port.get_names()
    return TensorInfo(sorted(names)[0] if names else "", shape, dtype, quantization if dtype.kind in "iu" else None)


class OpenVINOBackend:
    """Inference through an OpenVINO compiled model."""

    name = "openvino"

    def __init__(self, path: Path, config: BackendConfig) -> None:
        ov = _import_openvino()
        self._path = path
        quantization = _check_file(path)
        self._core = core = ov.Core()
        device, note = pick_device(config.device, list(core.available_devices))
        self.notes: tuple[str, ...] = (note,) if note else ()
        self.device = device.split(".")[0].lower()
        self.accelerators = (device,)
        cache = config.cache_dir or os.environ.get(CACHE_ENV) or None
        if cache:
            try:
                Path(cache).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OptionError(f"{cache}: cannot be the compiled-model cache ({exc.strerror or exc})",
                                  options=("cache_dir",)) from None
            core.set_property({"CACHE_DIR": str(cache)})
        self._threads = config.num_threads or os.cpu_count() or 1
        self._settings: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if os.environ.get(PRECISION_ENV):
            self._settings["INFERENCE_PRECISION_HINT"] = os.environ[PRECISION_ENV]
        if device == "CPU":
            self._settings["INFERENCE_NUM_THREADS"] = self._threads
        with engine_output(), engine_errors(ModelLoadError, f"{path}: OpenVINO cannot load the model"):
            model = core.read_model(str(path))
            if len(model.inputs) != 1 or len(model.outputs) != 1:
                raise ModelLoadError(f"{path}: an image classifier needs exactly one input and one output tensor")
            self.input = _tensor_info(model.inputs[0], quantization[0], path)
            self.output = _tensor_info(model.outputs[0], quantization[1], path)
            self._card = _onnx_card(model) if path.suffix.lower() == ".onnx" else None
            self._fixed = self.input.shape[0]  # a batch size the file fixes, None when it may vary
            self._dynamic = model.clone() if self._fixed is None and device == "CPU" else None
            if self._fixed is None:
                model.reshape({model.inputs[0]: [1, *model.inputs[0].get_partial_shape()[1:]]})
            self._one = core.compile_model(model, device, self._settings).create_infer_request()
        self._many: Any = None
        self._lock = threading.Lock()

    @property
    def num_threads(self) -> int:
        return self._threads

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._fixed is not None:
            return in_steps(lambda part: self._infer(part, self._one), batch, self._fixed)
        if len(batch) == 1 or self._dynamic is None:
            return in_steps(lambda part: self._infer(part, self._one), batch, 1)
        return self._infer(batch, self._batched())

    def _batched(self) -> Any:
        """The dynamic-batch request (compiled on first use)."""
        with self._lock:
            if self._many is None:
                with engine_output(), engine_errors(ModelLoadError, f"{self._path}: OpenVINO cannot compile the "
                                                    "model for batches"):
                    self._many = self._core.compile_model(self._dynamic, "CPU", self._settings).create_infer_request()
            return self._many

    def run_filled(self, fill: Callable[[np.ndarray], None], spare: np.ndarray) -> np.ndarray:
        """Run one input that ``fill`` writes straight into the request's input tensor; while another thread
        runs the model, or where that tensor is not ``spare``'s shape and type, ``fill`` writes ``spare``
        (a (1, ...) buffer) which is run as usual."""
        if self._fixed not in (None, 1) or None in self.input.shape[1:] or not self._lock.acquire(blocking=False):
            fill(spare[0])
            return self.run(spare)
        try:
            if self._one is None:
                raise ClosedError("the model was closed: open it again to classify")
            own = self._one.get_input_tensor(0).data
            if own.shape == spare.shape and own.dtype == spare.dtype:
                fill(own[0])
            else:  # what infer would convert
                fill(spare[0])
                own[...] = spare.reshape(own.shape).astype(own.dtype, copy=False)
            self._one.infer()
            return self._one.get_output_tensor(0).data.copy()
        finally:
            self._lock.release()

    def _infer(self, batch: np.ndarray, request: Any) -> np.ndarray:
        with self._lock:
            if self._one is None:
                raise ClosedError("the model was closed: open it again to classify")
            request.infer({0: np.ascontiguousarray(batch)})
            return request.get_output_tensor(0).data.copy()

    def embedded_card(self) -> str | None:
        return self._card if self._path.suffix.lower() == ".onnx" else read_appended_card(self._path)

    def close(self) -> None:
        with self._lock:
            self._one = self._many = self._dynamic = None


def _check_file(path: Path) -> tuple[Quantization | None, Quantization | None]:
    """The checks LiteRT and ONNX Runtime make before running a file, and a ``.tflite`` file's input and
    output quantization (OpenVINO does not report it). Raises ModelLoadError, BackendUnavailableError."""
    if path.suffix.lower() == ".onnx":
        from edgecls.runtime.backends.onnx_external import check_external_data

        check_external_data(path)
        return None, None
    from edgecls.runtime.backends.litert import check_flatbuffer
    from edgecls.runtime.backends.tflite_graph import check_tflite_graph, io_quantization

    check_flatbuffer(path)
    check_tflite_graph(path)
    return io_quantization(path)  # also: without the schema module the graph check cannot run; refused


def _onnx_card(model: Any) -> str | None:
    """The card in an ONNX file's metadata (OpenVINO keeps ``metadata_props`` under ``framework``)."""
    try:
        return model.get_rt_info(["framework", CARD_METADATA_KEY]).astype(str)
    except RuntimeError:  # no such entry
        return None


def open_openvino(path: Path, config: BackendConfig) -> OpenVINOBackend:
    """Open an ``.onnx`` or ``.tflite`` file with OpenVINO.

    Raises:
        ModelLoadError: the file fails the checks (see the module docstring) or OpenVINO refuses it.
        BackendUnavailableError: OpenVINO (extra ``openvino``) or, for ``.tflite``, ai-edge-litert's schema
            module is not installed.
        OptionError: ``profile=True`` (use ``benchmark_app -pc``, OpenVINO's own tool); a cache folder that
            cannot be created.
    """
    if config.profile:
        raise OptionError(f"{path}: per-operator timings come from ONNX Runtime (--backend onnxruntime); OpenVINO's "
                          "own benchmark_app -pc reports them for this engine")
    return OpenVINOBackend(path, config)
