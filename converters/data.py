"""Images for calibration and validation: folders, arrays, a synthetic fallback.

Every source goes through the runtime's own preprocessing (resize mode, colour
order) so calibration sees exactly what the deployed model will see. The shared
reader protocol is tiny, like ONNX Runtime's ``CalibrationDataReader``: an
iterable of uint8 images at the model's input size, in its colour order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from edgecls.converters.errors import ExportError
from edgecls.runtime.card import InputSpec
from edgecls.runtime.errors import ImageError
from edgecls.runtime.images import to_pixels
from edgecls.runtime.preprocess import Preprocessor

__all__ = ["CalibrationReader", "ArrayReader", "ImageFolder", "IMAGE_SUFFIXES", "synthetic_images"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


@runtime_checkable
class CalibrationReader(Protocol):
    """What the quantizers read: uint8 H×W×C images at the model's input size."""

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def __len__(self) -> int: ...


@dataclass
class ArrayReader:
    """A reader over images already at the model's input size (N×H×W×C uint8)."""

    images: np.ndarray

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class ImageFolder:
    """An image folder, optionally with one sub-folder per class.

    Attributes:
        root: the folder.
        files: image files, sorted (a sample of at most ``limit`` when given).
        targets: class index of each file (-1 without class folders).
        classes: sorted class sub-folder names (empty without class folders).
    """

    root: Path
    files: list[Path] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    @classmethod
    def scan(cls, root: str | Path, limit: int | None = None, seed: int = 0) -> "ImageFolder":
        """List ``root``'s images; sample ``limit`` of them, spread over classes.

        Raises:
            ExportError: the folder is missing or holds no images.
        """
        root = Path(root)
        if not root.is_dir():
            raise ExportError(f"{root}: image folder not found")
        subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        classes = [d.name for d in subdirs if any(_images(d))]
        pairs: list[tuple[Path, int]] = []
        if classes:
            for index, name in enumerate(classes):
                pairs += [(f, index) for f in sorted(_images(root / name))]
        else:
            pairs = [(f, -1) for f in sorted(_images(root))]
        if not pairs:
            raise ExportError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        if limit is not None and len(pairs) > limit:
            rng = random.Random(seed)
            rng.shuffle(pairs)
            pairs = sorted(pairs[:limit], key=lambda p: (p[1], str(p[0])))
        return cls(root, [p for p, _ in pairs], [t for _, t in pairs], classes)

    def load(self, spec: InputSpec) -> np.ndarray:
        """All images as an N×H×W×C uint8 array, preprocessed as the runtime does.

        Raises:
            ExportError: an image cannot be read (names the file).
        """
        pre = _uint8_preprocessor(spec)
        out = []
        for path in self.files:
            try:
                out.append(pre(to_pixels(path)))
            except ImageError as exc:
                raise ExportError(f"{self.root}: {exc}") from None
        return np.stack(out)


def _images(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _uint8_preprocessor(spec: InputSpec) -> Preprocessor:
    from dataclasses import replace

    from edgecls.runtime.card import Normalization

    return Preprocessor(replace(spec, layout="NHWC", dtype="uint8", quantization=None,
                                normalization=Normalization(baked=True)))


def synthetic_images(count: int, spec: InputSpec, seed: int = 0) -> np.ndarray:
    """A fixed set of smooth random images (gradients, blobs, noise) at the input size."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w, c = spec.height, spec.width, spec.channels
    out = np.empty((count, h, w, c), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        base = rng.uniform(0, 255, (max(2, h // 8), max(2, w // 8), c)).astype(np.float32)
        image = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
        image += (np.sin(xx / rng.uniform(2, 12)) * rng.uniform(0, 60))[..., None]
        image += rng.normal(0, 12, image.shape).astype(np.float32)
        out[i] = np.clip(image, 0, 255).astype(np.uint8)
    return out


def labels_from(folders: Sequence[ImageFolder | None]) -> list[str] | None:
    """Class names of the first folder that has class sub-folders."""
    for folder in folders:
        if folder is not None and folder.classes:
            return list(folder.classes)
    return None
