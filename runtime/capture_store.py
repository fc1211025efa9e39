"""Where hard-example captures go: the :class:`CaptureStore` protocol (the test seam, and the place for
other sinks) and :class:`FolderStore`, the class-folder layout on disk.

A capture is ``root/<label>/<stem>.jpg`` and its sidecar ``<stem>.json``; both appear whole (a temporary
name, then a rename; the sidecar first). Several writers may share a folder: a store's start-up
cleanup removes only leftovers older than :data:`STALE_S`.
"""

from __future__ import annotations

import os
import re
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
    """Captures as files under ``root``: ``root/label/stem.jpg`` and ``root/label/stem.json``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def existing(self) -> list[tuple[str, int]]:
        found = []
        for sidecar in self.root.glob("*/*.json"):
            picture = sidecar.with_suffix(".jpg")
            if not _NAME.match(sidecar.stem):
                continue
            if not picture.exists():  # cut short between its two renames, or another writer's in flight
                _remove_if_stale(sidecar)
                continue
            try:
                size = picture.stat().st_size + sidecar.stat().st_size
            except FileNotFoundError:  # removed meanwhile by another writer keeping its caps
                continue
            found.append((f"{sidecar.parent.name}/{sidecar.stem}", size))
        for partial in self.root.glob("*/.*.tmp"):
            _remove_if_stale(partial)
        return found

    def save(self, name: str, picture: bytes, sidecar: bytes) -> None:
        base = self.root / name
        base.parent.mkdir(exist_ok=True)
        for suffix, data in ((".json", sidecar), (".jpg", picture)):
            tmp = base.parent / f".{base.name}{suffix}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, base.with_suffix(suffix))

    def remove(self, name: str) -> None:
        base = self.root / name
        base.with_suffix(".jpg").unlink(missing_ok=True)
        base.with_suffix(".json").unlink(missing_ok=True)


def _remove_if_stale(path: Path) -> None:
    try:
        if time.time() - path.stat().st_mtime > STALE_S:
            path.unlink()
    except FileNotFoundError:  # its writer finished (or another cleaned up) meanwhile
        pass


def folder_name(label: str) -> str:
    """A label as a folder name: path separators and control characters become ``_``."""
    cleaned = re.sub(r"[\\/\x00-\x1f]", "_", label).strip()
    return "_" if cleaned in ("", ".", "..") else cleaned
