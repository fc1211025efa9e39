"""Quantization that keeps its accuracy: each format's ladder of rungs (:mod:`.rungs`), the climb
(:mod:`.climb`) and the budget it holds (:mod:`.budget`). The built-in TFLite and ONNX ladders are
registered on import; TensorFlow and ONNX Runtime are imported only when a rung is built."""

from edgecls.converters.ladder import onnx_ladder, tflite_ladder  # noqa: F401 (registers the built-ins)
from edgecls.converters.ladder.budget import Budget
from edgecls.converters.ladder.climb import Candidate, LadderResult, climb
from edgecls.converters.ladder.rungs import LADDERS, Ladder, LayerError, Rung, get_ladder, register_ladder

__all__ = ["Budget", "Candidate", "LadderResult", "climb", "LADDERS", "Ladder", "LayerError", "Rung", "get_ladder",
           "register_ladder"]
