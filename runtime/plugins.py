"""Plug-in modules named by the user: ``EDGECLS_PLUGINS=pkg.module[,other.module]``.

A third-party backend, format, sink or batch engine registers itself when its module is imported
(:doc:`extending`). Python code calling edgecls imports it itself; for the ``edgecls`` command and the
processes it starts (batch workers, Ray actors, the service), ``EDGECLS_PLUGINS`` names the modules to
import first, as ``PYTEST_PLUGINS`` does for pytest. They are imported once per process, before the
first model is opened and before the CLI parses its command. A plug-in is code the user chose to run;
nothing in a model file ever names one.
"""

from __future__ import annotations

import importlib
import os
import threading

from edgecls.runtime.errors import OptionError

__all__ = ["PLUGINS_ENV", "load_plugins"]

PLUGINS_ENV = "EDGECLS_PLUGINS"

_loaded: set[str] = set()
_lock = threading.Lock()


def load_plugins() -> tuple[str, ...]:
    """Import every module ``EDGECLS_PLUGINS`` names (comma-separated) that this process has not imported
    yet; returns the names given.

    Raises:
        OptionError: a name that is not a module name, or a module that cannot be imported (the
            cause chained).
    """
    names = tuple(n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip())
    with _lock:
        for name in names:
            if name in _loaded:
                continue
            if not all(part.isidentifier() for part in name.split(".")):
                raise OptionError(f"{PLUGINS_ENV}: {name!r} is not a module name")
            try:
                importlib.import_module(name)
            except Exception as exc:
                raise OptionError(f"{PLUGINS_ENV}: cannot import {name} ({type(exc).__name__}: {exc})") from exc
            _loaded.add(name)
    return names
