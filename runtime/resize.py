"""Resizing frames to the model's input size: fast, and anti-aliased when shrinking.

``cv2.INTER_AREA`` gives the right (box-filtered) result when shrinking but costs
as much as an int8 inference on a 640×480 frame; ``cv2.INTER_LINEAR`` is ~10×
faster but aliases. :func:`fast_resize` halves the frame with ``INTER_AREA``
(a 2×2 box filter, OpenCV's SIMD fast path) while it is at least twice the
target, then finishes with ``INTER_LINEAR`` over the remaining factor (< 2).
``benchmarks/resize.py`` measures speed and the difference to pure INTER_AREA.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["fast_resize", "fit"]


def fast_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``image`` to ``width``×``height`` (keeps a trailing channel axis of 1)."""
    channels = image.shape[2] if image.ndim == 3 else None
    h, w = image.shape[:2]
    while w >= 2 * width and h >= 2 * height:
        # Drop an odd last row/column so the step is exactly 2× (the fast path).
        image = cv2.resize(image[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    if (w, h) != (width, height):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image[:, :, None] if channels == 1 and image.ndim == 2 else image


def fit(image: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """Bring ``image`` to ``width``×``height`` by ``mode``.

    Modes: ``stretch`` (ignore aspect ratio), ``crop`` (centre crop to the
    target aspect ratio, then resize) and ``letterbox`` (resize to fit inside,
    then pad with black, centred).
    """
    if mode == "stretch":
        return fast_resize(image, width, height)
    h, w = image.shape[:2]
    if mode == "crop":
        scale = min(w / width, h / height)
        cw, ch = max(1, round(width * scale)), max(1, round(height * scale))
        top, left = (h - ch) // 2, (w - cw) // 2
        return fast_resize(image[top : top + ch, left : left + cw], width, height)
    if mode == "letterbox":
        scale = min(width / w, height / h)
        nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
        inner = fast_resize(image, nw, nh)
        out = np.zeros((height, width, image.shape[2]), dtype=image.dtype)
        top, left = (height - nh) // 2, (width - nw) // 2
        out[top : top + nh, left : left + nw] = inner
        return out
    raise ValueError(f"unknown resize mode {mode!r}")
