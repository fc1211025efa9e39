"""Image dimensions from the header bytes, read before decoding, and JPEG completeness.

Used to refuse decompression bombs (a small file declaring a huge image) without allocating
them, and truncated JPEGs (which decoders fill in silently). Formats not parsed here are left
to OpenCV's own limit (``OPENCV_IO_MAX_IMAGE_PIXELS``).
"""

from __future__ import annotations

import struct

__all__ = ["header_size", "jpeg_is_complete", "jpeg_scans", "MAX_IMAGE_PIXELS"]

MAX_IMAGE_PIXELS = 100_000_000
"""Largest image (width × height) the runtime decodes: 100 megapixels."""

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:  # junk between segments: decoders skip to the next marker, so do we
            nxt = data.find(b"\xff", i)
            if nxt < 0:
                return None
            i = nxt
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", data[6:10]) if len(data) >= 10 else None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared by a PNG, JPEG, GIF, BMP or WebP header; None for other data."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _gif(data)
    if data.startswith(b"BM"):
        return _bmp(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _webp(data)
    return None


def jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG's last scan is followed by its end-of-image marker. Inside entropy-coded data
    0xFF is always stuffed (FF 00) or a restart marker, so FF D9 there is the real end."""
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.rfind(b"\xff\xd9") > last_scan


def jpeg_scans(data: bytes) -> int:
    """How many start-of-scan markers a JPEG holds (FF DA cannot occur inside entropy-coded data)."""
    return data.count(b"\xff\xda")
