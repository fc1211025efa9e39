"""Refusing ONNX external-data references that point outside the model's folder.

An ONNX initializer may keep its bytes in another file named by an ``external_data``
entry ``{key: "location", value: PATH}``. A model from elsewhere could name ``../../x`` or
an absolute path to make the engine read files it should not. Recent ONNX Runtime releases
refuse that too; this check does not depend on the installed version. It reads the protobuf
as ONNX defines it, without the onnx package: every tensor of the model (initializers, sparse
initializers, tensors in node attributes, in subgraphs and in functions) is found by field
number, and its ``external_data`` entries are read whatever order their fields come in. The file
is memory-mapped and walked with an explicit stack (no copy of the weights, no recursion limit).
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from edgecls.runtime.errors import ModelLoadError

__all__ = ["external_locations", "check_external_data"]

# message kind -> {field number: kind of the embedded message}, from onnx.proto3
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION, _ENTRY = range(8)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _FUNCTION: {7: _NODE},
    _TENSOR: {13: _ENTRY},
}


class _Malformed(Exception):
    pass


def _varint(data, i: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while i < end and shift < 64:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
    raise _Malformed("truncated varint")


def _fields(data, start: int, end: int):
    """(field number, wire type, value start, value end or varint) of one message's fields."""
    i = start
    while i < end:
        key, i = _varint(data, i, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i, end)
            yield number, wire, value, value
        elif wire == 2:
            length, i = _varint(data, i, end)
            if i + length > end:
                raise _Malformed("length past the end of its message")
            yield number, wire, i, i + length
            i += length
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise _Malformed(f"wire type {wire}")
    if i != end:
        raise _Malformed("field past the end of its message")


def _entry(data, start: int, end: int) -> tuple[bytes, bytes]:
    key = value = b""
    for number, wire, a, b in _fields(data, start, end):
        if wire == 2 and number == 1:
            key = bytes(data[a:b])
        elif wire == 2 and number == 2:
            value = bytes(data[a:b])
    return key, value


def external_locations(data) -> list[str]:
    """Every external-data location named by a tensor of a serialized ONNX model (bytes or mmap).

    Raises:
        ValueError: the bytes are not a well-formed protobuf along the way to the tensors.
    """
    found: list[str] = []
    stack = [(_MODEL, 0, len(data))]
    try:
        while stack:
            kind, start, end = stack.pop()
            children = _CHILDREN.get(kind, {})
            for number, wire, a, b in _fields(data, start, end):
                child = children.get(number)
                if wire != 2 or child is None:
                    continue
                if child == _ENTRY:
                    key, value = _entry(data, a, b)
                    if key == b"location":
                        found.append(value.decode("utf-8", "replace"))
                else:
                    stack.append((child, a, b))
    except _Malformed as exc:
        raise ValueError(f"not a well-formed ONNX protobuf ({exc})") from None
    return found


def check_external_data(path: Path) -> None:
    """Raise ModelLoadError if ``path`` names external data outside its own folder, or cannot be parsed."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            locations = external_locations(data)
    except ValueError as exc:  # also mmap of an empty file
        raise ModelLoadError(f"{path}: cannot load ONNX model ({exc})") from None
    folder = path.resolve().parent
    for location in locations:
        if "\0" in location:
            raise ModelLoadError(f"{path}: external data location {location!r} contains a NUL byte (refused)")
        target = (folder / location).resolve()
        if os.path.isabs(location) or ".." in Path(location).parts or folder not in (target, *target.parents):
            raise ModelLoadError(f"{path}: external data location {location!r} points outside the model's folder "
                                 "(refused: a model may only read files next to it)")
