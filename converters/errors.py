"""Errors of the converters; they live with every other edgecls error in :mod:`edgecls.runtime.errors`
(one hierarchy, one table) and are named here too."""

from __future__ import annotations

from edgecls.runtime.errors import (
    CustomObjectError,
    ExportError,
    OutputExistsError,
    UnsafeModelError,
    ValidationFailedError,
)

__all__ = ["ExportError", "OutputExistsError", "ValidationFailedError", "UnsafeModelError", "CustomObjectError"]
