"""Resizing frames to the model's input size: fast, and anti-aliased when shrinking.

``cv2.INTER_AREA`` gives the right (box-filtered) result when shrinking but costs
as much as an int8 inference on a 640×480 frame; ``cv2.INTER_LINEAR`` is ~10×
faster but aliases. :func:`fast_resize` halves the frame with ``INTER_AREA``
(a 2×2 box filter, OpenCV's SIMD fast path) while it is at least twice the
target, then finishes with ``INTER_LINEAR`` over the remaining factor (< 2).
``benchmarks/resize.py`` measures speed and the difference to pure INTER_AREA.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

__all__ = ["Scratch", "fast_resize", "fit", "resize_to", "written", "SAMPLES"]

SAMPLES = ("area", "linear", "warp")
"""How a picture is shrunk: ``area`` (anti-aliased, :func:`fast_resize`), ``linear`` (one bilinear resize,
pixel centres aligned: ``cv2.resize``'s default, what Frigate does to its crops) or ``warp`` (bilinear,
corners aligned: MediaPipe's image-to-tensor warp, what its ``region_of_interest`` does)."""


class Scratch(threading.local):
    """Per-thread buffers reused from call to call for the intermediate pictures of a resize (so a stream of
    frames of one size allocates nothing after its first), at most ``keep`` shapes, the oldest dropped."""

    def __init__(self, keep: int = 8) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}
        self._keep = keep

    def get(self, shape: tuple[int, ...], dtype: np.dtype | type = np.uint8, role: str = "") -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype``, the same one on the next call with the same
        arguments in this thread (``role`` tells apart two buffers of one shape that are alive together)."""
        key = (role, shape, np.dtype(dtype).str)
        array = self._arrays.pop(key, None)
        if array is None:
            array = np.empty(shape, dtype)
            if len(self._arrays) >= self._keep:
                del self._arrays[next(iter(self._arrays))]
        self._arrays[key] = array  # most recently used last
        return array


def fast_resize(image: np.ndarray, width: int, height: int, *, out: np.ndarray | None = None,
                scratch: Scratch | None = None) -> np.ndarray:
    """Resize ``image`` to ``width``×``height`` (keeps a trailing channel axis of 1), into ``out`` when given
    (returned), its intermediate halvings into ``scratch``'s buffers when given."""
    channels = image.shape[2] if image.ndim == 3 else None
    h, w = image.shape[:2]
    while w >= 2 * width and h >= 2 * height:
        # Drop an odd last row/column so the step is exactly 2× (the fast path).
        half = (h // 2, w // 2, *image.shape[2:])
        last = half[:2] == (height, width)  # the last step writes straight into ``out``
        dst = out if last else (scratch.get(half) if scratch is not None else None)
        image = written(cv2.resize(image[: h - h % 2, : w - w % 2], (w // 2, h // 2), dst=dst,
                                   interpolation=cv2.INTER_AREA), dst)
        h, w = image.shape[:2]
    if (w, h) != (width, height):
        image = written(cv2.resize(image, (width, height), dst=out, interpolation=cv2.INTER_LINEAR), out)
    elif out is not None:
        return written(image, out)
    return image[:, :, None] if channels == 1 and image.ndim == 2 else image


def written(result: np.ndarray, dst: np.ndarray | None) -> np.ndarray:
    """``dst`` holding ``result`` (OpenCV returns a new array instead of writing one it cannot use)."""
    if dst is None or result is dst:
        return result
    dst[...] = result.reshape(dst.shape)
    return dst


def resize_to(image: np.ndarray, width: int, height: int, sample: str = "area", *, out: np.ndarray | None = None,
              scratch: Scratch | None = None) -> np.ndarray:
    """Resize ``image`` to ``width``×``height`` by ``sample`` (see :data:`SAMPLES`; keeps a trailing
    channel axis of 1), into ``out`` when given (returned), an area shrink's halvings into ``scratch``."""
    if sample == "area":
        return fast_resize(image, width, height, out=out, scratch=scratch)
    if image.shape[1] == width and image.shape[0] == height:
        return written(image, out)
    if sample == "warp":  # destination (x, y) samples the source at (x·W/w, y·H/h), as MediaPipe's warp
        h, w = image.shape[:2]
        matrix = np.array([[w / width, 0.0, 0.0], [0.0, h / height, 0.0]])
        result = cv2.warpAffine(image, matrix, (width, height), dst=out,
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    else:
        result = cv2.resize(image, (width, height), dst=out, interpolation=cv2.INTER_LINEAR)
    result = written(result, out)
    return result[:, :, None] if image.ndim == 3 and result.ndim == 2 else result


def fit(image: np.ndarray, width: int, height: int, mode: str, sample: str = "area") -> np.ndarray:
    """Bring ``image`` to ``width``×``height`` by ``mode``, resizing by ``sample`` (see :data:`SAMPLES`).

    Modes: ``stretch`` (ignore aspect ratio), ``crop`` (centre crop to the
    target aspect ratio, then resize) and ``letterbox`` (resize to fit inside,
    then pad with black, centred).
    """
    if mode == "stretch":
        return resize_to(image, width, height, sample)
    h, w = image.shape[:2]
    if mode == "crop":
        scale = min(w / width, h / height)
        cw, ch = max(1, round(width * scale)), max(1, round(height * scale))
        top, left = (h - ch) // 2, (w - cw) // 2
        return resize_to(image[top : top + ch, left : left + cw], width, height, sample)
    if mode == "letterbox":
        scale = min(width / w, height / h)
        nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
        inner = resize_to(image, nw, nh, sample)
        out = np.zeros((height, width, image.shape[2]), dtype=image.dtype)
        top, left = (height - nh) // 2, (width - nw) // 2
        out[top : top + nh, left : left + nw] = inner
        return out
    raise ValueError(f"unknown resize mode {mode!r}")
