"""Turning what callers pass as an image into a uint8 pixel array.

Accepted: an OpenCV-style ``ndarray`` (H×W gray, H×W×1, H×W×3 BGR or RGB,
H×W×4 BGRA or RGBA; uint8, or uint16 scaled to 8 bits), a file path, or encoded
bytes (anything OpenCV decodes). Files are decoded with EXIF orientation honoured.
Every path (files, folders, streams over folders, bytes) goes through one gate, :func:`to_pixels`:
a file that is not a regular file or is over ``MAX_IMAGE_FILE_BYTES`` is refused before it is read;
PNG, JPEG, GIF, BMP and WebP headers are checked so an image over ``MAX_IMAGE_PIXELS`` (100
megapixels) is refused without being allocated; a JPEG with more than ``MAX_JPEG_SCANS`` scans
(progressive bombs cost the decoder seconds per scan) or without its end-of-image marker is
refused; every other format (TIFF, PPM, ...) meets OpenCV's own limit, which :mod:`edgecls.runtime`
sets to the same 100 megapixels (``OPENCV_IO_MAX_IMAGE_PIXELS``) before OpenCV is first imported.
An application that imports ``cv2`` before edgecls must set that variable itself.

Given a :class:`DecodeTarget` (the model's input size and resize mode), a JPEG is decoded at the
smallest of libjpeg's 1/2, 1/4 and 1/8 scales that still leaves at least the input size for that
mode, in either orientation (EXIF may turn it): a 12-megapixel photo decodes 2-3x faster and the
model sees the same picture (the DCT's own downscaling is a box filter, as ``fast_resize``'s halving is).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from edgecls.runtime.errors import ImageError, OptionError
from edgecls.runtime.imageheader import MAX_IMAGE_PIXELS, header_size, jpeg_is_complete, jpeg_scans

__all__ = ["DecodeTarget", "ImageInput", "Pixels", "to_pixels", "reduced_scale", "MAX_IMAGE_FILE_BYTES",
           "MAX_JPEG_SCANS"]

ImageInput = Union[np.ndarray, str, os.PathLike, bytes, bytearray, memoryview]  # noqa: UP007 - a runtime alias on 3.10

_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
MAX_IMAGE_FILE_BYTES = 256 << 20
"""Image files larger than 256 MiB are refused unread (a sparse 3 GB file named .png took 3.2 GB)."""
MAX_JPEG_SCANS = 100
"""A progressive JPEG has about 10 scans; 5,000 empty ones made a 55 KB file cost 37 s to decode."""


_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


@dataclass(frozen=True)
class DecodeTarget:
    """The smallest picture a caller needs: the model's input ``width`` × ``height`` and its ``resize``
    mode (``stretch``, ``crop`` or ``letterbox``)."""

    width: int
    height: int
    resize: str = "stretch"

    def fits(self, width: int, height: int) -> bool:
        """Whether a ``width`` × ``height`` image still gives the input its full resolution: stretch and
        crop need both sides at least the input's, letterbox (which scales to fit inside) one of them."""
        if self.resize == "letterbox":
            return width >= self.width or height >= self.height
        return width >= self.width and height >= self.height


