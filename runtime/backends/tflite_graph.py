"""A structural check of a ``.tflite`` graph before LiteRT runs it.

LiteRT trusts the flatbuffer: an operator that writes the graph's input tensor, or reads a tensor
that nothing has produced yet, makes ``invoke`` read or write freed memory (two changed bytes
gave a SIGSEGV in ``edgecls predict``). This check walks every subgraph in order without
copying the weights (the file is memory-mapped) and refuses, with a :class:`ModelLoadError`:
a tensor index out of range, an operator that writes a graph input, a constant or a tensor
another operator already wrote, and an operator that reads a tensor that is neither a graph
input, a constant, a variable, nor written by an earlier operator.

It needs the schema module of ``ai_edge_litert``; with only ``tflite_runtime`` installed it
cannot run, and the backend says so in its notes.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from edgecls.runtime.card import Quantization
from edgecls.runtime.errors import BackendUnavailableError, ModelLoadError

__all__ = ["check_tflite_graph", "schema_available", "io_quantization"]


def _schema():
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        return None
    return schema_py_generated


def schema_available() -> bool:
    """Whether the check can run (``ai_edge_litert``'s schema module imports)."""
    return _schema() is not None


def _constants(model) -> set[int]:
    """Buffer indexes that hold data (index 0 is the empty sentinel)."""
    out = set()
    for b in range(1, model.BuffersLength()):
        buffer = model.Buffers(b)
        if buffer.DataLength() > 0 or buffer.Offset() > 1:
            out.add(b)
    return out


def check_tflite_graph(path: Path) -> None:
    """Refuse a graph whose operators read or write tensors out of order (see the module docstring).

    Raises:
        ModelLoadError: the graph is malformed; the message names the subgraph, operator and tensor.
    """
    schema = _schema()
    if schema is None:
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            model = schema.Model.GetRootAs(data, 0)
            problem = _first_problem(model, _constants(model))
        except ModelLoadError:
            raise
        except Exception as exc:  # flatbuffers raises struct.error/IndexError on offsets past the end
            raise ModelLoadError(f"{path}: cannot load TFLite model (not a readable flatbuffer: {exc})") from None
        finally:
            model = None  # the flatbuffer views the map: drop them before it closes
    if problem:
        raise ModelLoadError(f"{path}: cannot load TFLite model (malformed TFLite graph: {problem}; refused before "
                             "running it)")


def _first_problem(model, constants: set[int]) -> str | None:
    """The first thing wrong in any subgraph's dataflow, or None."""
    for g in range(model.SubgraphsLength()):
        problem = _subgraph_problem(model.Subgraphs(g), constants)
        if problem:
            return f"subgraph {g} {problem}"
    return None


def _subgraph_problem(graph, constants: set[int]) -> str | None:
    """Every tensor index in range; each operator reads only what is ready (inputs, constants, variables,
    earlier outputs) and writes a tensor once and never an input or constant; the outputs are written."""
    count = graph.TensorsLength()
    inputs = {int(i) for i in graph.InputsAsNumpy()} if graph.InputsLength() else set()
    fixed = set(inputs) | {t for t in range(count)
                           if graph.Tensors(t).Buffer() in constants or graph.Tensors(t).IsVariable()}
    ready = set(fixed)
    for index in inputs:
        if not 0 <= index < count:
            return f"input {index} is out of range ({count} tensors)"
    for o in range(graph.OperatorsLength()):
        problem = _operator_problem(graph.Operators(o), count, ready, fixed)
        if problem:
            return f"operator {o} {problem}"
    for index in (int(i) for i in (graph.OutputsAsNumpy() if graph.OutputsLength() else ())):
        if not 0 <= index < count or index not in ready:
            return f"output tensor {index} is never written"
    return None


def _operator_problem(op, count: int, ready: set[int], fixed: set[int]) -> str | None:
    """What is wrong with one operator's reads and writes (adding its outputs to ``ready``), or None."""
    for index in (int(i) for i in (op.InputsAsNumpy() if op.InputsLength() else ())):
        if index == -1:
            continue  # an optional input left out
        if not 0 <= index < count:
            return f"reads tensor {index}, out of range ({count} tensors)"
        if index not in ready:
            return f"reads tensor {index} before anything writes it"
    for index in (int(i) for i in (op.OutputsAsNumpy() if op.OutputsLength() else ())):
        if not 0 <= index < count:
            return f"writes tensor {index}, out of range ({count} tensors)"
        if index in fixed:
            return f"writes tensor {index}, a graph input or constant"
        if index in ready:
            return f"writes tensor {index}, which an earlier operator wrote"
        ready.add(index)
    return None


def io_quantization(path: Path) -> tuple[Quantization | None, Quantization | None]:
    """The affine quantization of the main subgraph's first input and first output tensors (None for a
    float tensor), read from the flatbuffer: what an engine that does not report it (OpenVINO) needs to
    feed and read an integer model.

    Raises:
        BackendUnavailableError: the schema module is not installed (``ai_edge_litert``).
        ModelLoadError: not a readable flatbuffer, or a graph without an input or output.
    """
    schema = _schema()
    if schema is None:
        raise BackendUnavailableError(f"{path}: reading a TFLite file's quantization needs ai-edge-litert's schema "
                                      "module: pip install 'edgecls[tflite]'", extra="tflite")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            graph = schema.Model.GetRootAs(data, 0).Subgraphs(0)
            found = tuple(_quantization(graph.Tensors(int(ends[0]))) for ends in (graph.InputsAsNumpy(),
                                                                                    graph.OutputsAsNumpy()))
        except Exception as exc:  # flatbuffers raises struct.error/IndexError on offsets past the end
            raise ModelLoadError(f"{path}: cannot read the TFLite model's input and output ({exc})") from None
        finally:
            graph = None  # the flatbuffer views the map: drop them before it closes
    return found  # type: ignore[return-value]


def _quantization(tensor) -> Quantization | None:
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    return Quantization(float(q.Scale(0)), int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0)
