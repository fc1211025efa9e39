"""Showing annotated frames in an OpenCV window."""

from __future__ import annotations

import os
import sys

import cv2

from edgecls.runtime.frames import FrameResult
from edgecls.sinks.base import SinkError
from edgecls.sinks.draw import annotate

__all__ = ["WindowSink", "gui_problem"]

_HINT = ("pip uninstall -y opencv-python-headless && pip install opencv-python "
         "(the full OpenCV wheel has the window support the headless one lacks)")


def gui_problem(build_info: str | None = None, environ: dict | None = None, platform: str | None = None) -> str | None:
    """Why a window cannot be shown here, or None when it can."""
    info = cv2.getBuildInformation() if build_info is None else build_info
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    gui = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    if gui.upper() in ("", "NONE", "NO"):
        return f"this OpenCV ({cv2.__version__}) is built without GUI support; to show a window: {_HINT}"
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "no display: set DISPLAY (or WAYLAND_DISPLAY), or run on a desktop session"
    return None


class WindowSink:
    """Shows each annotated frame; closing the window or pressing q / Esc stops the stream.

    Raises:
        SinkError: no GUI support in this OpenCV, or no display.
    """

    def __init__(self, title: str = "edgecls") -> None:
        problem = gui_problem()
        if problem:
            raise SinkError(f"window display: {problem}")
        self._title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def send(self, result: FrameResult) -> bool:
        if result.frame is None:
            raise SinkError("window: the stream does not keep frames (use keep_frames=True)")
        cv2.imshow(self._title, annotate(result.frame, result))
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(self._title, cv2.WND_PROP_VISIBLE) >= 1
        return visible and key not in (ord("q"), 27)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self._title)
            cv2.waitKey(1)
        except cv2.error:  # the user already closed it
            pass
