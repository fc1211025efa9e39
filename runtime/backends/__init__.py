"""Registry of inference backends, keyed by name and by model-file suffix.

New engines plug in with :func:`register` (one module and one registration line: see the docs' "Add a
backend"); nothing else in the runtime knows which engines exist. Engine packages are imported only when a
model is opened.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from edgecls.runtime.backends.base import DEVICES, Backend, BackendConfig, BackendSpec, run_filled
from edgecls.runtime.errors import DeviceUnavailableError, ModelLoadError, OptionError, UnsupportedFormatError
from edgecls.runtime.registry import Registry

__all__ = [
    "Backend",
    "BackendConfig",
    "BackendSpec",
    "BACKENDS",
    "register",
    "registered",
    "installed",
    "spec_for",
    "open_backend",
    "run_filled",
]

BACKENDS: Registry[BackendSpec] = Registry("backend")
"""Every inference engine, by name and alias (``"auto"`` picks by file suffix, in registration order)."""


def register(spec: BackendSpec, *, replace: bool = False) -> BackendSpec:
    """Add a backend under its name and aliases; returns ``spec``.

    Raises:
        OptionError: the name or an alias is taken and ``replace`` is false (see :class:`Registry`).
    """
    if "auto" in (spec.name, *spec.aliases):
        raise OptionError('"auto" chooses a backend by suffix; a backend cannot be called so')
    return BACKENDS.register(spec.name, spec, aliases=spec.aliases, replace=replace)


def registered() -> tuple[BackendSpec, ...]:
    """The registered backends, in registration order."""
    return BACKENDS.entries()


def spec_for(path: Path, backend: str = "auto") -> BackendSpec:
    """The backend that opens ``path``.

    Raises:
        OptionError: ``backend`` is not a registered name; a plug-in that cannot be imported.
        UnsupportedFormatError: no backend handles the suffix, or the named one does not.
    """
    from edgecls.runtime.plugins import load_plugins

    load_plugins()  # a backend that EDGECLS_PLUGINS names is registered before any lookup
    suffix = path.suffix.lower()
    if backend != "auto":
        spec = BACKENDS.get(backend)
        if spec is None:
            raise OptionError(f"unknown backend {backend!r}; choose auto or one of: {_all_names()}",
                              options=("backend",))
        if suffix not in spec.suffixes:
            raise UnsupportedFormatError(
                f"{path}: backend {backend!r} reads {', '.join(spec.suffixes)} files, not {suffix or 'files without a suffix'}"
            )
        return spec
    readers = [spec for spec in registered() if suffix in spec.suffixes]
    if readers:  # the first installed one (an engine's own error names its extra when none is)
        return next((spec for spec in readers if installed(spec)), readers[0])
    known = ", ".join(s for spec in registered() for s in spec.suffixes)
    raise UnsupportedFormatError(f"{path}: unsupported model format {suffix or '(no suffix)'}; edgecls runs {known}")


def installed(spec: BackendSpec) -> bool:
    """Whether one of ``spec``'s engine packages can be imported (found without importing it)."""
    from importlib.util import find_spec

    modules = spec.modules or ((spec.engine_module.split(".")[0],) if spec.engine_module else ())
    if not modules:
        return True
    for module in modules:
        try:
            if find_spec(module) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def _all_names() -> str:
    return ", ".join(sorted(key for spec in registered() for key in (spec.name, *spec.aliases)))


THREADS_PER_CORE = 4
THREADS_ENV = "EDGECLS_NUM_THREADS"
"""Engine threads for every model opened without ``num_threads`` (as ``OMP_NUM_THREADS`` is for OpenMP)."""


def _threads_from_env() -> int:
    value = os.environ[THREADS_ENV].strip()
    if not value.isdigit() or int(value) <= 0:
        raise OptionError(f"{THREADS_ENV} must be a positive integer, got {value!r}", options=("num_threads",))
    return int(value)


def max_threads() -> int:
    """The most engine threads accepted: ``THREADS_PER_CORE`` per core (3,000 threads on 2 cores made
    ONNX Runtime deadlock under a memory limit)."""
    return THREADS_PER_CORE * (os.cpu_count() or 1)


def open_backend(path: str | Path, backend: str = "auto", config: BackendConfig | None = None) -> Backend:
    """Open a model file with the right engine.

    Raises:
        ModelLoadError: the file is missing, a folder, empty, or the engine rejects it.
        UnsupportedFormatError: see :func:`spec_for`.
        OptionError: unknown backend, device or thread count.
        BackendUnavailableError: the engine is not installed (names the pip extra).
        DeviceUnavailableError: ``device="gpu"`` but no usable GPU path.
    """
    config = config or BackendConfig()
    if config.num_threads is None and os.environ.get(THREADS_ENV):
        config = replace(config, num_threads=_threads_from_env())
    if config.device not in DEVICES:
        raise OptionError(f"device must be one of {', '.join(DEVICES)}, got {config.device!r}")
    if config.num_threads is not None and (
        isinstance(config.num_threads, bool) or not isinstance(config.num_threads, int) or config.num_threads <= 0
    ):
        raise OptionError(f"num_threads must be a positive integer, got {config.num_threads!r}",
                          options=("num_threads",))
    if config.num_threads is not None and config.num_threads > max_threads():
        raise OptionError(f"num_threads is {config.num_threads}; at most {max_threads()} on this machine "
                          f"({THREADS_PER_CORE} per core: more only adds contention)", options=("num_threads",))
    path = Path(path)
    spec = spec_for(path, backend)
    if config.device not in spec.devices:
        raise DeviceUnavailableError(f"{path}: {spec.name} cannot run on device {config.device!r} (it runs on "
                                     f"{', '.join(spec.devices)}); --backend openvino runs on Intel GPUs and NPUs")
    if not path.exists():
        raise ModelLoadError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a folder, not a model file")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path}: model file is empty (0 bytes)")
    return spec.open(path, config)


def _register_builtins() -> None:
    from edgecls.runtime.backends import litert, onnxrt, openvino

    register(BackendSpec("litert", ("tflite",), (".tflite",), "tflite", litert.open_litert,
                         "ai_edge_litert.interpreter", modules=("ai_edge_litert", "tflite_runtime", "tensorflow")))
    register(BackendSpec("onnxruntime", ("onnx", "ort"), (".onnx",), "onnx", onnxrt.open_onnxruntime, "onnxruntime"))
    register(BackendSpec("openvino", ("ov",), (".onnx", ".tflite"), "openvino", openvino.open_openvino, "openvino",
                         ("cpu", "gpu", "npu", "auto")))


_register_builtins()
