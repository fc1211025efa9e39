"""ONNX Runtime backend with an ordered execution-provider list.

``InferenceSession.run`` is thread-safe, so no lock is taken: concurrent
``classify`` calls run in parallel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.backends.base import BackendConfig, in_steps
from edgecls.runtime.backends.onnx_external import check_external_data
from edgecls.runtime.card import CARD_METADATA_KEY
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

__all__ = ["open_onnxruntime", "OnnxRuntimeBackend", "GPU_PROVIDERS"]

GPU_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
)

_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailableError(
            "ONNX Runtime is not installed; pip install 'edgecls[onnx]' (or onnxruntime-gpu for CUDA)",
            extra="onnx",
        ) from None
    return onnxruntime


def _providers(ort: Any, device: str, path: Path) -> list[str]:
    available = ort.get_available_providers()
    gpu = [p for p in GPU_PROVIDERS if p in available]
    if device == "gpu" and not gpu:
        raise DeviceUnavailableError(
            f"{path}: this onnxruntime has no GPU execution provider (available: {', '.join(available)}); "
            "pip install onnxruntime-gpu (CUDA/TensorRT), onnxruntime-directml or onnxruntime-rocm"
        )
    return (gpu if device != "cpu" else []) + ["CPUExecutionProvider"]


def _tensor_info(arg: Any, path: Path) -> TensorInfo:
    dtype = _ONNX_DTYPES.get(arg.type)
    if dtype is None:
        raise ModelLoadError(f"{path}: tensor {arg.name!r} has type {arg.type}, not an image or score tensor")
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
    return TensorInfo(arg.name, shape, np.dtype(dtype), None)


class OnnxRuntimeBackend:
    """Inference through an ``onnxruntime.InferenceSession``."""

    name = "onnxruntime"

    def __init__(self, path: Path, config: BackendConfig) -> None:
        ort = _import_ort()
        providers = _providers(ort, config.device, path)
        options = ort.SessionOptions()
        self._threads = config.num_threads or os.cpu_count() or 1
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._profile_dir = None
        if config.profile:
            import tempfile

            self._profile_dir = tempfile.TemporaryDirectory(prefix="edgecls-ort-profile-")
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(self._profile_dir.name) / "profile")
        check_external_data(path)
        with engine_output(), engine_errors(ModelLoadError, f"{path}: cannot load ONNX model"):
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
            inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
            if len(inputs) != 1 or len(outputs) != 1:
                raise ModelLoadError(f"{path}: an image classifier needs exactly one input and one output tensor")
            self.input = _tensor_info(inputs[0], path)  # names come from the file: they may not be UTF-8
            self.output = _tensor_info(outputs[0], path)
        self.accelerators = tuple(self._session.get_providers())
        used_gpu = any(p in GPU_PROVIDERS for p in self.accelerators)
        if config.device == "gpu" and not used_gpu:
            raise DeviceUnavailableError(
                f"{path}: onnxruntime could not start a GPU provider (check the CUDA/cuDNN install)"
            )
        self.device = "gpu" if used_gpu else "cpu"
        self.notes: tuple[str, ...] = ()
        if config.device == "auto" and not used_gpu:
            self.notes = ("device='auto': no GPU execution provider, running on CPU",)
        self._path = path

    @property
    def num_threads(self) -> int:
        return self._threads

    def run(self, batch: np.ndarray) -> np.ndarray:
        session = self._session
        if session is None:
            raise ClosedError("the model was closed: open it again to classify")
        return in_steps(lambda part: session.run(None, {self.input.name: part})[0], batch, self.input.shape[0])

    def embedded_card(self) -> str | None:
        return self._session.get_modelmeta().custom_metadata_map.get(CARD_METADATA_KEY)

    def operator_times(self, top: int = 10) -> list:
        """The ``top`` slowest nodes over the runs so far (opened with ``profile=True``); ends profiling.

        Raises:
            OptionError: the backend was not opened with ``profile=True``.
        """
        from edgecls.runtime.backends.profiling import slowest_operators

        if self._profile_dir is None:
            raise OptionError(f"{self._path}: opened without profile=True: no operator timings")
        return slowest_operators(self._session.end_profiling(), top)

    def close(self) -> None:
        self._session = None
        if self._profile_dir is not None:
            self._profile_dir.cleanup()


def open_onnxruntime(path: Path, config: BackendConfig) -> OnnxRuntimeBackend:
    """Open an .onnx file. Raises ModelLoadError, BackendUnavailableError, DeviceUnavailableError."""
    return OnnxRuntimeBackend(path, config)
