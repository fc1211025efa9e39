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
