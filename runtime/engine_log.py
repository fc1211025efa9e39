"""Keep the engines' native output off the terminal: LiteRT and ONNX Runtime write from C++.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` on every load, and its GPU
accelerator and ONNX Runtime's providers print when they start or give up, straight to file
descriptor 2. The library promises not to print, so every engine call that may write there
(opening a model, releasing a GPU model) runs inside :func:`engine_output`: for its duration fd 2
points at a temporary file, and what the engine wrote is passed, line by line, to the logger
``edgecls.engine`` at INFO. Nothing shows by default; ``logging.basicConfig(level=logging.INFO)``
(or ``edgecls -v``) shows it.

The redirection is process-wide: another thread that writes to fd 2 during a load (a few
milliseconds) lands in the same log. Concurrent loads share one redirection (counted).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

__all__ = ["engine_output", "LOGGER_NAME", "redirect_fds", "restore_fds"]

LOGGER_NAME = "edgecls.engine"
logger = logging.getLogger(LOGGER_NAME)

_lock = threading.Lock()
_state: dict[str, object] = {"depth": 0, "saved": None, "sink": None}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def redirect_fds(fds: tuple[int, ...], sink: IO[bytes]) -> list[tuple[int, int]]:
    """Point each of ``fds`` at ``sink`` (Python's streams flushed first); returns the ``(fd, saved copy)``
    pairs that :func:`restore_fds` puts back. The one way edgecls silences native output.

    Raises:
        OSError: one of ``fds`` is not open (nothing is redirected then).
    """
    _flush()
    saved: list[tuple[int, int]] = []
    try:
        for fd in fds:
            saved.append((fd, os.dup(fd)))
    except OSError:
        for _, copy in saved:
            os.close(copy)
        raise
    for fd, _ in saved:
        os.dup2(sink.fileno(), fd)
    return saved


def restore_fds(saved: list[tuple[int, int]]) -> None:
    """Undo :func:`redirect_fds`."""
    _flush()
    for fd, copy in saved:
        os.dup2(copy, fd)
        os.close(copy)


def _begin() -> None:
    with _lock:
        _state["depth"] = int(_state["depth"]) + 1
        if _state["depth"] > 1:
            return
        sink = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in _end)
        try:
            saved = redirect_fds((2,), sink)
        except OSError:  # no fd 2 (a daemon that closed it): nothing to keep clean
            sink.close()
            return
        _state["saved"], _state["sink"] = saved, sink


def _end() -> None:
    with _lock:
        _state["depth"] = int(_state["depth"]) - 1
        if _state["depth"] > 0 or _state["saved"] is None:
            return
        saved, sink = _state["saved"], _state["sink"]
        _state["saved"] = _state["sink"] = None
        restore_fds(saved)
        sink.seek(0)
        text = sink.read(1 << 20).decode("utf-8", "replace")  # bounded: a runaway engine is not our memory
        sink.close()
    for line in text.splitlines():
        if line.strip():
            logger.info("%s", line.rstrip())


@contextlib.contextmanager
def engine_output() -> Iterator[None]:
    """Send what engines write to fd 2 inside the block to the ``edgecls.engine`` logger (INFO)."""
    _begin()
    try:
        yield
    finally:
        _end()