def reduced_scale(width: int, height: int, target: DecodeTarget) -> int:
    """The largest of 8, 4, 2 by which a ``width`` × ``height`` JPEG may be scaled down in decoding (libjpeg
    rounds sizes up) and still fit ``target`` in both orientations; 1 when none does."""
    for scale in (8, 4, 2):
        w, h = -(-width // scale), -(-height // scale)
        if target.fits(w, h) and target.fits(h, w):
            return scale
    return 1


@dataclass(frozen=True)
class Pixels:
    """A uint8 image (H×W×C, C in 1, 3, 4) and the channel order of its colours."""

    array: np.ndarray
    order: str  # "bgr" or "rgb"; gray images ignore it


def _to_uint8(array: np.ndarray, source: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        # 65535 maps to 255: divide by 257, rounding, without a float copy of the frame.
        # OpenCV drops a trailing channel axis of 1: give the result the input's shape back.
        return cv2.convertScaleAbs(array, alpha=1.0 / 257.0).reshape(array.shape)
    raise ImageError(
        f"{source}: unsupported pixel dtype {array.dtype}; pass uint8 (or uint16) pixels, "
        "e.g. (image * 255).clip(0, 255).astype(np.uint8) for a float image in [0, 1]"
    )


def _check_shape(array: np.ndarray, source: str) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(
            f"{source}: expected an H×W, H×W×1, H×W×3 or H×W×4 image, got shape {tuple(array.shape)}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"{source}: image is empty (shape {tuple(array.shape)})")
    return array


def _decode(data: bytes | bytearray | memoryview, source: str, target: DecodeTarget | None = None) -> np.ndarray:
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageError(f"{source}: file is empty")
    raw = buffer.tobytes() if not isinstance(data, bytes) else data
    size = header_size(raw)
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageError(f"{source}: declares a {size[0]}×{size[1]} image, over the limit of "
                         f"{MAX_IMAGE_PIXELS:,} pixels (a decompression bomb or a mistake); not decoded")
    if raw.startswith(b"\xff\xd8"):
        if not jpeg_is_complete(raw):
            raise ImageError(f"{source}: truncated JPEG (no end-of-image marker after the last scan)")
        if (scans := jpeg_scans(raw)) > MAX_JPEG_SCANS:
            raise ImageError(f"{source}: JPEG with {scans:,} scans (at most {MAX_JPEG_SCANS} are decoded)")
    flags = _DECODE_FLAGS
    if target is not None and size is not None and raw.startswith(b"\xff\xd8"):
        flags = _REDUCED_FLAGS.get(reduced_scale(size[0], size[1], target), flags)
    try:
        decoded = cv2.imdecode(buffer, flags)
    except cv2.error as exc:
        raise ImageError(f"{source}: cannot decode image ({exc.msg.strip() or exc})") from None
    if decoded is None:
        raise ImageError(f"{source}: not a decodable image (corrupt, truncated or not an image format)")
    return decoded


def _read_file(path: Path) -> bytes:
    try:
        info = os.stat(path)  # before opening: opening a FIFO would wait for a writer
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{path}: not a regular file (a device, FIFO or socket)")
        if info.st_size > MAX_IMAGE_FILE_BYTES:
            raise ImageError(f"{path}: {info.st_size:,} bytes, over the limit of {MAX_IMAGE_FILE_BYTES:,} "
                             "for an image file; not read")
        with open(path, "rb") as f:
            data = f.read(MAX_IMAGE_FILE_BYTES + 1)
        if len(data) > MAX_IMAGE_FILE_BYTES:
            raise ImageError(f"{path}: grew past {MAX_IMAGE_FILE_BYTES:,} bytes while being read; not decoded")
        return data
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image ({exc.strerror or exc})") from None


def to_pixels(image: ImageInput, *, color: str = "bgr", target: DecodeTarget | None = None) -> Pixels:
    """Convert ``image`` to :class:`Pixels`.

    Args:
        image: an ndarray, a file path, or encoded image bytes.
        color: channel order of an ndarray's colours, ``"bgr"`` (OpenCV's) or
            ``"rgb"``. Decoded files are always BGR.
        target: decode a JPEG file or bytes at a reduced scale that still fits it (see
            :class:`DecodeTarget`); None: full size. Arrays and other formats are never scaled here.

    Raises:
        ImageError: missing, unreadable, irregular or oversized file, undecodable or truncated
            data, an image over 100 megapixels, a JPEG of too many scans, empty image,
            unsupported shape or dtype, or ``None``.
        OptionError: ``color`` is not ``"bgr"`` or ``"rgb"``.
    """
    if color not in ("bgr", "rgb"):
        raise OptionError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if isinstance(image, np.ndarray):
        array = _to_uint8(_check_shape(image, "image array"), "image array")
        return Pixels(array, color)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        array = _decode(_read_file(path), str(path), target)
        return Pixels(_to_uint8(_check_shape(array, str(path)), str(path)), "bgr")
    if isinstance(image, (bytes, bytearray, memoryview)):
        array = _decode(image, "image bytes", target)
        return Pixels(_to_uint8(_check_shape(array, "image bytes"), "image bytes"), "bgr")
    if image is None:
        raise ImageError("image is None (a failed cv2.imread or camera read returns None)")
    raise ImageError(f"unsupported image type {type(image).__name__}; pass an ndarray, a path or bytes")
