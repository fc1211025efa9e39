"""Preprocessing: resize modes, colour, the normalization/quantization table, layout."""

import cv2
import numpy as np
import pytest

from edgecls.runtime.card import InputSpec, Normalization, Quantization
from edgecls.runtime.images import Pixels
from edgecls.runtime.preprocess import Preprocessor, build_lut
from edgecls.runtime.resize import fast_resize, fit

RNG = np.random.default_rng(0)


def frame(h=48, w=64, c=3):
    return RNG.integers(0, 256, (h, w, c), dtype=np.uint8)


def test_lut_matches_the_formula_per_channel():
    spec = InputSpec(8, 8, dtype="int8", quantization=Quantization(0.02, -5),
                     normalization=Normalization(False, (123.7, 116.3, 103.5), (58.4, 57.1, 57.4)))
    lut = build_lut(spec)
    assert lut.shape == (1, 256, 3) and lut.dtype == np.int8
    v = np.arange(256.0)[:, None]
    expected = np.clip(np.round(((v - [123.7, 116.3, 103.5]) / [58.4, 57.1, 57.4]) / 0.02 - 5), -128, 127)
    assert np.array_equal(lut[0], expected.astype(np.int8))


def test_uint8_raw_pixels_take_the_passthrough_path():
    assert build_lut(InputSpec(8, 8, dtype="uint8", quantization=Quantization(1.0, 0))) is None
    assert build_lut(InputSpec(8, 8, dtype="uint8")) is None
    shifted = build_lut(InputSpec(8, 8, dtype="uint8", quantization=Quantization(1.0, 3)))
    assert shifted[0, 0, 0] == 3 and shifted[0, 255, 0] == 255


def test_float_model_gets_normalized_rgb_in_nchw():
    spec = InputSpec(16, 24, layout="NCHW", normalization=Normalization(False, (127.5,), (127.5,)))
    image = frame()
    out = Preprocessor(spec)(Pixels(image, "bgr"))
    assert out.shape == (3, 16, 24) and out.dtype == np.float32 and out.flags.c_contiguous
    reference = cv2.cvtColor(fast_resize(image, 24, 16), cv2.COLOR_BGR2RGB).astype(np.float32)
    assert np.allclose(out, ((reference - 127.5) / 127.5).transpose(2, 0, 1), atol=1e-6)


def test_bgr_and_rgb_inputs_give_the_same_tensor():
    pre = Preprocessor(InputSpec(8, 8, dtype="uint8"))
    image = frame()
    assert np.array_equal(pre(Pixels(image, "bgr")), pre(Pixels(np.ascontiguousarray(image[:, :, ::-1]), "rgb")))
    bgra = np.dstack([image, np.full(image.shape[:2], 7, np.uint8)])
    assert np.array_equal(pre(Pixels(bgra, "bgr")), pre(Pixels(image, "bgr")))


def test_gray_input_and_gray_model():
    gray = frame(c=1)
    rgb_model = Preprocessor(InputSpec(8, 8, dtype="uint8"))(Pixels(gray, "bgr"))
    assert rgb_model.shape == (8, 8, 3) and np.array_equal(rgb_model[..., 0], rgb_model[..., 2])
    gray_model = Preprocessor(InputSpec(8, 8, channels=1, color="gray", dtype="float32"))(Pixels(frame(), "rgb"))
    assert gray_model.shape == (8, 8, 1)


def test_float16_model_input():
    out = Preprocessor(InputSpec(8, 8, dtype="float16"))(Pixels(frame(), "bgr"))
    assert out.dtype == np.float16 and out.max() <= 255


def test_fast_resize_is_close_to_area_interpolation():
    image = cv2.GaussianBlur(frame(480, 640), (0, 0), 2)
    fast = fast_resize(image, 224, 224).astype(np.float32)
    area = cv2.resize(image, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32)
    linear = cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    assert np.abs(fast - area).mean() < np.abs(linear - area).mean()
    assert np.abs(fast - area).mean() < 2.0


def test_resize_modes():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 200  # bright centre square
    assert fit(image, 10, 10, "stretch").shape == (10, 10, 3)
    crop = fit(image, 10, 10, "crop")
    assert crop.min() == 200  # the centre crop is all bright
    box = fit(image, 10, 10, "letterbox")
    assert box.shape == (10, 10, 3)
    assert box[0].max() == 0 and box[-1].max() == 0  # padded rows top and bottom
    assert box[5].max() > 0
    with pytest.raises(ValueError, match="unknown resize mode"):
        fit(image, 10, 10, "zoom")


def test_one_pixel_image_upscales():
    out = Preprocessor(InputSpec(8, 8, dtype="uint8"))(Pixels(np.full((1, 1, 3), 9, np.uint8), "bgr"))
    assert out.shape == (8, 8, 3) and (out == 9).all()


@pytest.mark.parametrize("spec", [
    InputSpec(224, 224, dtype="uint8"), InputSpec(32, 32, normalization=Normalization(False, (127.5,), (127.5,))),
    InputSpec(224, 224, dtype="int8", quantization=Quantization(0.5, -3)), InputSpec(32, 32, channels=1, color="gray"),
    InputSpec(8, 8, layout="NCHW"), InputSpec(8, 8, dtype="float16"), InputSpec(16, 24, color="bgr"),
    InputSpec(32, 32, resize="letterbox")], ids=lambda s: f"{s.dtype}-{s.layout}-{s.color}-{s.resize}")
def test_an_input_written_into_a_batch_slot_is_the_input_made_alone(spec):
    """``Preprocessor.into`` (regions resize straight into the engine's batch) gives exactly what ``__call__``
    gives, for pictures smaller and larger than the input, either colour order."""
    pre = Preprocessor(spec)
    rng = np.random.default_rng(0)
    for shape in ((100, 80, 3), (400, 500, 3), (spec.height, spec.width, 3), (50, 60, 1)):
        for order in ("bgr", "rgb"):
            pixels = Pixels(rng.integers(0, 256, shape, dtype=np.uint8), order)
            batch = pre.buffer(3)
            pre.into(pixels, batch[1])
            alone = pre(pixels)
            assert batch.shape[1:] == alone.shape and batch.dtype == alone.dtype
            np.testing.assert_array_equal(batch[1], alone)
