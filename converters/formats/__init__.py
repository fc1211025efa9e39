"""Output formats: the registry (:mod:`.base`) and the built-in TFLite and ONNX formats, registered here,
eagerly, so that every lookup sees them whatever else was registered first."""

from edgecls.converters.formats import onnx_format, tflite_format
from edgecls.converters.formats.base import FORMATS, register_format

for _builtin in (tflite_format.FORMAT, onnx_format.FORMAT):
    FORMATS.setdefault(_builtin.name, _builtin)  # a format registered under the same name first stays

__all__ = ["FORMATS", "register_format"]
