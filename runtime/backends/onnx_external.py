"""Refusing ONNX external-data references that point outside the model's folder.

An ONNX initializer may keep its bytes in another file named by an ``external_data``
entry ``{key: "location", value: PATH}``. A model from elsewhere could name ``../../x`` or
an absolute path to make the engine read files it should not. Recent ONNX Runtime releases
refuse that too; this check does not depend on the installed version. It scans the protobuf
bytes for the entry's wire form (field 1 "location", then field 2) without the onnx package.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecls.runtime.errors import ModelLoadError

__all__ = ["external_locations", "check_external_data"]

_KEY = b"\x0a\x08location\x12"  # StringStringEntryProto: key (field 1, 8 bytes) then value (field 2)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(data):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
    return -1, i


def external_locations(data: bytes) -> list[str]:
    """Every external-data location named in a serialized ONNX model."""
    found, start = [], 0
    while (i := data.find(_KEY, start)) >= 0:
        length, j = _varint(data, i + len(_KEY))
        if length >= 0 and j + length <= len(data):
            found.append(data[j:j + length].decode("utf-8", "replace"))
        start = i + len(_KEY)
    return found


def check_external_data(path: Path) -> None:
    """Raise ModelLoadError if ``path`` names external data outside its own folder."""
    with open(path, "rb") as f:
        data = f.read()
    folder = path.resolve().parent
    for location in external_locations(data):
        target = (folder / location).resolve()
        if os.path.isabs(location) or ".." in Path(location).parts or folder not in (target, *target.parents):
            raise ModelLoadError(f"{path}: external data location {location!r} points outside the model's folder "
                                 "(refused: a model may only read files next to it)")
