"""The registry of batch engines: ``local`` (a process pool) and ``ray`` (Ray Data).

An engine classifies a list of items for a :class:`Job` and commits rows to the job's output folder,
reporting counts to a :class:`~edgecls.batch.progress.Progress`. Engines are imported on first use, so
``--engine local`` never imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from edgecls.batch.inputs import Item
from edgecls.batch.options import BatchOptions, EngineReport
from edgecls.batch.output import ResultStore
from edgecls.batch.progress import Progress
from edgecls.batch.rows import ModelFacts
from edgecls.runtime.errors import OptionError

__all__ = ["Job", "EngineReport", "Engine", "register_engine", "get_engine", "engine_names"]


@dataclass(frozen=True)
class Job:
    """One run: the model (path and facts), the options, the output folder and this run's id."""

    model_path: Path
    facts: ModelFacts
    options: BatchOptions
    store: ResultStore
    run_id: str


Engine = Callable[[Job, list[Item], Progress], EngineReport]

_ENGINES: dict[str, str] = {
    "local": "edgecls.batch.local:run_local",
    "ray": "edgecls.batch.ray_engine:run_ray",
}


def register_engine(name: str, target: str) -> None:
    """Register ``"module:function"`` as the engine ``name``."""
    _ENGINES[name] = target


def engine_names() -> tuple[str, ...]:
    return tuple(_ENGINES)


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``.

    Raises:
        OptionError: no such engine.
    """
    target = _ENGINES.get(name)
    if target is None:
        raise OptionError(f"engine must be one of {', '.join(_ENGINES)}, got {name!r}", options=("engine",))
    module, function = target.split(":")
    return getattr(import_module(module), function)
