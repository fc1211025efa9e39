"""Builds the standard ``TFLITE_METADATA`` flatbuffer (``metadata_schema.fbs``, "M001").

Only the tables an image classifier needs are written, with the field slots of
the published TFLite metadata schema (1.0.0 features only): ModelMetadata →
SubGraphMetadata → TensorMetadata (Content with ImageProperties or
FeatureProperties, NormalizationOptions process unit, Stats, AssociatedFile).
That is what MediaPipe Tasks' ImageClassifier reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import flatbuffers
import numpy as np

__all__ = ["AssociatedFile", "ImageInputMeta", "ScoresOutputMeta", "build_model_metadata",
           "METADATA_FILE_IDENTIFIER", "MIN_PARSER_VERSION"]

METADATA_FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"

# Enum values from metadata_schema.fbs.
FILE_DESCRIPTIONS = 1
FILE_TENSOR_AXIS_LABELS = 2
COLOR_RGB = 1
COLOR_GRAYSCALE = 2
_CONTENT_FEATURE = 1  # ContentProperties union: FeatureProperties
_CONTENT_IMAGE = 2  # ContentProperties union: ImageProperties
_UNIT_NORMALIZATION = 1  # ProcessUnitOptions union: NormalizationOptions


@dataclass(frozen=True)
class AssociatedFile:
    name: str
    description: str
    type: int


@dataclass(frozen=True)
class ImageInputMeta:
    name: str
    description: str
    color_space: int
    width: int
    height: int
    mean: Sequence[float] | None = None  # None: no NormalizationOptions (uint8 input)
    std: Sequence[float] | None = None
    stats_min: float = 0.0
    stats_max: float = 255.0


@dataclass(frozen=True)
class ScoresOutputMeta:
    name: str
    description: str
    files: Sequence[AssociatedFile] = field(default_factory=tuple)


def _strings(b: flatbuffers.Builder, **values: str) -> dict[str, int]:
    return {key: b.CreateString(value) for key, value in values.items() if value}


def _table_vector(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _floats(b: flatbuffers.Builder, values: Sequence[float]) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype=np.float32))


def _associated_file(b: flatbuffers.Builder, f: AssociatedFile) -> int:
    s = _strings(b, name=f.name, description=f.description)
    b.StartObject(4)
    if "name" in s:
        b.PrependUOffsetTRelativeSlot(0, s["name"], 0)
    if "description" in s:
        b.PrependUOffsetTRelativeSlot(1, s["description"], 0)
    b.PrependInt8Slot(2, f.type, 0)
    return b.EndObject()


def _stats(b: flatbuffers.Builder, low: float, high: float) -> int:
    vmax, vmin = _floats(b, [high]), _floats(b, [low])
    b.StartObject(2)
    b.PrependUOffsetTRelativeSlot(0, vmax, 0)
    b.PrependUOffsetTRelativeSlot(1, vmin, 0)
    return b.EndObject()


def _content(b: flatbuffers.Builder, kind: int, properties: int) -> int:
    b.StartObject(3)
    b.PrependUint8Slot(0, kind, 0)
    b.PrependUOffsetTRelativeSlot(1, properties, 0)
    return b.EndObject()


def _image_content(b: flatbuffers.Builder, meta: ImageInputMeta) -> int:
    b.StartObject(2)  # ImageSize
    b.PrependUint32Slot(0, meta.width, 0)
    b.PrependUint32Slot(1, meta.height, 0)
    size = b.EndObject()
    b.StartObject(2)  # ImageProperties
    b.PrependInt8Slot(0, meta.color_space, 0)
    b.PrependUOffsetTRelativeSlot(1, size, 0)
    return _content(b, _CONTENT_IMAGE, b.EndObject())


def _normalization_unit(b: flatbuffers.Builder, mean: Sequence[float], std: Sequence[float]) -> int:
    vmean, vstd = _floats(b, mean), _floats(b, std)
    b.StartObject(2)  # NormalizationOptions
    b.PrependUOffsetTRelativeSlot(0, vmean, 0)
    b.PrependUOffsetTRelativeSlot(1, vstd, 0)
    options = b.EndObject()
    b.StartObject(2)  # ProcessUnit
    b.PrependUint8Slot(0, _UNIT_NORMALIZATION, 0)
    b.PrependUOffsetTRelativeSlot(1, options, 0)
    return b.EndObject()


def _tensor(b: flatbuffers.Builder, name: str, description: str, content: int,
            units: Sequence[int], stats: int, files: Sequence[int]) -> int:
    s = _strings(b, name=name, description=description)
    vunits = _table_vector(b, units) if units else None
    vfiles = _table_vector(b, files) if files else None
    b.StartObject(7)
    if "name" in s:
        b.PrependUOffsetTRelativeSlot(0, s["name"], 0)
    if "description" in s:
        b.PrependUOffsetTRelativeSlot(1, s["description"], 0)
    b.PrependUOffsetTRelativeSlot(3, content, 0)
    if vunits is not None:
        b.PrependUOffsetTRelativeSlot(4, vunits, 0)
    b.PrependUOffsetTRelativeSlot(5, stats, 0)
    if vfiles is not None:
        b.PrependUOffsetTRelativeSlot(6, vfiles, 0)
    return b.EndObject()


def build_model_metadata(*, name: str, description: str, version: str, author: str, license: str,
                         image: ImageInputMeta, scores: ScoresOutputMeta,
                         model_files: Sequence[AssociatedFile] = ()) -> bytes:
    """Serialize a ModelMetadata flatbuffer for a one-input, one-output image classifier."""
    b = flatbuffers.Builder(1024)
    # Input tensor.
    in_content = _image_content(b, image)
    in_units = [_normalization_unit(b, image.mean, image.std)] if image.mean is not None else []
    in_stats = _stats(b, image.stats_min, image.stats_max)
    in_tensor = _tensor(b, image.name, image.description, in_content, in_units, in_stats, [])
    # Output tensor.
    b.StartObject(0)  # FeatureProperties
    out_content = _content(b, _CONTENT_FEATURE, b.EndObject())
    out_stats = _stats(b, 0.0, 1.0)
    out_files = [_associated_file(b, f) for f in scores.files]
    out_tensor = _tensor(b, scores.name, scores.description, out_content, [], out_stats, out_files)
    # Subgraph.
    v_in, v_out = _table_vector(b, [in_tensor]), _table_vector(b, [out_tensor])
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(2, v_in, 0)
    b.PrependUOffsetTRelativeSlot(3, v_out, 0)
    subgraph = b.EndObject()
    # Model.
    v_sub = _table_vector(b, [subgraph])
    v_files = _table_vector(b, [_associated_file(b, f) for f in model_files]) if model_files else None
    s = _strings(b, name=name, description=description, version=version, author=author, license=license,
                 min_parser_version=MIN_PARSER_VERSION)
    b.StartObject(8)
    for slot, key in ((0, "name"), (1, "description"), (2, "version"), (4, "author"), (5, "license"),
                      (7, "min_parser_version")):
        if key in s:
            b.PrependUOffsetTRelativeSlot(slot, s[key], 0)
    b.PrependUOffsetTRelativeSlot(3, v_sub, 0)
    if v_files is not None:
        b.PrependUOffsetTRelativeSlot(6, v_files, 0)
    b.Finish(b.EndObject(), file_identifier=METADATA_FILE_IDENTIFIER)
    return bytes(b.Output())
