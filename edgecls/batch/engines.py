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
from edgecls.runtime.registry import Registry

__all__ = ["Job", "EngineReport", "Engine", "register_engine", "get_engine", "engine_names", "ENGINES"]


@dataclass(frozen=True)
class Job:
    """One run: the model (path and facts), the options, the output folder and this run's id."""

    model_path: Path
    facts: ModelFacts
    options: BatchOptions
    store: ResultStore
    run_id: str


Engine = Callable[[Job, list[Item], Progress], EngineReport]

ENGINES: Registry[str] = Registry("batch engine")
"""Each engine as ``"module:function"``, imported on first use."""


def register_engine(name: str, target: str, *, replace: bool = False) -> str:
    """Register ``"module:function"`` as the engine ``name``; returns ``target``.

    Raises:
        OptionError: ``target`` is not ``"module:function"``, or ``name`` is taken and ``replace`` is false.
    """
    module, _, function = target.partition(":")
    if not module or not function:
        raise OptionError(f"a batch engine is registered as 'module:function', got {target!r}")
    return ENGINES.register(name, target, replace=replace)


def engine_names() -> tuple[str, ...]:
    """The registered engines' names, in registration order."""
    return tuple(ENGINES)


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``.

    Raises:
        OptionError: no such engine.
    """
    if name not in ENGINES:
        raise OptionError(f"engine must be one of {ENGINES.choices()}, got {name!r}", options=("engine",))
    module, function = ENGINES[name].split(":")
    return getattr(import_module(module), function)


register_engine("local", "edgecls.batch.local:run_local")
register_engine("ray", "edgecls.batch.ray_engine:run_ray")
