"""Writing an annotated video: complete under the final name, or not there at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edgecls.runtime.frames import FrameResult
from edgecls.sinks.base import SinkError
from edgecls.sinks.draw import annotate

__all__ = ["VideoFileSink", "FOURCC_BY_SUFFIX"]

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


class VideoFileSink:
    """Writes each result's frame with its top label drawn on it.

    The video goes to a temporary file next to ``path`` and is renamed on ``close()``, so
    ``path`` holds either a finished video (also after Ctrl-C) or nothing.

    Raises:
        SinkError: unsupported suffix, missing folder, ``path`` exists and not ``overwrite``,
            or OpenCV has no encoder for the container.
    """

    def __init__(self, path: str | os.PathLike, fps: float, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC_BY_SUFFIX:
            raise SinkError(f"{self.path}: unsupported video suffix; use one of {', '.join(FOURCC_BY_SUFFIX)}")
        if not self.path.parent.is_dir():
            raise SinkError(f"{self.path}: folder {self.path.parent} does not exist")
        if self.path.exists() and not overwrite:
            raise SinkError(f"{self.path}: already exists (pass overwrite=True to overwrite)", options=("overwrite",))
        if not fps > 0:
            raise SinkError(f"{self.path}: frame rate must be positive, got {fps!r}")
        self._fps = float(fps)
        self._tmp_dir: Path | None = None
        self._tmp = self.path
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def _open(self, frame: np.ndarray) -> None:
        self._size = (frame.shape[1], frame.shape[0])
        fourcc = cv2.VideoWriter_fourcc(*FOURCC_BY_SUFFIX[self.path.suffix.lower()])
        # OpenCV writes by name: the name lies in a fresh folder only this process can enter (mkdtemp: an
        # unpredictable name, created exclusively, mode 0700), so no link planted beforehand can redirect it
        try:
            self._tmp_dir = Path(tempfile.mkdtemp(prefix=".edgecls-", dir=self.path.parent))
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot write next to it ({exc.strerror or exc})") from None
        self._tmp = self._tmp_dir / f"video{self.path.suffix}"
        self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self._fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            self._discard()
            raise SinkError(f"{self.path}: this OpenCV cannot encode {self.path.suffix} video "
                            f"(try {', '.join(s for s in FOURCC_BY_SUFFIX if s != self.path.suffix.lower())})")

    def send(self, result: FrameResult) -> bool:
        if result.frame is None:
            raise SinkError(f"{self.path}: the stream does not keep frames (use keep_frames=True)")
        if self._writer is None:
            self._open(result.frame)
        image = annotate(result.frame, result)
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1
        return True

    def close(self) -> None:
        """Finish the file and move it to ``path`` (nothing is written if no frame came)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.path)
            self._discard()

    def _discard(self) -> None:
        """Remove the private temporary folder (and a video left in it)."""
        if self._tmp_dir is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp_dir.rmdir()
            self._tmp_dir = None

