"""Labelled images: a flat folder of images, one sub-folder per class (:class:`ImageFolder`), or a CSV
file ``path,labels`` for multi-label data (:class:`LabelList`); :func:`open_dataset` opens either.

Used by ``edgecls eval`` and by the converters (calibration and validation sets).
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgecls.runtime.card import InputSpec, Normalization
from edgecls.runtime.errors import DatasetError, ImageError
from edgecls.runtime.images import to_pixels
from edgecls.runtime.preprocess import Preprocessor

__all__ = ["IMAGE_SUFFIXES", "ImageFolder", "LabelList", "open_dataset", "iter_images", "list_images",
           "no_images"]

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
        return load_images(self.files, spec, self.root)

    def label_indices(self, labels: Sequence[str]) -> np.ndarray | None:
        """Each file's label index into ``labels`` (None without class folders).

        Raises:
            DatasetError: a class folder whose name is not a label.
        """
        if not self.classes:
            return None
        index = {label: i for i, label in enumerate(labels)}
        unknown = [c for c in self.classes if c not in index]
        if unknown:
            raise DatasetError(f"{self.root}: class folders {', '.join(unknown[:5])} are not among the model's labels "
                               f"({', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''})")
        return np.array([index[self.classes[t]] for t in self.targets], dtype=np.int64)

    def label_matrix(self, labels: Sequence[str]) -> np.ndarray | None:
        """Each file's labels as an N × len(labels) bool matrix (one label per image here). Raises as
        :meth:`label_indices`."""
        indices = self.label_indices(labels)
        if indices is None:
            return None
        matrix = np.zeros((len(indices), len(labels)), bool)
        matrix[np.arange(len(indices)), indices] = True
        return matrix


def load_images(files: Sequence[Path], spec: InputSpec, root: Path) -> np.ndarray:
    """``files`` as an N×H×W×C uint8 array at the input size, in the model's colour order.

    Raises:
        DatasetError: an image cannot be read (names ``root`` and the file).
    """
    pre = Preprocessor(replace(spec, layout="NHWC", dtype="uint8", quantization=None,
                               normalization=Normalization(baked=True)))
    out = []
    for path in files:
        try:
            out.append(pre(to_pixels(path, target=pre.target)))
        except ImageError as exc:
            raise DatasetError(f"{root}: {exc}") from None
    return np.stack(out)


_SEPARATOR = re.compile(r"[|\s]+")


@dataclass
class LabelList:
    """Multi-label images listed in a CSV file: a header row naming the columns ``path`` and ``labels``,
    then one row per image; labels separated by spaces or ``|`` (none: the image shows no label); paths
    relative to the CSV's folder (or absolute).

    Attributes:
        root: the CSV file.
        files: the images, in the file's order (a sample of at most ``limit`` when given).
        label_sets: each image's labels.
        classes: every label named, sorted.
        lines: each image's line in the CSV (for messages).
    """

    root: Path
    files: list[Path] = field(default_factory=list)
    label_sets: list[tuple[str, ...]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    @classmethod
    def scan(cls, path: str | Path, limit: int | None = None, seed: int = 0) -> LabelList:
        """Read the CSV whole and check every row; sample ``limit`` rows when given.

        Raises:
            DatasetError: the file is missing or not UTF-8 text; no ``path``/``labels`` header; a row without
                a path, with an image that does not exist, or no rows at all. Nothing is returned half-read.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise DatasetError(f"{path}: label list not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
        rows = list(csv.reader(text.splitlines()))
        header = [c.strip().lower() for c in rows[0]] if rows else []
        if "path" not in header or "labels" not in header:
            raise DatasetError(f"{path}: the first row must name the columns 'path' and 'labels' (a header row), "
                               f"got {rows[0] if rows else 'an empty file'}")
        at_path, at_labels = header.index("path"), header.index("labels")
        entries = []
        for line, row in enumerate(rows[1:], start=2):
            name = row[at_path].strip() if len(row) > at_path else ""
            if not name:
                raise DatasetError(f"{path}: line {line} has no image path")
            image = Path(name) if Path(name).is_absolute() else path.parent / name
            if not image.is_file():
                raise DatasetError(f"{path}: line {line}: {image} is not an image file")
            text_labels = row[at_labels] if len(row) > at_labels else ""
            entries.append((image, tuple(dict.fromkeys(t for t in _SEPARATOR.split(text_labels.strip()) if t)), line))
        if not entries:
            raise DatasetError(f"{path}: lists no images")
        if limit is not None and len(entries) > limit:
            entries = sorted(random.Random(seed).sample(entries, limit), key=lambda e: e[2])
        classes = sorted({label for _, labels, _ in entries for label in labels})
        return cls(path, [e[0] for e in entries], [e[1] for e in entries], classes, [e[2] for e in entries])

    @property
    def targets(self) -> list[int]:
        """-1 for every image: a multi-label list has no single class per image."""
        return [-1] * len(self.files)

    def load(self, spec: InputSpec) -> np.ndarray:
        """All images as an N×H×W×C uint8 array (see :func:`load_images`). Raises DatasetError."""
        return load_images(self.files, spec, self.root)

    def label_indices(self, labels: Sequence[str]) -> None:
        """None: a multi-label list has no single label per image (see :meth:`label_matrix`)."""
        return None

    def label_matrix(self, labels: Sequence[str]) -> np.ndarray:
        """Each image's labels as an N × len(labels) bool matrix.

        Raises:
            DatasetError: a label that is not among ``labels`` (naming its line).
        """
        index = {label: i for i, label in enumerate(labels)}
        matrix = np.zeros((len(self.files), len(labels)), bool)
        for row, (names, line) in enumerate(zip(self.label_sets, self.lines, strict=True)):
            for name in names:
                if name not in index:
                    raise DatasetError(f"{self.root}: line {line}: label {name!r} is not among the model's labels "
                                       f"({', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''})")
                matrix[row, index[name]] = True
        return matrix


def open_dataset(path: str | Path, limit: int | None = None, seed: int = 0) -> ImageFolder | LabelList:
    """A folder as an :class:`ImageFolder`, a ``.csv`` file as a :class:`LabelList`. Raises DatasetError."""
    path = Path(path)
    if path.suffix.lower() == ".csv" and not path.is_dir():
        return LabelList.scan(path, limit, seed)
    return ImageFolder.scan(path, limit, seed)
