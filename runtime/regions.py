"""Regions of a frame: the boxes a detector found, and the crop policy that turns each into a model input.

A camera classifier usually runs second: a detector (Frigate, DeepStack/CodeProject.AI, a YOLO or SSD
model, a motion box) finds objects and the classifier says which one each box holds. This module reads
the boxes in the shapes those tools write (:func:`regions_from`), and decides for each which part of the
frame the model sees (:class:`CropPolicy`, :meth:`CropPolicy.plan`); :meth:`Classifier.classify_regions
<edgecls.runtime.Classifier.classify_regions>` runs the crops of a frame as one batch.

The policies, as ``--crop`` text (``MODE[:SCALE][,min=N][,shift|pad[=V|=edge]][,area|linear|warp]``):

- ``square`` (the default, and Frigate's object-classification rule as ``frigate``): a square whose side
  is the box's longest edge × ``SCALE``, centred on the box. The object keeps its shape (a tall person is
  not squashed) and the model sees the frame around it rather than padding.
- ``stretch`` (MediaPipe's ``region_of_interest``): the box × ``SCALE`` around its centre, resized to the
  input without keeping its aspect ratio.
- ``letterbox``: the box × ``SCALE``, resized to fit inside the input, the rest black.

How a crop stays inside the frame: ``shift`` (default; Frigate's) moves it inside, and a crop larger
than the frame is cut to it; ``pad`` leaves it where it is and fills what lies outside with a constant
(``pad=0``, black, by default; ``pad=114`` grey) or the nearest edge pixels (``pad=edge``).
``min=N`` skips boxes whose shorter side is under N frame pixels (too few pixels to tell anything), with
that reason. A box is clipped to the frame first; one wholly outside is skipped.

How a crop is shrunk to the input: ``area`` (default) filters it (no aliasing: a 300-pixel box read at
32×32 averages its pixels); ``linear`` is one bilinear resize with pixel centres aligned (``cv2.resize``,
what Frigate does to its crops); ``warp`` is bilinear with corners aligned (MediaPipe's image-to-tensor
warp). ``frigate`` and ``mediapipe`` use theirs: a model trained on their crops sees the same pixels,
and the answers match theirs box for box.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edgecls.runtime.errors import RegionError
from edgecls.runtime.resize import SAMPLES

__all__ = ["Region", "Crop", "CropPolicy", "DEFAULT_CROP", "CROP_MODES", "regions_from", "read_boxes", "cut",
           "MAX_BOXES_BYTES"]

CROP_MODES = ("square", "stretch", "letterbox")
MAX_BOXES_BYTES = 8 << 20
"""A boxes file (or request field) over 8 MiB is refused unread."""
MAX_SCALE = 10.0
NAMED = {"frigate": "square:1.0,shift,linear", "mediapipe": "stretch:1.0,shift,warp"}
_NUMBERS = (int, float, np.integer, np.floating)
"""Named policies: what Frigate's custom object classification and MediaPipe's region of interest do."""


@dataclass(frozen=True)
class Region:
    """One box of a frame: ``x_min, y_min, x_max, y_max`` in pixels (or, ``normalized``, as fractions 0–1
    of the frame's width and height, as MediaPipe's ``Rect``), with what the detector said of it."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    normalized: bool = False
    label: str | None = None
    """The detector's label (``person``), kept beside the classifier's answer."""
    confidence: float | None = None
    """The detector's confidence."""

    def __post_init__(self) -> None:
        values = (self.x_min, self.y_min, self.x_max, self.y_max)
        for name, v in zip(("x_min", "y_min", "x_max", "y_max"), values, strict=True):
            if type(v) is not float:  # a float needs no conversion
                if not isinstance(v, _NUMBERS) or isinstance(v, bool):
                    raise RegionError(f"a box is four finite numbers x_min, y_min, x_max, y_max; got {values}"[:200])
                try:
                    v = float(v)  # numpy numbers and ints in, plain (JSON-ready) floats kept
                except OverflowError:  # an integer beyond any float
                    v = math.inf
                object.__setattr__(self, name, v)
        if not all(map(math.isfinite, (self.x_min, self.y_min, self.x_max, self.y_max))):
            raise RegionError(f"a box is four finite numbers x_min, y_min, x_max, y_max; got {values}"[:200])
        if self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise RegionError(f"a box needs x_max > x_min and y_max > y_min; got {values}")

    def in_pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The box in the pixels of a ``width`` × ``height`` frame."""
        if self.normalized:
            return self.x_min * width, self.y_min * height, self.x_max * width, self.y_max * height
        return self.x_min, self.y_min, self.x_max, self.y_max

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"x_min": self.x_min, "y_min": self.y_min, "x_max": self.x_max, "y_max": self.y_max}
        if self.normalized:
            data["normalized"] = True
        if self.label is not None:
            data["label"] = self.label
        if self.confidence is not None:
            data["confidence"] = self.confidence
        return data


@dataclass(frozen=True)
class Crop:
    """The part of the frame a model input was made from: ``left, top, right, bottom`` in frame pixels
    (right and bottom exclusive; under ``pad`` it may reach outside the frame), and how it was fitted."""

    left: int
    top: int
    right: int
    bottom: int
    fit: str
    """``stretch`` or ``letterbox``: how the crop was resized to the model's input."""

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def to_dict(self) -> dict[str, Any]:
        return {"left": self.left, "top": self.top, "right": self.right, "bottom": self.bottom, "fit": self.fit}


