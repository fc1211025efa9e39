"""Write a model card into an existing model file: the card writer of the format its suffix names."""

from __future__ import annotations

from pathlib import Path

from edgecls.converters.atomic import atomic_write_bytes
from edgecls.converters.errors import ExportError
from edgecls.runtime.card import ModelCard

__all__ = ["embed_card_file"]


def embed_card_file(path: str | Path, card: ModelCard) -> None:
    """Embed ``card`` into the model file at ``path`` in place, atomically.

    Raises:
        ExportError: unknown suffix, unreadable file, or not a model of its suffix.
    """
    from edgecls.converters.formats.base import format_for_suffix

    path = Path(path)
    fmt = format_for_suffix(path.suffix)
    if fmt is None:
        raise ExportError(f"{path}: cannot embed a model card in {path.suffix or 'a file without suffix'} files")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        out = fmt.embed(data, card)
    except ExportError as exc:
        raise ExportError(f"{path}: {exc}") from None
    atomic_write_bytes(path, out, overwrite=True)
