"""Drawing the top label and score on a frame."""

from __future__ import annotations

import cv2
import numpy as np

from edgecls.runtime.frames import FrameResult

__all__ = ["annotate", "explanation_picture", "heat_overlay", "label_box"]

PICTURE_SIDE = 256
"""Explanation pictures of smaller images are enlarged to this shorter side (a 32×32 digit would be
mostly label box)."""


def annotate(frame: np.ndarray, result: FrameResult) -> np.ndarray:
    """A BGR copy of ``frame`` with "label score" in a filled box at the top left
    ("-" when no category passed the threshold)."""
    top = result.top
    return label_box(_bgr(frame), f"{top.label} {top.score:.2f}" if top else "-")


def _bgr(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 or frame.shape[2] == 1 else frame[:, :, :3].copy()


def heat_overlay(image: np.ndarray, heatmap: np.ndarray, text: str, alpha: float = 0.5) -> np.ndarray:
    """``image`` (BGR) blended with ``heatmap`` (its size; scaled from its minimum to its maximum) in
    OpenCV's JET colours, ``text`` in a box at the top left."""
    heat = heatmap.astype(np.float32)
    span = float(heat.max() - heat.min())
    scaled = ((heat - heat.min()) / span * 255 if span > 0 else np.zeros_like(heat)).astype(np.uint8)
    colours = cv2.applyColorMap(scaled, cv2.COLORMAP_JET)
    return label_box(cv2.addWeighted(_bgr(image), 1 - alpha, colours, alpha, 0), text)


def explanation_picture(image: np.ndarray, explanation) -> np.ndarray:
    """The picture ``edgecls explain`` writes: ``image`` (BGR) with the explanation's map over it and
    "label score" on it, enlarged (nearest neighbour: the pixels stay visible) when its shorter side is
    under ``PICTURE_SIDE``."""
    factor = max(1, -(-PICTURE_SIDE // min(image.shape[:2])))
    heat = explanation.heatmap
    if factor > 1:
        size = (image.shape[1] * factor, image.shape[0] * factor)
        image = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_NEAREST)
    return heat_overlay(image, heat, f"{explanation.label} {explanation.score:.2f}")


def label_box(out: np.ndarray, text: str) -> np.ndarray:
    """``text`` drawn in a filled box at the top left of ``out`` (modified, and returned)."""
    scale = max(0.3, out.shape[0] / 720.0)
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, h // 4)
    cv2.rectangle(out, (0, 0), (w + 2 * pad, h + base + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(out, text, (pad, h + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
