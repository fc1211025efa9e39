"""The backend protocol: the small surface behind which inference engines plug in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edgecls.runtime.tensors import TensorInfo

__all__ = ["Backend", "BackendConfig", "BackendSpec", "DEVICES", "Fill", "in_steps", "run_filled"]

DEVICES = ("cpu", "gpu", "npu", "auto")

Fill = Callable[[np.ndarray], None]
"""Writes one model input (no batch axis) into the array it is given."""


@dataclass(frozen=True)
class BackendConfig:
    """What the caller asked of the engine."""

    num_threads: int | None = None
    device: str = "cpu"
    profile: bool = False
    """Record per-operator timings (``operator_times``); only backends with a profiler accept it."""
    cache_dir: str | None = None
    """A folder for the engine's compiled models (OpenVINO), so that the next start skips compiling."""


@runtime_checkable
class Backend(Protocol):
    """A loaded model ready to run.

    Implementations must make :meth:`run` safe to call from several threads at
    once (serializing internally where the engine is not thread-safe). An engine with an input buffer of its
    own may also offer ``run_filled(fill, spare)``: see :func:`run_filled`.
    """

    name: str
    """Engine name, e.g. ``"litert"`` or ``"onnxruntime"``."""
    device: str
    """``"cpu"``, ``"gpu"`` or ``"npu"``: where inference actually runs."""
    accelerators: tuple[str, ...]
    """Providers or delegates in use, most preferred first."""
    input: TensorInfo
    output: TensorInfo
    notes: tuple[str, ...]
    """What the backend decided on the caller's behalf (fallbacks)."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch (N, ...) of input tensors; returns the raw (N, classes) output."""
        ...

    def embedded_card(self) -> str | None:
        """The model card JSON stored in the model file, if any."""
        ...

    def close(self) -> None:
        """Release the engine's resources; further runs are errors."""
        ...


@dataclass(frozen=True)
class BackendSpec:
    """A registry entry: how to open files of some suffixes with one engine."""

    name: str
    aliases: tuple[str, ...]
    suffixes: tuple[str, ...]
    extra: str
    """The pip extra that installs the engine: ``pip install 'edgecls[EXTRA]'``."""
    open: Callable[[Path, BackendConfig], Backend]
    engine_module: str = ""
    """The engine's main module (what a cold start imports)."""
    devices: tuple[str, ...] = ("cpu", "gpu", "auto")
    """The devices it can be asked for."""
    modules: tuple[str, ...] = ()
    """Top-level packages any one of which runs it (default: ``engine_module``'s)."""


def in_steps(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, step: int | None) -> np.ndarray:
    """``run`` over ``batch`` for a model whose file fixes its batch size to ``step`` (None: any size, one
    call): in steps of ``step``, the last one padded with zeros and its padding's outputs dropped."""
    if step is None or batch.shape[0] == step:
        return run(batch)
    parts = []
    for i in range(0, batch.shape[0], step):
        part = batch[i:i + step]
        if len(part) < step:
            part = np.concatenate([part, np.zeros((step - len(part), *part.shape[1:]), part.dtype)])
        parts.append(run(part)[:batch.shape[0] - i])
    return np.concatenate(parts)


def run_filled(backend: Backend, fill: Fill, spare: np.ndarray) -> np.ndarray:
    """Run one input that ``fill`` writes: straight into the engine's own input buffer when the backend
    offers that (an optional ``run_filled(fill, spare)`` method), else into ``spare`` (a (1, ...) input
    buffer) which is then run. Returns the raw (1, classes) output; raises what ``fill`` or the engine raise."""
    own = getattr(backend, "run_filled", None)
    if own is not None:
        return own(fill, spare)
    fill(spare[0])
    return backend.run(spare)
