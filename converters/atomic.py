"""Atomic file writes: a temp file in the same folder, fsynced, then renamed.

An interrupted or failed write leaves no partial file under the final name. The file gets the mode
the umask gives a new file (``mkstemp`` creates 0600, which would survive the rename: a camera service
running as another user could not read the model).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgecls.converters.errors import ExportError, OutputExistsError

__all__ = ["atomic_write_bytes", "check_writable", "current_umask"]


def current_umask() -> int:
    """The process's umask, read without changing it where Linux reports it (``/proc/self/status``);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
    """Write ``data`` to ``path`` atomically.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ExportError: the folder is missing, read-only or full.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists; pass force=True to overwrite", options=("force",))
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would survive the rename
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
