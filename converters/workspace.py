"""The export's scratch folder, and the removal of those that killed exports left behind.

An export works in ``$TMPDIR/edgecls-export-*``: the converters' intermediate files, and (as the process's
temporary folder for the export's duration) those TensorFlow, tf2onnx and the TFLite converter make of
their own, such as autograph's ``__autograph_generated_file*.py``. The folder is removed when the export
ends, however it ends, short of ``kill -9``: then it stays, and the next export removes it. Each folder
holds a lock its export keeps for its lifetime (``flock``, which the kernel drops with the process), so a
folder whose lock can be taken belongs to no running export, in this PID namespace or any other.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: no clean-up of others' leftovers there
    fcntl = None

__all__ = ["export_workspace", "remove_stale_workspaces", "PREFIX"]

PREFIX = "edgecls-export-"
LOCK_NAME = ".lock"
UNLOCKED_STALE_S = 3600.0
"""A folder without a lock (made by an older edgecls) is stale once this old."""


def _take_lock(folder: Path) -> int | None:
    """The folder's lock, taken (an open descriptor), or None when a running export holds it."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_stale_workspaces(parent: Path | None = None) -> list[Path]:
    """Remove the export folders in ``parent`` (default: the temporary folder) that belong to no running
    export and to this user; returns them. Never raises for a folder it cannot remove."""
    if fcntl is None:
        return []
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for folder in parent.glob(f"{PREFIX}*"):
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not folder.is_dir() or folder.is_symlink() or info.st_uid != os.getuid():
            continue
        fd = _take_lock(folder)
        if fd is None:
            continue
        if fd == -1 and time.time() - info.st_mtime < UNLOCKED_STALE_S:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if fd >= 0:
            os.close(fd)
        removed.append(folder)
    return removed


@contextmanager
def export_workspace() -> Iterator[Path]:
    """A new export folder, locked, and the process's temporary folder for the block (restored after);
    removed at the end. Stale folders of killed exports are removed first."""
    remove_stale_workspaces()
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    lock = None
    if fcntl is not None:
        lock = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    scratch = root / "tmp"
    scratch.mkdir()
    previous = tempfile.tempdir
    tempfile.tempdir = str(scratch)
    try:
        yield root
    finally:
        tempfile.tempdir = previous
        shutil.rmtree(root, ignore_errors=True)
        if lock is not None:
            os.close(lock)
