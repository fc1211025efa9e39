"""Output formats: the registry (:mod:`.base`) and the built-in TFLite and ONNX formats, registered here,
eagerly (importing :mod:`.base` imports this first), so that every lookup sees them."""

from edgecls.converters.formats import onnx_format, tflite_format
from edgecls.converters.formats.base import FORMATS, register_format

register_format(tflite_format.FORMAT)
register_format(onnx_format.FORMAT)

__all__ = ["FORMATS", "register_format"]
