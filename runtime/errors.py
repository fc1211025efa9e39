"""The edgecls exception hierarchy: one root, one subclass per cause.

Every error raised on purpose by edgecls derives from :class:`EdgeclsError`, so
an application can catch that one class around any call. Messages name the file
(or option) involved and the cause.
"""

from __future__ import annotations

__all__ = [
    "EdgeclsError",
    "ModelLoadError",
    "UnsupportedFormatError",
    "BackendUnavailableError",
    "DeviceUnavailableError",
    "ImageError",
    "OptionError",
    "CardError",
    "DatasetError",
    "SourceError",
    "StreamError",
]


class EdgeclsError(Exception):
    """Root of every error edgecls raises on purpose."""


class ModelLoadError(EdgeclsError):
    """A model file is missing, unreadable, corrupt or not an image classifier."""


class UnsupportedFormatError(EdgeclsError):
    """A file suffix (or requested backend) that no registered backend handles."""


class BackendUnavailableError(EdgeclsError):
    """The inference engine for a format is not installed.

    Attributes:
        extra: the pip extra that installs it, e.g. ``"tflite"``.
    """

    def __init__(self, message: str, *, extra: str | None = None) -> None:
        super().__init__(message)
        self.extra = extra


class DeviceUnavailableError(BackendUnavailableError):
    """``device="gpu"`` was asked for but no GPU provider or delegate is usable."""


class ImageError(EdgeclsError):
    """An input image could not be read or has an unusable shape or dtype."""


class OptionError(EdgeclsError, ValueError):
    """An option value is out of range or contradicts another option."""


class CardError(EdgeclsError):
    """A model card is malformed or contradicts the model it describes."""


class SourceError(EdgeclsError):
    """A video source (camera, file, URL, pipeline) cannot be opened."""


class StreamError(EdgeclsError):
    """A stream or live session was misused (closed, timestamps not increasing) or its callback raised."""


class DatasetError(EdgeclsError):
    """An image folder is missing, empty, or does not match the model's labels."""


def first_line(exc: BaseException) -> str:
    """The first line of an engine's exception text, for wrapping in our messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
