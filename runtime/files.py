"""Writing a file whole (a new file under a random name beside it, then a rename), and knowing a file again.

The new file is opened with ``O_EXCL`` (``mkstemp``), so a link someone planted in the folder is never
followed, and no reader ever sees half a file under the final name. It gets the mode the umask gives a
new file (``mkstemp`` creates 0600, which would survive the rename: a camera service running as another
user could not read the result).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_whole", "current_umask", "file_identity"]


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


def write_whole(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], object], *,
                tmp_prefix: str | None = None, fsync: bool = False) -> None:
    """Write ``data`` (bytes, or a function that writes to the open file) to ``path`` whole.

    ``tmp_prefix``: how the temporary file's name starts (default ``.NAME.``; a random part and ``.tmp``
    follow), for callers that clean their own leftovers up by name. ``fsync``: flush to the disk before
    the rename (a file that must survive a power cut).

    Raises:
        OSError: the folder is missing, read-only or full; nothing is left behind.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                data(handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def file_identity(stat: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is replaced or rewritten: its device, inode, size, and modification and change
    times (the change time cannot be set back by a user)."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns
