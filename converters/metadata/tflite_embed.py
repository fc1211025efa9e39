"""Embed a model card in a ``.tflite`` file the way TFLite metadata tools do.

The flatbuffer gets a ``TFLITE_METADATA`` entry (standard TFLite metadata, read
by MediaPipe Tasks); the associated files (``labels.txt`` and the full
``edgecls_card.json``) travel as an uncompressed zip archive appended to the
flatbuffer, so any reader can open them with :mod:`zipfile`.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from edgecls.converters.errors import ExportError
from edgecls.converters.metadata.tflite_schema import (
    COLOR_GRAYSCALE,
    COLOR_RGB,
    FILE_DESCRIPTIONS,
    FILE_TENSOR_AXIS_LABELS,
    AssociatedFile,
    ImageInputMeta,
    ScoresOutputMeta,
    build_model_metadata,
)
from edgecls.runtime.card import CARD_FILE_NAME, ModelCard

__all__ = ["embed_card_tflite", "LABELS_FILE_NAME", "METADATA_NAME"]

LABELS_FILE_NAME = "labels.txt"
METADATA_NAME = "TFLITE_METADATA"


def _flatbuffer_tools():
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated as schema
            from tensorflow.lite.tools import flatbuffer_utils
        except ImportError:
            raise ExportError("writing TFLite metadata needs ai-edge-litert or tensorflow; pip install 'edgecls[all]'") from None
    return schema, flatbuffer_utils


def _metadata_bytes(card: ModelCard) -> bytes:
    spec = card.input
    if spec.dtype == "uint8":
        mean = std = None  # MediaPipe feeds raw pixels to uint8 inputs
    elif spec.normalization.baked:
        mean, std = [0.0], [1.0]  # the graph takes raw 0-255 pixels
    else:
        mean, std = list(spec.normalization.mean), list(spec.normalization.std)
    image = ImageInputMeta(
        name="image",
        description=f"{spec.width}x{spec.height} {spec.color.upper()} image, 0-255 pixels"
        + (" (normalization baked into the graph)" if spec.normalization.baked else ""),
        color_space=COLOR_GRAYSCALE if spec.channels == 1 else COLOR_RGB,
        width=spec.width,
        height=spec.height,
        mean=mean,
        std=std,
    )
    scores = ScoresOutputMeta(
        name="probability",
        description=f"Scores of the {card.output.num_classes} classes",
        files=[AssociatedFile(LABELS_FILE_NAME, "Class labels", FILE_TENSOR_AXIS_LABELS)],
    )
    return build_model_metadata(
        name=card.name or "image_classifier",
        description=f"Image classifier exported by edgecls; full model card in {CARD_FILE_NAME}",
        version=card.provenance.edgecls_version or "",
        author="edgecls",
        license="",
        image=image,
        scores=scores,
        model_files=[AssociatedFile(CARD_FILE_NAME, "edgecls model card (JSON)", FILE_DESCRIPTIONS)],
    )


def embed_card_tflite(model: bytes, card: ModelCard) -> bytes:
    """Return ``model`` with ``card`` embedded (replacing earlier metadata and archive).

    Raises:
        ExportError: ``model`` is not a TFLite flatbuffer, or no flatbuffer tools are installed.
    """
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise ExportError("not a TFLite flatbuffer (no TFL3 identifier)")
    schema, flatbuffer_utils = _flatbuffer_tools()
    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    data = np.frombuffer(_metadata_bytes(card), dtype=np.uint8)
    existing = [m for m in (obj.metadata or []) if m.name in (METADATA_NAME, METADATA_NAME.encode())]
    if existing:  # reuse the old entry's buffer: removing a buffer would renumber the tensors' ones
        obj.buffers[existing[0].buffer].data = data
    else:
        buffer = schema.BufferT()
        buffer.data = data
        obj.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(obj.buffers) - 1
        obj.metadata = [*(obj.metadata or []), entry]
    stream = io.BytesIO()
    stream.write(bytes(flatbuffer_utils.convert_object_to_bytearray(obj)))
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(LABELS_FILE_NAME, "\n".join(card.labels) + "\n")
        archive.writestr(CARD_FILE_NAME, card.to_json(indent=2))
    return stream.getvalue()
