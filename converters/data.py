"""Images for calibration and validation: folders, arrays, a synthetic fallback.

Every source goes through the runtime's own preprocessing (resize mode, colour
order) so calibration sees exactly what the deployed model will see. The shared
reader protocol is tiny, like ONNX Runtime's ``CalibrationDataReader``: an
iterable of uint8 images at the model's input size, in its colour order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from edgecls.runtime.card import InputSpec
from edgecls.runtime.datasets import ImageFolder

__all__ = ["CalibrationReader", "ArrayReader", "ImageFolder", "synthetic_images"]


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


def synthetic_images(count: int, spec: InputSpec, seed: int = 0) -> np.ndarray:
    """A fixed set of smooth random images (gradients, blobs, noise) at the input size."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w, c = spec.height, spec.width, spec.channels
    out = np.empty((count, h, w, c), np.uint8)
    xx = np.mgrid[0:h, 0:w][1].astype(np.float32)
    for i in range(count):
        base = rng.uniform(0, 255, (max(2, h // 8), max(2, w // 8), c)).astype(np.float32)
        image = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
        image += (np.sin(xx / rng.uniform(2, 12)) * rng.uniform(0, 60))[..., None]
        image += rng.normal(0, 12, image.shape).astype(np.float32)
        out[i] = np.clip(image, 0, 255).astype(np.uint8)
    return out
