"""Atomic file writes for exports: :func:`edgecls.runtime.files.write_whole`, fsynced, with the
converters' errors, and a check that the output folder takes files at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgecls.converters.errors import ExportError, OutputExistsError
from edgecls.runtime.files import current_umask, write_whole

__all__ = ["atomic_write_bytes", "check_writable", "current_umask"]


def check_writable(folder: Path) -> None:
    """Fail early (before any conversion work) when ``folder`` cannot take new files.

    Raises:
        ExportError: read-only, full, or not a folder.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".edgecls-probe.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise ExportError(f"{folder}: cannot write to the output folder ({exc.strerror or exc})") from None


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (fsynced before the rename).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ExportError: the folder is missing, read-only or full.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass force=True to overwrite", options=("force",))
    try:
        write_whole(path, data, fsync=True)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from None
