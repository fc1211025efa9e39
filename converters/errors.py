"""Errors of the converters; all derive from :class:`edgecls.runtime.errors.EdgeclsError`."""

from __future__ import annotations

from edgecls.runtime.errors import EdgeclsError

__all__ = ["ExportError", "OutputExistsError", "ValidationFailedError", "UnsafeModelError", "CustomObjectError"]


class ExportError(EdgeclsError):
    """An export step failed (unreadable source model, unsupported graph, bad options)."""


class OutputExistsError(ExportError):
    """An output file exists and ``force`` was not given."""


class ValidationFailedError(ExportError):
    """An exported file missed its minimum top-1 agreement with the Keras model (the file is kept)."""


class UnsafeModelError(ExportError):
    """The model holds code (a Lambda layer) that Keras loads only with ``unsafe=True``."""


class CustomObjectError(ExportError):
    """The model uses a custom layer or object that ``custom_objects`` does not provide."""
