"""The edgecls exception hierarchy: one root, one subclass per cause, and one table of what each means to
a front end.

Every error raised on purpose by edgecls derives from :class:`EdgeclsError`, so an application can catch
that one class around any call. Messages name the file (or option) involved and the cause; a foreign
error that caused one is chained (``raise ... from exc``), shown by ``edgecls -v`` and by a traceback.
:data:`ERRORS` gives each class its CLI exit code and HTTP status (the client's fault 4xx, the server's 5xx)
and what it means; the CLI, the service and the documentation's table all read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "EdgeclsError",
    "ModelLoadError",
    "UnsupportedFormatError",
    "BackendUnavailableError",
    "DeviceUnavailableError",
    "ImageError",
    "OptionError",
    "RegionError",
    "SignatureError",
    "DowngradeError",
    "CardError",
    "DatasetError",
    "SourceError",
    "StreamError",
    "InferenceError",
    "ClosedError",
    "OutputError",
    "ServiceError",
    "BatchError",
    "MeasurementError",
    "SinkError",
    "ExportError",
    "OutputExistsError",
    "ValidationFailedError",
    "UnsafeModelError",
    "CustomObjectError",
    "ERRORS",
    "ErrorKind",
    "error_kind",
    "exit_code",
    "http_status",
    "error_table",
    "engine_errors",
    "engine_message",
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


class RegionError(OptionError):
    """A region of a frame (a detector's box) or a crop policy that cannot be read: not four finite numbers,
    ``x_max`` not over ``x_min``, too many boxes, a boxes file that is not JSON, a policy with an unknown part."""


class SignatureError(ModelLoadError):
    """With trusted keys configured, a model file that is not signed by one of them: no signature, an
    altered, truncated or renamed file, another model's signature, an unknown key, a forged signature."""


class DowngradeError(SignatureError):
    """A signed model older (a lower card version) than one already accepted under its name."""


class CardError(EdgeclsError):
    """A model card is malformed or contradicts the model it describes."""


class SourceError(EdgeclsError):
    """A video source (camera, file, URL, pipeline) cannot be opened."""


class StreamError(EdgeclsError):
    """A stream or live session was misused (closed, timestamps not increasing) or its callback raised."""


class DatasetError(EdgeclsError):
    """An image folder or label list is missing, empty, malformed, or does not match the model's labels."""


class ClosedError(EdgeclsError):
    """A classifier (or its engine) was used after ``close()``."""


class OutputError(EdgeclsError):
    """An output cannot be written: a full or read-only disk, a folder removed meanwhile."""


class ServiceError(EdgeclsError):
    """``edgecls serve`` cannot start: the address cannot be bound, a capture folder cannot be made, a model
    fails its check."""


class BatchError(EdgeclsError):
    """A batch run cannot go on: its worker processes died, the Ray cluster cannot be reached or the job failed."""


class MeasurementError(EdgeclsError):
    """A benchmark's measurement failed (a probe process ended without its figures)."""


class SinkError(EdgeclsError):
    """A result sink (``--out``, ``--show``, ``--mqtt``) cannot write, display or deliver."""


class ExportError(EdgeclsError):
    """An export step failed (unreadable source model, unsupported graph, bad options)."""


class OutputExistsError(ExportError):
    """An output file exists and ``force`` was not given."""


class ValidationFailedError(ExportError):
    """An exported file missed its minimum top-1 agreement with the Keras model (the file is kept)."""


class UnsafeModelError(ExportError):
    """The model file holds code (a Lambda layer, a SavedModel op that touches files or Python) that safe
    mode does not load; ``unsafe=True`` only for a file you trust."""


class CustomObjectError(ExportError):
    """The model uses a custom layer or object that ``custom_objects`` does not provide."""


@dataclass(frozen=True)
class ErrorKind:
    """What an error class means to a front end."""

    error: type[EdgeclsError]
    exit_code: int
    """The CLI's exit code (1: an edgecls error; 2 is click's usage error, 130/143 the signals)."""
    http_status: int
    """The service's answer: 4xx the client's fault (with the message), 5xx the server's (its kind only)."""
    when: str
    """One line for the documentation."""


ERRORS: tuple[ErrorKind, ...] = (
    ErrorKind(EdgeclsError, 1, 500, "the root: catch it around any call"),
    ErrorKind(ModelLoadError, 1, 422, "model missing, a folder, empty, corrupt, or not a one-image-input classifier"),
    ErrorKind(UnsupportedFormatError, 1, 415, "a suffix no backend reads, or a backend asked to read another format"),
    ErrorKind(BackendUnavailableError, 1, 503, "the engine is not installed (`.extra` names the pip extra)"),
    ErrorKind(DeviceUnavailableError, 1, 503, '`device="gpu"` without a usable GPU provider or delegate'),
    ErrorKind(SignatureError, 1, 403, "trusted keys are set and the file is not signed by one of them: unsigned, "
                                      "altered, truncated, renamed, another model's signature, an unknown key"),
    ErrorKind(DowngradeError, 1, 409, "a signed model older than the version already accepted under its name"),
    ErrorKind(CardError, 1, 422, "an embedded card contradicts the model (label count, input size)"),
    ErrorKind(ImageError, 1, 400, "unreadable file, undecodable bytes, empty image, bad shape or dtype, `None`"),
    ErrorKind(InferenceError, 1, 500, "the engine failed while running, or returned another number of scores"),
    ErrorKind(OptionError, 1, 400, "bad option: backend, device, threads, labels, mean/std, resize, max_results, "
                                   "threshold, allow/deny lists"),
    ErrorKind(RegionError, 1, 400, "a box that is not four finite numbers with max over min, too many boxes, a "
                                   "boxes file that is not JSON, an unreadable crop policy"),
    ErrorKind(DatasetError, 1, 400, "an image folder or label list missing, empty, malformed, or not the model's "
                                    "labels"),
    ErrorKind(SourceError, 1, 400, "a stream source (camera, file, URL, pipeline) cannot be opened"),
    ErrorKind(StreamError, 1, 400, "a live session misused (closed, timestamps not increasing) or its callback raised"),
    ErrorKind(ClosedError, 1, 500, "a classifier used after `close()`"),
    ErrorKind(OutputError, 1, 500, "an output cannot be written (a full or read-only disk)"),
    ErrorKind(ServiceError, 1, 500, "`edgecls serve` cannot start (address, capture folder, a model's check)"),
    ErrorKind(BatchError, 1, 500, "a batch run's workers died, or its Ray cluster or job failed"),
    ErrorKind(MeasurementError, 1, 500, "a benchmark probe ended without its figures"),
    ErrorKind(SinkError, 1, 500, "`--out`/`--show`/`--mqtt` cannot write, display or reach the broker"),
    ErrorKind(ExportError, 1, 422, "an export step failed (source model, graph, options)"),
    ErrorKind(OutputExistsError, 1, 409, "an output exists and `force` was not given"),
    ErrorKind(ValidationFailedError, 1, 422, "an exported file missed its budget (kept, marked failed)"),
    ErrorKind(UnsafeModelError, 1, 422, "the model file holds code and `unsafe` was not given"),
    ErrorKind(CustomObjectError, 1, 422, "a custom layer `custom_objects` does not provide"),
)
"""Every error class, its CLI exit code, HTTP status and meaning: the one table."""

_BY_CLASS = {kind.error: kind for kind in ERRORS}


def error_kind(exc: BaseException) -> ErrorKind:
    """The table's row for ``exc``: its class's, else its nearest listed ancestor's (the root's for any
    other exception)."""
    for cls in type(exc).__mro__:
        if cls in _BY_CLASS:
            return _BY_CLASS[cls]
    return _BY_CLASS[EdgeclsError]


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for ``exc`` (see :data:`ERRORS`)."""
    return error_kind(exc).exit_code


def http_status(exc: BaseException) -> int:
    """The HTTP status that answers ``exc`` (see :data:`ERRORS`)."""
    return error_kind(exc).http_status


def error_table() -> str:
    """:data:`ERRORS` as the documentation's Markdown table."""
    rows = ["| error | exit | HTTP | when |", "|---|---|---|---|"]
    rows += [f"| `{k.error.__name__}` | {k.exit_code} | {k.http_status} | {k.when} |" for k in ERRORS]
    return "\n".join(rows) + "\n"


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
    and ``SystemExit`` (they are not ``Exception``). The engine's exception is chained as the cause
    (``edgecls -v`` and tracebacks show it; the message alone says what failed and why).
    """
    try:
        yield
    except EdgeclsError:
        raise
    except Exception as exc:
        raise error(f"{what} ({describe(exc)})") from exc