@dataclass(frozen=True)
class CropPolicy:
    """How a box becomes the crop a model sees (see the module's docstring for each choice and why).

    Raises:
        OptionError (RegionError): an unknown mode, a scale outside (0, 10], a negative minimum, an
            unknown way to stay inside, a pad value outside 0–255.
    """

    mode: str = "square"
    scale: float = 1.0
    min_size: int = 0
    """Boxes whose shorter side is under this many frame pixels are skipped (0: none)."""
    inside: str = "shift"
    """``shift`` the crop into the frame, or ``pad`` what lies outside it."""
    pad: int | str = 0
    """Under ``pad``: a grey level 0–255, or ``"edge"`` (the nearest frame pixels)."""
    sample: str = "area"
    """How the crop is shrunk to the input: ``area`` (anti-aliased), ``linear`` (bilinear, Frigate's) or
    ``warp`` (bilinear, corners aligned: MediaPipe's)."""

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise RegionError(f"unknown crop mode {self.mode!r}; choose from {', '.join(CROP_MODES)} "
                              f"(or the named {', '.join(NAMED)})", options=("crop",))
        if not 0 < self.scale <= MAX_SCALE:
            raise RegionError(f"crop scale must be in (0, {MAX_SCALE:g}], got {self.scale}", options=("crop",))
        if self.min_size < 0:
            raise RegionError(f"crop min must be >= 0 pixels, got {self.min_size}", options=("crop",))
        if self.inside not in ("shift", "pad"):
            raise RegionError(f"a crop stays inside the frame by 'shift' or 'pad', got {self.inside!r}",
                              options=("crop",))
        if self.pad != "edge" and not (isinstance(self.pad, int) and 0 <= self.pad <= 255):
            raise RegionError(f"crop pad is a grey level 0-255 or 'edge', got {self.pad!r}", options=("crop",))
        if self.sample not in SAMPLES:
            raise RegionError(f"a crop is shrunk by {' or '.join(SAMPLES)}, got {self.sample!r}", options=("crop",))

    @classmethod
    def parse(cls, text: str | CropPolicy | None) -> CropPolicy:
        """A policy from its text (``square:1.2,min=64,shift``, ``stretch``, ``letterbox,pad=edge``,
        ``frigate``, ``stretch,warp``); a policy passes through; None is the default.

        Raises:
            RegionError: text that is none of these, naming the part it could not read.
        """
        if text is None:
            return DEFAULT_CROP
        if isinstance(text, CropPolicy):
            return text
        if not isinstance(text, str):
            raise RegionError(f"a crop policy is text like 'square:1.2,min=64,shift', got {type(text).__name__}",
                              options=("crop",))
        head, *parts = [p.strip() for p in NAMED.get(text.strip(), text).split(",")]
        mode, _, scale = head.partition(":")
        fields: dict[str, Any] = {"mode": mode.strip(), "scale": _number(scale, text) if scale else 1.0}
        for part in parts:
            key, _, value = part.partition("=")
            if key == "min" and value:
                fields["min_size"] = int(_number(value, text))
            elif key == "shift" and not value:
                fields["inside"] = "shift"
            elif key in SAMPLES and not value:
                fields["sample"] = key
            elif key == "pad":
                fields["inside"] = "pad"
                if value:
                    fields["pad"] = "edge" if value == "edge" else int(_number(value, text))
            else:
                raise RegionError(f"crop policy {text!r}: cannot read {part!r} (give min=N, shift, pad, "
                                  "pad=V, pad=edge, area, linear or warp)", options=("crop",))
        return cls(**fields)

    def to_text(self) -> str:
        """The policy as ``--crop`` text (what a card stores)."""
        text = f"{self.mode}:{self.scale:g}"
        if self.min_size:
            text += f",min={self.min_size}"
        text += ",shift" if self.inside == "shift" else ",pad" if self.pad == 0 else f",pad={self.pad}"
        return text + ("" if self.sample == "area" else f",{self.sample}")

    def plan(self, region: Region, width: int, height: int) -> Crop | str:
        """The crop of ``region`` in a ``width`` × ``height`` frame, or why it is skipped (a sentence)."""
        x0, y0, x1, y1 = region.in_pixels(width, height)
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
        if x1 <= x0 or y1 <= y0:
            return "outside the frame"
        if min(x1 - x0, y1 - y0) < self.min_size:
            return f"smaller than the crop policy's min={self.min_size} px ({x1 - x0:.0f}x{y1 - y0:.0f})"
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w, h = (x1 - x0) * self.scale, (y1 - y0) * self.scale
        if self.mode == "square":
            w = h = max(w, h)
        w, h = max(1, round(w)), max(1, round(h))
        left, top = math.floor(cx - w / 2), math.floor(cy - h / 2)
        if self.inside == "shift":
            w, h = min(w, width), min(h, height)
            left, top = min(max(0, left), width - w), min(max(0, top), height - h)
        return Crop(left, top, left + w, top + h, "letterbox" if self.mode == "letterbox" else "stretch")


