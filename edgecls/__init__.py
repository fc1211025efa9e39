"""edgecls: export Keras image classifiers to TFLite and ONNX, and run them at the edge.

Public names resolve lazily, so ``import edgecls`` stays cheap and never pulls
in TensorFlow: ``edgecls.Classifier`` loads only the runtime, ``edgecls.export``
loads the converters (and TensorFlow) on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from edgecls.version import __version__

_LAZY = {
    "Classifier": "edgecls.runtime",
    "ClassifierOptions": "edgecls.runtime",
    "ClassifyOptions": "edgecls.runtime",
    "ClassificationResult": "edgecls.runtime",
    "RegionResult": "edgecls.runtime",
    "Region": "edgecls.runtime",
    "CropPolicy": "edgecls.runtime",
    "Category": "edgecls.runtime",
    "ModelCard": "edgecls.runtime",
    "EdgeclsError": "edgecls.runtime",
    "Trust": "edgecls.runtime",
    "export": "edgecls.converters",
    **dict.fromkeys((
        "ModelLoadError", "UnsupportedFormatError", "BackendUnavailableError", "DeviceUnavailableError", "ImageError",
        "OptionError", "RegionError", "SignatureError", "DowngradeError", "CardError", "SourceError", "StreamError", "DatasetError", "InferenceError",
        "ClosedError",
        "OutputError", "ServiceError", "BatchError", "MeasurementError", "SinkError", "ExportError",
        "OutputExistsError", "ValidationFailedError", "UnsafeModelError", "CustomObjectError"), "edgecls.runtime"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgecls' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
