"""edgecls.converters: Keras → TFLite / ONNX export with quantization, baked
normalization, embedded model cards and validation through the runtime.

TensorFlow is imported only when a conversion runs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export", "ExportOptions", "ExportResult", "ExportReport", "ExportError", "OutputExistsError"]


def __getattr__(name: str) -> Any:
    if name in ("export", "ExportOptions"):
        from edgecls.converters import pipeline as module

        return getattr(module, name)
    if name in ("ExportResult", "ExportReport"):
        from edgecls.converters import report

        return getattr(report, name)
    if name in ("ExportError", "OutputExistsError"):
        from edgecls.converters import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'edgecls.converters' has no attribute {name!r}")