DEFAULT_CROP = CropPolicy()
"""``square:1,shift``: Frigate's crop, shrunk anti-aliased (see the module's docstring for why it is the
default)."""


def _number(text: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RegionError(f"crop policy {whole!r}: {text!r} is not a number", options=("crop",)) from None
    if not math.isfinite(value):
        raise RegionError(f"crop policy {whole!r}: {text!r} is not a finite number", options=("crop",))
    return value


def cut(frame: np.ndarray, crop: Crop, policy: CropPolicy) -> np.ndarray:
    """The pixels of ``crop`` (a view of ``frame`` when it lies inside; padded as ``policy`` says when not)."""
    height, width = frame.shape[:2]
    inner = frame[max(0, crop.top):min(height, crop.bottom), max(0, crop.left):min(width, crop.right)]
    border = (max(0, -crop.top), max(0, crop.bottom - height), max(0, -crop.left), max(0, crop.right - width))
    if not any(border):
        return inner
    if policy.pad == "edge":
        return cv2.copyMakeBorder(inner, *border, cv2.BORDER_REPLICATE)
    return cv2.copyMakeBorder(inner, *border, cv2.BORDER_CONSTANT, value=(policy.pad,) * 4)


_PIXEL_KEYS = ("x_min", "y_min", "x_max", "y_max")


def _region(item: Any, index: int) -> Region:
    """One region from a box tuple, a :class:`Region`, a DeepStack prediction or a Frigate-style dict."""
    if isinstance(item, Region):
        return item
    try:
        if type(item) in _PLAIN_BOXES and len(item) == 4 and all(type(v) in _PLAIN_NUMBERS for v in item):
            return Region(*item)  # the common case, checked cheaply (Region checks and converts the values)
        if isinstance(item, Mapping):
            label, confidence = item.get("label"), item.get("confidence", item.get("score"))
            normalized = bool(item.get("normalized", False))
            box = [item[k] for k in _PIXEL_KEYS] if all(k in item for k in _PIXEL_KEYS) else item.get("box")
            if box is None:
                raise RegionError("a box dict has x_min, y_min, x_max, y_max (DeepStack) or box: [4 numbers]")
            return Region(*_four(box), normalized=normalized, label=None if label is None else str(label),
                          confidence=None if confidence is None else float(confidence))
        return Region(*_four(item))
    except RegionError as exc:
        raise RegionError(f"region {index}: {exc}", options=("boxes",)) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise RegionError(f"region {index}: not a box ({exc})", options=("boxes",)) from None


_BOX_TYPES = (Sequence, np.ndarray)
_PLAIN_BOXES = (tuple, list)
_PLAIN_NUMBERS = (int, float)


def _four(box: Any) -> tuple[Any, Any, Any, Any]:
    """The four numbers of a 4-number sequence (their values are checked, and made floats, by :class:`Region`)."""
    if isinstance(box, (str, bytes)) or not isinstance(box, _BOX_TYPES) or len(box) != 4:
        raise RegionError(f"a box is four numbers x_min, y_min, x_max, y_max; got {box!r}"[:200])
    x0, y0, x1, y1 = box
    for v in box:
        if not isinstance(v, _NUMBERS) or isinstance(v, bool):
            raise RegionError(f"a box is four numbers x_min, y_min, x_max, y_max; got {box!r}"[:200])
    return x0, y0, x1, y1


def regions_from(data: Any, *, max_regions: int | None = None) -> list[Region]:
    """Regions from what a caller or a detector gives: a list of boxes (4-number sequences, :class:`Region`,
    DeepStack predictions ``{x_min, y_min, x_max, y_max, label, confidence}``, dicts with ``box: [4]``
    and optionally ``normalized: true``), or a whole DeepStack detection answer (``{"predictions": [...]}``).

    Raises:
        RegionError: a box that is not four finite numbers with max > min (naming its index), data of
            another shape, or more than ``max_regions`` boxes.
    """
    if isinstance(data, Mapping):
        if "predictions" not in data:
            raise RegionError("boxes are a list, or a DeepStack detection answer with 'predictions'",
                              options=("boxes",))
        data = data["predictions"]
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise RegionError(f"boxes are a list of boxes, got {type(data).__name__}", options=("boxes",))
    regions = []
    for index, item in enumerate(data):
        if max_regions is not None and index >= max_regions:
            raise RegionError(f"more than {max_regions} boxes in one frame", options=("boxes",))
        regions.append(_region(item, index))
    return regions


def read_boxes(path: str | os.PathLike) -> list[Region]:
    """The regions a JSON file holds (a list of boxes, or a DeepStack detection answer saved as it came; see
    :func:`regions_from`).

    Raises:
        RegionError: the file is missing, over :data:`MAX_BOXES_BYTES`, not UTF-8 JSON, or holds no boxes
            (the message names the file and the cause).
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BOXES_BYTES + 1)
    except OSError as exc:
        raise RegionError(f"{path}: cannot read the boxes file ({exc.strerror or exc})", options=("boxes",)) from exc
    if len(data) > MAX_BOXES_BYTES:
        raise RegionError(f"{path}: a boxes file is at most {MAX_BOXES_BYTES >> 20} MiB", options=("boxes",))
    try:
        return regions_from(json.loads(data))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        if isinstance(exc, RegionError):
            raise RegionError(f"{path}: {exc}", options=("boxes",)) from None
        raise RegionError(f"{path}: not a JSON boxes file ({exc})", options=("boxes",)) from None
