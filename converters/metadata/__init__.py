"""Write model cards into model files, one writer per file suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from edgecls.converters.atomic import atomic_write_bytes
from edgecls.converters.errors import ExportError
from edgecls.runtime.card import ModelCard

__all__ = ["embed_card_file", "CARD_WRITERS"]


def _tflite(data: bytes, card: ModelCard) -> bytes:
    from edgecls.converters.metadata.tflite_embed import embed_card_tflite

    return embed_card_tflite(data, card)


def _onnx(data: bytes, card: ModelCard) -> bytes:
    import onnx

    from edgecls.converters.metadata.onnx_embed import embed_card_onnx

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:
        raise ExportError(f"not an ONNX model ({exc})") from None
    return embed_card_onnx(model, card).SerializeToString()


CARD_WRITERS: dict[str, Callable[[bytes, ModelCard], bytes]] = {".tflite": _tflite, ".onnx": _onnx}


def embed_card_file(path: str | Path, card: ModelCard) -> None:
    """Embed ``card`` into the model file at ``path`` in place, atomically.

    Raises:
        ExportError: unknown suffix, unreadable file, or not a model of its suffix.
    """
    path = Path(path)
    writer = CARD_WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ExportError(f"{path}: cannot embed a model card in {path.suffix or 'a file without suffix'} files")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        out = writer(data, card)
    except ExportError as exc:
        raise ExportError(f"{path}: {exc}") from None
    atomic_write_bytes(path, out, overwrite=True)
