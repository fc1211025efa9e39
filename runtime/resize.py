"""Resizing frames to the model's input size: fast, and anti-aliased when shrinking.

``cv2.INTER_AREA`` gives the right (box-filtered) result when shrinking but costs
as much as an int8 inference on a 640×480 frame; ``cv2.INTER_LINEAR`` is ~10×
faster but aliases. :func:`fast_resize` does an integer-factor ``INTER_AREA``
step (OpenCV's fast box-filter path) and finishes with ``INTER_LINEAR`` over the
remaining factor (< 2), which keeps the anti-aliasing for a fraction of the cost.
``benchmarks/resize.py`` measures both speed and the difference to pure INTER_AREA.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["fast_resize", "fit"]


def fast_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``image`` to ``width``×``height`` (keeps a trailing channel axis of 1)."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    channels = image.shape[2] if image.ndim == 3 else None
    factor = min(w // width, h // height)
    if factor >= 2:
        # Crop to a multiple of the factor (at most factor-1 edge pixels) so OpenCV
        # takes its integer-scale area path.
        h2, w2 = h - h % factor, w - w % factor
        top, left = (h - h2) // 2, (w - w2) // 2
        image = cv2.resize(
            image[top : top + h2, left : left + w2],
            (w2 // factor, h2 // factor),
            interpolation=cv2.INTER_AREA,
        )
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return out[:, :, None] if channels == 1 and out.ndim == 2 else out


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
