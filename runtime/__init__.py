"""edgecls.runtime: run exported image classifiers with LiteRT or ONNX Runtime.

Needs only numpy, OpenCV and one engine (``pip install 'edgecls[tflite]'`` or
``'edgecls[onnx]'``); it never imports TensorFlow.

    from edgecls.runtime import Classifier
    with Classifier.from_path("model_int8.tflite") as clf:
        result = clf.classify(frame_bgr)
        print(result.top.label, result.top.score)
"""

import os as _os

from edgecls.runtime.imageheader import MAX_IMAGE_PIXELS as _MAX_PIXELS

# OpenCV reads its decoder limit once, when it is first imported: set it first (see runtime/images.py).
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(_MAX_PIXELS))

from edgecls.runtime.capture import CaptureOptions, CaptureStats, HardExamples
from edgecls.runtime.card import InputSpec, ModelCard, Normalization, OutputSpec, Provenance, Quantization
from edgecls.runtime.classifier import Classifier
from edgecls.runtime.datasets import ImageFolder, LabelList, open_dataset
from edgecls.runtime.errors import (
    ERRORS,
    BackendUnavailableError,
    BatchError,
    CardError,
    ClosedError,
    CustomObjectError,
    DatasetError,
    DeviceUnavailableError,
    DowngradeError,
    EdgeclsError,
    ExportError,
    ImageError,
    InferenceError,
    MeasurementError,
    ModelLoadError,
    OptionError,
    OutputError,
    OutputExistsError,
    RegionError,
    ServiceError,
    SignatureError,
    SinkError,
    SourceError,
    StreamError,
    UnsafeModelError,
    UnsupportedFormatError,
    ValidationFailedError,
)
from edgecls.runtime.frames import FrameResult, StreamSummary
from edgecls.runtime.live import LiveSession
from edgecls.runtime.options import ClassifierOptions, ClassifyOptions
from edgecls.runtime.reconnect import Reconnect
from edgecls.runtime.regions import Crop, CropPolicy, Region
from edgecls.runtime.results import Category, ClassificationResult, RegionResult, Timings
from edgecls.runtime.trust import Trust

__all__ = [
    "Classifier",
    "ClassifierOptions",
    "ClassifyOptions",
    "ClassificationResult",
    "RegionResult",
    "Region",
    "Crop",
    "CropPolicy",
    "Category",
    "Timings",
    "Trust",
    "FrameResult",
    "StreamSummary",
    "LiveSession",
    "Reconnect",
    "CaptureOptions",
    "CaptureStats",
    "HardExamples",
    "ModelCard",
    "InputSpec",
    "OutputSpec",
    "Normalization",
    "Quantization",
    "Provenance",
    "ImageFolder",
    "LabelList",
    "open_dataset",
    "EdgeclsError",
    "ERRORS",
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
    "SourceError",
    "StreamError",
    "DatasetError",
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
]
