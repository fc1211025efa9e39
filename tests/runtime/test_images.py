"""Image inputs: arrays, files, bytes, and every rejected input."""

import cv2
import numpy as np
import pytest

from edgecls.runtime.errors import ImageError, OptionError
from edgecls.runtime.images import to_pixels


def test_array_kinds_are_accepted():
    bgr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert to_pixels(bgr).array is bgr
    assert to_pixels(bgr, color="rgb").order == "rgb"
    assert to_pixels(bgr[:, :, 0]).array.shape == (20, 30, 1)
    assert to_pixels(np.dstack([bgr, bgr[:, :, :1]])).array.shape == (20, 30, 4)
    view = bgr[::2, ::3]  # non-contiguous
    assert to_pixels(view).array.shape == (10, 10, 3)


def test_uint16_is_scaled_not_truncated():
    deep = np.full((4, 4, 3), 65535, dtype=np.uint16)
    deep[0, 0] = 257 * 128
    pixels = to_pixels(deep).array
    assert pixels.dtype == np.uint8 and pixels[1, 1, 0] == 255 and pixels[0, 0, 0] == 128
    # a 16-bit gray frame keeps its channel axis (OpenCV's conversion drops it; found by the property test)
    assert to_pixels(np.full((3, 2), 65535, np.uint16)).array.shape == (3, 2, 1)


def test_files_and_bytes_decode(tmp_path):
    image = np.zeros((12, 16, 3), np.uint8)
    image[:, :, 2] = 255  # red in BGR
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), image)
    for source in (path, str(path), path.read_bytes()):
        pixels = to_pixels(source)
        assert pixels.order == "bgr" and pixels.array.shape == (12, 16, 3)
        assert pixels.array[0, 0].tolist() == [0, 0, 255]


def test_sixteen_bit_png_file(tmp_path):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((5, 5), 65535, np.uint16))
    assert to_pixels(path).array.max() == 255


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.png", "no such image file"),
        (lambda d: d, "is a folder"),
        (lambda d: _write(d / "empty.png", b""), "file is empty"),
        (lambda d: _write(d / "text.jpg", b"hello, not a jpeg"), "not a decodable image"),
    ],
)
def test_bad_files(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ImageError, match=message) as info:
        to_pixels(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "image, message",
    [
        (None, "image is None"),
        (np.zeros((4, 4, 3), np.float32), "unsupported pixel dtype float32"),
        (np.zeros((4, 4, 3), np.int32), "unsupported pixel dtype int32"),
        (np.zeros((4, 4, 2), np.uint8), "got shape"),
        (np.zeros((1, 4, 4, 3), np.uint8), "got shape"),
        (np.zeros((0, 4, 3), np.uint8), "image is empty"),
        (b"not an image", "not a decodable image"),
        (12, "unsupported image type int"),
    ],
)
def test_bad_arrays_and_objects(image, message):
    with pytest.raises(ImageError, match=message):
        to_pixels(image)


def test_bad_color_option():
    with pytest.raises(OptionError, match="color must be 'bgr' or 'rgb'"):
        to_pixels(np.zeros((2, 2, 3), np.uint8), color="hsv")


def _digit_photo() -> np.ndarray:
    from edgecls.demo import digits_rgb

    return cv2.resize(digits_rgb(8)[0][0][:, :, ::-1], (64, 48), interpolation=cv2.INTER_NEAREST)


def test_truncated_jpeg_and_png(tmp_path):
    for suffix, message in ((".jpg", "truncated JPEG"), (".png", "not a decodable image")):
        data = cv2.imencode(suffix, _digit_photo())[1].tobytes()
        assert to_pixels(data).array.shape == (48, 64, 3)  # whole, it decodes
        path = _write(tmp_path / f"cut{suffix}", data[: len(data) * 2 // 3])
        with pytest.raises(ImageError, match=message) as info:
            to_pixels(path)
        assert str(path) in str(info.value)


def test_one_pixel_image_classifies(color_model):
    from edgecls.runtime import Classifier

    with Classifier.from_path(color_model) as clf:
        result = clf.classify(np.array([[[0, 0, 255]]], np.uint8))
    assert result.top is not None and 0.0 <= result.top.score <= 1.0


def _exif_orientation_jpeg(image: np.ndarray, orientation: int) -> bytes:
    """A JPEG whose EXIF (APP1) says how to rotate it for display."""
    import struct

    ifd = struct.pack("<HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    return jpeg[:2] + app1 + jpeg[2:]


def test_exif_orientation_is_applied(tmp_path):
    photo = _digit_photo()  # 48 high, 64 wide
    path = _write(tmp_path / "rotated.jpg", _exif_orientation_jpeg(photo, 6))  # 6: rotate 90° clockwise
    pixels = to_pixels(path).array
    assert pixels.shape == (64, 48, 3)
    expected = cv2.rotate(photo, cv2.ROTATE_90_CLOCKWISE).astype(int)
    assert np.abs(pixels.astype(int) - expected).mean() < 8  # JPEG noise only


def _png_bomb(width: int, height: int) -> bytes:
    """A valid gray PNG of zeros: a few hundred kB declaring width × height pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    z = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one gray byte per pixel
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_without_allocating(tmp_path):
    import subprocess
    import sys

    from edgecls.runtime.imageheader import MAX_IMAGE_PIXELS

    bomb = _write(tmp_path / "bomb.png", _png_bomb(12_000, 10_000))  # 120 megapixels
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ImageError, match=f"declares a 12000×10000 image, over the limit of {MAX_IMAGE_PIXELS:,}"):
        to_pixels(bomb)
    # In a fresh process: refusing it leaves the peak memory far below the 360 MB a decode would take.
    code = ("import sys\nfrom edgecls.runtime.images import to_pixels\nfrom edgecls.runtime import ImageError\n"
            "try:\n    to_pixels(sys.argv[1])\nexcept ImageError:\n    pass\n"
            "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024)")
    peak_mb = int(subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True,
                                 check=True).stdout)
    assert peak_mb < 200


@pytest.mark.parametrize("fmt", [".png", ".jpg", ".bmp", ".webp"])
def test_header_sizes_match_the_decoder(fmt):
    from edgecls.runtime.imageheader import header_size

    data = cv2.imencode(fmt, _digit_photo())[1].tobytes()
    assert header_size(data) == (64, 48)
