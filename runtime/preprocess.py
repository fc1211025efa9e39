"""Frame → input tensor, driven by the model card's :class:`InputSpec`.

Pipeline (all OpenCV, no float round trip unless the model wants floats):
resize by mode on the source pixels → colour conversion on the small image →
one ``cv2.LUT`` that applies normalization and quantization → layout.
Normalization and quantization of 8-bit pixels are a per-channel function of
256 possible values, so a lookup table does both exactly in one pass; a
uint8-input model that takes raw pixels skips even that.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgecls.runtime.card import InputSpec
from edgecls.runtime.images import DecodeTarget, Pixels
from edgecls.runtime.resize import Scratch, fit, resize_to, written

__all__ = ["Preprocessor", "build_lut"]

# (source channels, source order, target colour) -> cv2 conversion code or None.
_COLOR_CODES: dict[tuple[int, str, str], int | None] = {
    (1, "bgr", "gray"): None,
    (1, "bgr", "rgb"): cv2.COLOR_GRAY2RGB,
    (1, "bgr", "bgr"): cv2.COLOR_GRAY2BGR,
    (3, "bgr", "rgb"): cv2.COLOR_BGR2RGB,
    (3, "bgr", "bgr"): None,
    (3, "bgr", "gray"): cv2.COLOR_BGR2GRAY,
    (3, "rgb", "rgb"): None,
    (3, "rgb", "bgr"): cv2.COLOR_RGB2BGR,
    (3, "rgb", "gray"): cv2.COLOR_RGB2GRAY,
    (4, "bgr", "rgb"): cv2.COLOR_BGRA2RGB,
    (4, "bgr", "bgr"): cv2.COLOR_BGRA2BGR,
    (4, "bgr", "gray"): cv2.COLOR_BGRA2GRAY,
    (4, "rgb", "rgb"): cv2.COLOR_RGBA2RGB,
    (4, "rgb", "bgr"): cv2.COLOR_RGBA2BGR,
    (4, "rgb", "gray"): cv2.COLOR_RGBA2GRAY,
}

_INT_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}
GROUP = 8
"""Pictures :meth:`Preprocessor.into_many` colours and looks up in one call (its staging holds that many)."""


def build_lut(spec: InputSpec) -> np.ndarray | None:
    """The 256-entry table mapping a pixel to the model's input value, per channel.

    Returns None when the model takes raw uint8 pixels (identity). The table has
    shape (1, 256, C) and the model's input dtype (float16 inputs get a float32
    table; the caller casts).
    """
    channels = spec.channels
    values = np.arange(256, dtype=np.float64)[:, None].repeat(channels, axis=1)
    norm = spec.normalization
    if not norm.baked:
        mean = np.broadcast_to(np.asarray(norm.mean, dtype=np.float64), (channels,))
        std = np.broadcast_to(np.asarray(norm.std, dtype=np.float64), (channels,))
        values = (values - mean) / std
    if spec.dtype in _INT_RANGES:
        low, high = _INT_RANGES[spec.dtype]
        if spec.quantization is not None:
            q = spec.quantization
            values = np.round(values / q.scale + q.zero_point)
        table = np.clip(values, low, high).astype(spec.dtype)
        if spec.dtype == "uint8" and np.array_equal(table[:, 0], np.arange(256)) and (
            table == table[:, :1]
        ).all():
            return None
    else:
        table = values.astype(np.float32)
    return np.ascontiguousarray(table[None, :, :])


class Preprocessor:
    """Callable turning :class:`Pixels` into one model input (no batch axis)."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self._lut = build_lut(spec)
        self._cast = np.float16 if spec.dtype == "float16" else None
        self._scratch = Scratch()
        self._shape = (spec.channels, spec.height, spec.width) if spec.layout == "NCHW" else (
            spec.height, spec.width, spec.channels)
        """One input's shape, in the input's layout (no batch axis)."""
        self._dtype = np.dtype(np.float16 if self._cast is not None else
                               self._lut.dtype if self._lut is not None else np.uint8)

    @property
    def target(self) -> DecodeTarget:
        """What a decoder must leave at least: the input size and resize mode (see :func:`to_pixels`)."""
        return DecodeTarget(self.spec.width, self.spec.height, self.spec.resize)

    def buffer(self, n: int) -> np.ndarray:
        """An uninitialised batch of ``n`` inputs (what :meth:`into` fills), in the input's layout and dtype."""
        return np.empty((n, *self._shape), self._dtype)

    def spare(self) -> np.ndarray:
        """This thread's batch of one input (what :meth:`buffer` makes), the same array from call to call."""
        return self._scratch.get((1, *self._shape), self._dtype, role="spare")

    def into(self, pixels: Pixels, out: np.ndarray, *, resize: str | None = None, sample: str = "area") -> None:
        """Write the model input for ``pixels`` into ``out`` (one slot of a batch buffer, or the engine's own
        input): a stretched 3-channel NHWC input is resized, its colour converted and its lookup table applied
        in reused per-thread buffers, the last of those steps writing into ``out`` (no allocation once a frame
        size was seen); the colour is converted on whichever is smaller, the picture or the input. Any other
        input is made by :meth:`__call__` and copied in. ``sample``: how a picture is shrunk
        (:data:`~edgecls.runtime.resize.SAMPLES`)."""
        spec = self.spec
        image = pixels.array
        if not self._direct(resize, image):
            out[...] = self(pixels, resize=resize, sample=sample)
            return
        code = _COLOR_CODES[(3, pixels.order, spec.color)]
        small = image.shape[0] * image.shape[1] <= spec.height * spec.width
        if code is not None and sample != "warp" and small:  # convert the smaller: the picture
            image, code = cv2.cvtColor(image, code, dst=self._scratch.get(image.shape, role="colour-first")), None
        steps = (code is not None) + (self._lut is not None)  # after the resize
        resized = resize_to(image, spec.width, spec.height, "linear" if sample == "area" and small else sample,
                            scratch=self._scratch, out=out if steps == 0 else self._scratch.get(out.shape, role="resized"))
        if code is not None:
            resized = cv2.cvtColor(resized, code, dst=out if self._lut is None else self._scratch.get(out.shape,
                                                                                                        role="colour"))
        if self._lut is not None:
            cv2.LUT(resized, self._lut, dst=out)

    def into_many(self, pictures: Sequence[np.ndarray], order: str, out: np.ndarray, *, resize: str | None = None,
                  sample: str = "area") -> None:
        """Write the model input of each picture (colour ``order``) into its slot of ``out`` (a batch from
        :meth:`buffer`): as :meth:`into`, bit for bit, but the pictures are resized into a per-thread staging
        batch of :data:`GROUP` and the colour conversion and lookup table run once over each group (a colour swap
        permutes channels, so it commutes with the resize exactly). Inputs :meth:`into` would make another way
        are made one by one."""
        if not all(self._direct(resize, picture) for picture in pictures):
            for picture, slot in zip(pictures, out, strict=True):
                self.into(Pixels(picture, order), slot, resize=resize, sample=sample)
            return
        for start in range(0, len(pictures), GROUP):
            self._group(pictures[start:start + GROUP], order, out[start:start + GROUP], sample)

    def _group(self, pictures: Sequence[np.ndarray], order: str, out: np.ndarray, sample: str) -> None:
        spec, n = self.spec, len(pictures)
        code = _COLOR_CODES[(3, order, spec.color)]
        stage = out if code is None and self._lut is None else self._staging(n, "stage")
        linear = "linear" if sample == "area" else sample  # a picture no larger than the input is not shrunk
        for picture, slot in zip(pictures, stage, strict=True):  # crops differ in size: their halvings are
            small = picture.shape[0] * picture.shape[1] <= spec.height * spec.width  # not worth keeping
            resize_to(picture, spec.width, spec.height, linear if small else sample, out=slot)
        rows = (n * spec.height, spec.width, 3)  # the group as one picture: one OpenCV call each
        if code is not None:
            colour = out if self._lut is None else self._staging(n, "stage-colour")
            written(cv2.cvtColor(stage.reshape(rows), code, dst=colour.reshape(rows)), colour.reshape(rows))
            stage = colour
        if self._lut is not None:
            written(cv2.LUT(stage.reshape(rows), self._lut, dst=out.reshape(rows)), out.reshape(rows))

    def _direct(self, resize: str | None, image: np.ndarray) -> bool:
        """Whether :meth:`into` makes the input of ``image`` in reused buffers (a stretched 3-channel NHWC
        8-bit or float32 input from a 3-channel picture) rather than through :meth:`__call__`."""
        spec = self.spec
        return ((resize or spec.resize) == "stretch" and spec.layout == "NHWC" and self._cast is None
                and spec.channels == 3 and image.ndim == 3 and image.shape[2] == 3)

    def _staging(self, n: int, role: str) -> np.ndarray:
        """This thread's uint8 batch of ``n`` ≤ :data:`GROUP` pictures at the input size (one array of
        :data:`GROUP` kept per role: 1.2 MB at 224×224)."""
        return self._scratch.get((GROUP, self.spec.height, self.spec.width, 3), role=role)[:n]

    def __call__(self, pixels: Pixels, *, resize: str | None = None, sample: str = "area") -> np.ndarray:
        """The model input for ``pixels``, fitted by ``resize`` (default: the card's mode), shrunk by ``sample``
        (:data:`~edgecls.runtime.resize.SAMPLES`)."""
        spec = self.spec
        image = fit(pixels.array, spec.width, spec.height, resize or spec.resize, sample)
        order = pixels.order if image.shape[2] > 1 else "bgr"
        code = _COLOR_CODES[(image.shape[2], order, spec.color)]
        if code is not None:
            image = cv2.cvtColor(image, code)
            if image.ndim == 2:
                image = image[:, :, None]
        if self._lut is not None:
            image = cv2.LUT(image, self._lut)
            if image.ndim == 2:
                image = image[:, :, None]
        if self._cast is not None:
            image = image.astype(self._cast)
        if spec.layout == "NCHW":
            image = image.transpose(2, 0, 1)
        return np.ascontiguousarray(image)
