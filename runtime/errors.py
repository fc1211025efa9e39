"""The edgecls exception hierarchy: one root, one subclass per cause.

Every error raised on purpose by edgecls derives from :class:`EdgeclsError`, so
an application can catch that one class around any call. Messages name the file
(or option) involved and the cause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    "InferenceError",
    "engine_errors",
    "engine_message",
    "http_status",
]


class EdgeclsError(Exception):
    """Root of every error edgecls raises on purpose.

    Attributes:
        options: the parameters the message suggests (``("force",)`` for "pass force=True"), so that a
            front end can name them its own way: the CLI adds the matching flags.
    """

    def __init__(self, message: str = "", *, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.options = options


class ModelLoadError(EdgeclsError):
    """A model file is missing, unreadable, corrupt or not an image classifier."""


class UnsupportedFormatError(EdgeclsError):
    """A file suffix (or requested backend) that no registered backend handles."""


class BackendUnavailableError(EdgeclsError):
    """The inference engine for a format is not installed.

    Attributes:
        extra: the pip extra that installs it, e.g. ``"tflite"``.
    """

    def __init__(self, message: str, *, extra: str | None = None, options: tuple[str, ...] = ()) -> None:
        super().__init__(message, options=options)
        self.extra = extra


class DeviceUnavailableError(BackendUnavailableError):
    """``device="gpu"`` was asked for but no GPU provider or delegate is usable."""


class ImageError(EdgeclsError):
    """An input image could not be read or has an unusable shape or dtype."""


class InferenceError(EdgeclsError):
    """The engine failed while running the model, or its output does not match the model's card."""


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


HTTP_STATUS: dict[type[EdgeclsError], int] = {
    ImageError: 400,
    OptionError: 400,
    DatasetError: 400,
    SourceError: 400,
    StreamError: 400,
    CardError: 422,
    ModelLoadError: 422,
    UnsupportedFormatError: 415,
    InferenceError: 500,
    BackendUnavailableError: 503,
}
"""The HTTP status of each error class (its nearest listed ancestor's; else 500): the client's fault is
4xx, the server's 5xx."""


def http_status(exc: BaseException) -> int:
    """The HTTP status that answers ``exc`` (see :data:`HTTP_STATUS`): 500 for anything unlisted."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


MAX_ENGINE_TEXT = 300


def engine_message(exc: BaseException) -> str:
    """One line for a foreign exception: its first non-empty line (at most 300 characters), or its class name."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:MAX_ENGINE_TEXT]
    return exc.__class__.__name__


@contextmanager
def engine_errors(error: type[EdgeclsError], what: str,
                  describe: Callable[[BaseException], str] = engine_message) -> Iterator[None]:
    """Map what an engine (LiteRT, ONNX Runtime, TensorFlow, tf2onnx, Keras) raises inside the block to
    ``error(f"{what} ({describe(exc)})")``, the one way edgecls words a foreign failure.

    An :class:`EdgeclsError` raised inside passes through unchanged; so do ``KeyboardInterrupt``
    and ``SystemExit`` (they are not ``Exception``). The engine's traceback is not chained: the
    message says what failed and why.
    """
    try:
        yield
    except EdgeclsError:
        raise
    except Exception as exc:
        raise error(f"{what} ({describe(exc)})") from None
