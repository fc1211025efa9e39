"""Where hard-example captures go: the :class:`CaptureStore` protocol (the test seam, and the place for
other sinks) and :class:`FolderStore`, the class-folder layout on disk.

A capture is ``root/<label>/<stem>.jpg`` and its sidecar ``<stem>.json``; both appear whole (a new file
under a random temporary name, then a rename; the sidecar first). Several writers may share a folder: a store's start-up
cleanup removes only leftovers older than :data:`STALE_S`.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Protocol

__all__ = ["CaptureStore", "FolderStore", "STALE_S", "folder_name"]

_NAME = re.compile(r"^\d{8}-\d{6}-\d{6}(-[0-9a-f]{6})?-\d+$")
"""A capture's file stem: UTC date-time-microseconds, the writer's id (absent in older captures), then
its number in this writer."""
STALE_S = 600.0
"""A temporary file or a lone sidecar older than this (seconds) was left by a writer that was killed;
one that is younger may be another writer's, in flight."""


class CaptureStore(Protocol):
    """Where captures go: the test seam (a slow or failing disk) and the place for other sinks."""

    def existing(self) -> list[tuple[str, int]]:
        """Captures already there, as (name, bytes), any order; ``name`` is ``label/stem``."""

    def save(self, name: str, picture: bytes, sidecar: bytes) -> None:
        """Write ``name``.jpg and ``name``.json whole, or raise OSError."""

    def remove(self, name: str) -> None:
        """Remove a capture (both files); a missing one is not an error."""


class FolderStore:
    """Captures as files under ``root``: ``root/label/stem.jpg`` and ``root/label/stem.json``.

    Nothing outside ``root`` is read, written or removed, whatever someone who can write ``root`` plants
    there: a label folder that is a symbolic link is neither entered nor listed (``O_NOFOLLOW`` on every
    folder and file opened), and each file is first written under a new random name opened with
    ``O_EXCL`` (a planted link at that name fails the write instead of redirecting it), then renamed.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def existing(self) -> list[tuple[str, int]]:
        found = []
        for label in _subfolders(self.root):
            try:
                folder = self._open_label(label, create=False)
            except OSError:  # replaced by a link meanwhile, or removed
                continue
            try:
                found += [(f"{label}/{stem}", size) for stem, size in _captures(folder)]
            finally:
                os.close(folder)
        return found

    def save(self, name: str, picture: bytes, sidecar: bytes) -> None:
        label, stem = _split(name)
        folder = self._open_label(label, create=True)
        try:
            for suffix, data in ((".json", sidecar), (".jpg", picture)):
                _write_new(folder, f"{stem}{suffix}", data)
        finally:
            os.close(folder)

    def remove(self, name: str) -> None:
        label, stem = _split(name)
        try:
            folder = self._open_label(label, create=False)
        except FileNotFoundError:
            return
        try:
            for suffix in (".jpg", ".json"):
                try:
                    os.unlink(f"{stem}{suffix}", dir_fd=folder)
                except FileNotFoundError:
                    pass
        finally:
            os.close(folder)

    def _open_label(self, label: str, *, create: bool) -> int:
        """The label folder, opened without following a link (OSError when it is one)."""
        root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if create:
                try:
                    os.mkdir(label, dir_fd=root)
                except FileExistsError:
                    pass
            return os.open(label, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root)
        finally:
            os.close(root)


def _split(name: str) -> tuple[str, str]:
    """``label/stem`` → (label, stem); OSError for a name that would leave its label folder."""
    label, _, stem = name.partition("/")
    if not label or not stem or "/" in stem or label in (".", "..") or stem.startswith("."):
        raise OSError(f"not a capture name: {name!r}")
    return label, stem


def _subfolders(root: Path) -> list[str]:
    """The names of ``root``'s label folders: folders, not links to them."""
    try:
        with os.scandir(root) as entries:
            return [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _captures(folder: int) -> list[tuple[str, int]]:
    """The captures in the open label ``folder`` as (stem, bytes); stale leftovers removed on the way."""
    with os.scandir(folder) as entries:
        files = {e.name: e for e in entries if e.is_file(follow_symlinks=False)}
    found = []
    for file_name in files:
        stem, _, suffix = file_name.rpartition(".")
        if file_name.startswith(".") and suffix == "tmp":
            _remove_if_stale(folder, file_name)
        elif suffix == "json" and _NAME.match(stem):
            picture = files.get(f"{stem}.jpg")
            if picture is None:  # cut short between its two renames, or another writer's in flight
                _remove_if_stale(folder, file_name)
                continue
            try:
                found.append((stem, sum(os.stat(name, dir_fd=folder, follow_symlinks=False).st_size
                                        for name in (picture.name, file_name))))
            except FileNotFoundError:  # removed meanwhile by another writer keeping its caps
                continue
    return found


def _write_new(folder: int, name: str, data: bytes) -> None:
    """Write ``name`` in the open ``folder`` whole: a new file under a random name (``O_EXCL``), then a rename."""
    tmp = f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=folder)
        except OSError:
            pass
        raise


def _remove_if_stale(folder: int, name: str) -> None:
    try:
        if time.time() - os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime > STALE_S:
            os.unlink(name, dir_fd=folder)
    except FileNotFoundError:  # its writer finished (or another cleaned up) meanwhile
        pass


def folder_name(label: str) -> str:
    """A label as a folder name: path separators and control characters become ``_``."""
    cleaned = re.sub(r"[\\/\x00-\x1f]", "_", label).strip()
    return "_" if cleaned in ("", ".", "..") else cleaned
