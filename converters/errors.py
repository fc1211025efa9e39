"""Errors of the converters; all derive from :class:`edgecls.runtime.errors.EdgeclsError`."""

from __future__ import annotations

from edgecls.runtime.errors import EdgeclsError

__all__ = ["ExportError", "OutputExistsError"]


class ExportError(EdgeclsError):
    """An export step failed (unreadable source model, unsupported graph, bad options)."""


class OutputExistsError(ExportError):
    """An output file exists and ``force`` was not given."""
