"""Drawing the top label and score on a frame."""

from __future__ import annotations

import cv2
import numpy as np

from edgecls.runtime.frames import FrameResult

__all__ = ["annotate"]


def annotate(frame: np.ndarray, result: FrameResult) -> np.ndarray:
    """A BGR copy of ``frame`` with "label score" in a filled box at the top left
    ("-" when no category passed the threshold)."""
    out = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 or frame.shape[2] == 1 else frame[:, :, :3].copy()
    top = result.top
    text = f"{top.label} {top.score:.2f}" if top else "-"
    scale = max(0.3, out.shape[0] / 720.0)
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, h // 4)
    cv2.rectangle(out, (0, 0), (w + 2 * pad, h + base + 2 * pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(out, text, (pad, h + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
