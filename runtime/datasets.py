"""Image folders: a flat folder of images, or one sub-folder per class.

Used by ``edgecls eval`` and by the converters (calibration and validation sets).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgecls.runtime.card import InputSpec, Normalization
from edgecls.runtime.errors import DatasetError, ImageError
from edgecls.runtime.images import to_pixels
from edgecls.runtime.preprocess import Preprocessor

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "iter_images", "list_images", "no_images"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


MAX_FOLDER_DEPTH = 64
"""Image folders nested deeper than this under the folder given are refused (a path 1,800 levels deep
made ``Path.rglob`` raise RecursionError)."""


def iter_images(folder: Path) -> Iterator[Path]:
    """Image files under ``folder`` (recursive, by suffix; hidden entries skipped), walked with an explicit
    stack; a symlinked folder is followed once (a link loop is not walked twice).

    Raises:
        DatasetError: folders nested more than ``MAX_FOLDER_DEPTH`` levels below ``folder``.
    """
    stack, seen = [(folder, 0)], set()
    while stack:
        current, depth = stack.pop()
        try:
            info = current.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(current), key=lambda e: e.name, reverse=True)
        except OSError:
            continue  # unreadable folder: its images are not listed, as rglob did
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir:
                if depth + 1 > MAX_FOLDER_DEPTH:
                    raise DatasetError(f"{folder}: folders are nested more than {MAX_FOLDER_DEPTH} levels deep "
                                       f"under it (at {path}); not walked")
                stack.append((path, depth + 1))
            elif path.suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                yield path


def no_images(folder: Path) -> DatasetError:
    """The one error for a folder without images (``eval``, ``predict``, ``stream``, export data)."""
    return DatasetError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")


def list_images(folder: Path) -> list[Path]:
    """The image files under ``folder``, sorted.

    Raises:
        DatasetError: none found, or folders nested too deep (see :func:`iter_images`).
    """
    files = sorted(iter_images(folder))
    if not files:
        raise no_images(folder)
    return files


@dataclass
class ImageFolder:
    """An image folder, optionally with one sub-folder per class.

    Attributes:
        root: the folder.
        files: image files, sorted by class then name (a sample of at most ``limit`` when given).
        targets: class index of each file into ``classes`` (-1 without class folders).
        classes: sorted class sub-folder names (empty without class folders).
    """

    root: Path
    files: list[Path] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    @classmethod
    def scan(cls, root: str | Path, limit: int | None = None, seed: int = 0) -> ImageFolder:
        """List ``root``'s images; sample ``limit`` of them when given.

        Raises:
            DatasetError: the folder is missing or holds no images.
        """
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: image folder not found")
        subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        classes = [d.name for d in subdirs if any(iter_images(d))]
        pairs: list[tuple[Path, int]] = []
        if classes:
            for index, name in enumerate(classes):
                pairs += [(f, index) for f in sorted(iter_images(root / name))]
        else:
            pairs = [(f, -1) for f in sorted(iter_images(root))]
        if not pairs:
            raise no_images(root)
        if limit is not None and len(pairs) > limit:
            rng = random.Random(seed)
            rng.shuffle(pairs)
            pairs = sorted(pairs[:limit], key=lambda p: (p[1], str(p[0])))
        return cls(root, [p for p, _ in pairs], [t for _, t in pairs], classes)

    def load(self, spec: InputSpec) -> np.ndarray:
        """All images as an N×H×W×C uint8 array at the input size, in the model's colour order.

        Raises:
            DatasetError: an image cannot be read (names the file).
        """
        pre = Preprocessor(replace(spec, layout="NHWC", dtype="uint8", quantization=None,
                                   normalization=Normalization(baked=True)))
        out = []
        for path in self.files:
            try:
                out.append(pre(to_pixels(path, target=pre.target)))
            except ImageError as exc:
                raise DatasetError(f"{self.root}: {exc}") from None
        return np.stack(out)
