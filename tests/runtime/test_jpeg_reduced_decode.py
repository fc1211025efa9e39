"""JPEGs decoded at libjpeg's reduced scales: the smallest that still fits the model's input."""

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecls.runtime import Classifier
from edgecls.runtime.images import DecodeTarget, reduced_scale, to_pixels


@given(st.integers(1, 9000), st.integers(1, 9000), st.integers(8, 640), st.integers(8, 640),
       st.sampled_from(["stretch", "crop", "letterbox"]))
def test_the_scale_is_the_largest_that_fits_both_orientations(width, height, tw, th, mode):
    target = DecodeTarget(tw, th, mode)
    scale = reduced_scale(width, height, target)
    w, h = -(-width // scale), -(-height // scale)
    if scale > 1:
        assert target.fits(w, h) and target.fits(h, w)
    if scale < 8:  # the next scale down would not have fit
        w2, h2 = -(-width // (scale * 2)), -(-height // (scale * 2))
        assert not (target.fits(w2, h2) and target.fits(h2, w2))


def _photo(width: int, height: int) -> np.ndarray:
    from skimage import data

    return cv2.resize(data.astronaut()[:, :, ::-1], (width, height), interpolation=cv2.INTER_CUBIC)


def test_a_large_jpeg_is_decoded_at_the_smallest_scale_that_fits(tmp_path):
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), _photo(4000, 3000))
    assert to_pixels(path).array.shape == (3000, 4000, 3)
    # 224×224 stretch: 1/8 leaves 500×375, both sides over 224
    assert to_pixels(path, target=DecodeTarget(224, 224)).array.shape == (375, 500, 3)
    # 400 wide and high: 1/4 would leave 750 wide but 1/8 only 375 high
    assert to_pixels(path, target=DecodeTarget(400, 400)).array.shape == (750, 1000, 3)
    # letterbox needs one side: 1/8 leaves 500 ≥ 400
    assert to_pixels(path, target=DecodeTarget(400, 400, "letterbox")).array.shape == (375, 500, 3)
    # bytes take the same path
    assert to_pixels(path.read_bytes(), target=DecodeTarget(224, 224)).array.shape == (375, 500, 3)


def test_png_and_small_jpegs_are_not_scaled(tmp_path):
    cv2.imwrite(str(tmp_path / "big.png"), _photo(1200, 900))
    cv2.imwrite(str(tmp_path / "small.jpg"), _photo(300, 200))
    assert to_pixels(tmp_path / "big.png", target=DecodeTarget(64, 64)).array.shape == (900, 1200, 3)
    assert to_pixels(tmp_path / "small.jpg", target=DecodeTarget(224, 224)).array.shape == (200, 300, 3)


def test_exif_orientation_is_kept_at_reduced_scale(tmp_path):
    from PIL import Image

    image = np.zeros((800, 1600, 3), np.uint8)
    image[:, :200] = 255  # a white band on the left: after a 90° turn (EXIF 6) it is on top
    pil = Image.fromarray(image)
    exif = pil.getexif()
    exif[0x0112] = 6
    pil.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    full = to_pixels(tmp_path / "turned.jpg").array
    small = to_pixels(tmp_path / "turned.jpg", target=DecodeTarget(96, 96)).array
    assert full.shape == (1600, 800, 3) and small.shape == (200, 100, 3)
    assert small[:10].mean() > 250 and small[-10:].mean() < 5


@pytest.mark.parametrize("fmt", ["tflite_int8", "onnx_fp32"])
def test_classify_reads_a_large_jpeg_reduced_with_the_same_answer(seed_exports, tmp_path, fmt):
    """The model sees the same picture: top-1 and scores match classifying the fully decoded array."""
    from skimage import data

    with Classifier.from_path(seed_exports[1][fmt]) as clf:
        assert clf.decode_target == DecodeTarget(32, 32, clf.card.input.resize)
        for i, photo in enumerate((data.astronaut(), data.chelsea(), data.coffee())):
            path = tmp_path / f"{i}.jpg"
            cv2.imwrite(str(path), cv2.resize(photo[:, :, ::-1], (3000, 2000), interpolation=cv2.INTER_CUBIC))
            full = clf.scores(cv2.imread(str(path)))
            reduced = clf.scores(path)
            assert int(np.argmax(full)) == int(np.argmax(reduced))
            assert np.abs(full - reduced).max() < 0.02
