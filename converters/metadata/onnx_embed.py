"""Embed a model card in an ONNX model's ``metadata_props``.

Readers get it back with ``InferenceSession.get_modelmeta().custom_metadata_map``.
"""

from __future__ import annotations

from typing import Any

from edgecls.runtime.card import CARD_METADATA_KEY, ModelCard

__all__ = ["embed_card_onnx", "LABELS_KEY"]

LABELS_KEY = "labels"


def embed_card_onnx(model: Any, card: ModelCard) -> Any:
    """Set the card (and a plain comma-free labels list) on an ``onnx.ModelProto``; returns it."""
    import onnx

    entries = {CARD_METADATA_KEY: card.to_json(), LABELS_KEY: "\n".join(card.labels)}
    kept = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model
