"""Reading the model card from the zip archive appended to a ``.tflite`` file, within bounds.

The archive comes with the model, so it is untrusted: its end record is checked before
:mod:`zipfile` parses anything (a million central-directory entries cost seconds and hundreds
of MB on every load), the card's declared and actual size are capped at ``MAX_CARD_BYTES``
(a 1.5 GB card of spaces compresses to a few MB), and what :mod:`zipfile` and :mod:`zlib` raise
on encrypted, unsupported or corrupt members becomes a :class:`CardError` (the caller ignores
the card with a note).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from edgecls.runtime.card import CARD_FILE_NAME, MAX_CARD_BYTES
from edgecls.runtime.errors import CardError, engine_message

__all__ = ["read_appended_card", "MAX_ZIP_ENTRIES"]

MAX_ZIP_ENTRIES = 16
"""An edgecls export appends 1 entry (MediaPipe's metadata writer a few): more are refused unparsed."""
_END = b"PK\x05\x06"
_END_SIZE = 22


def _entry_count(path: Path) -> int | None:
    """Entries in the zip's end record, or None when the file does not end with a zip.

    The end record must sit exactly its comment's length before the end of the file, so that four
    bytes of weights that happen to spell the signature are not taken for one.
    """
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        tail_len = min(size, _END_SIZE + 0xFFFF)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
    at = tail.rfind(_END)
    while at >= 0:
        record = tail[at:at + _END_SIZE]
        if len(record) == _END_SIZE and at + _END_SIZE + int.from_bytes(record[20:22], "little") == len(tail):
            return int.from_bytes(record[10:12], "little")
        at = tail.rfind(_END, 0, at)
    return None


def read_appended_card(path: Path) -> str | None:
    """The ``edgecls_card.json`` text from the zip appended to ``path``; None when there is none.

    Raises:
        CardError: the archive lists more than ``MAX_ZIP_ENTRIES`` entries, the card is larger
            than ``MAX_CARD_BYTES``, not UTF-8, encrypted, compressed with a method Python cannot
            read, or corrupt.
    """
    try:
        entries = _entry_count(path)
    except OSError:
        return None
    if entries is None:
        return None
    if entries > MAX_ZIP_ENTRIES:
        raise CardError(f"the zip appended to the model lists {entries:,} entries (at most {MAX_ZIP_ENTRIES} "
                        "are read)")
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(CARD_FILE_NAME)
            except KeyError:
                return None
            if info.file_size > MAX_CARD_BYTES:
                raise CardError(f"its card is {info.file_size:,} bytes uncompressed (at most {MAX_CARD_BYTES:,} "
                                "are read)")
            with archive.open(info) as member:
                data = member.read(MAX_CARD_BYTES + 1)
        if len(data) > MAX_CARD_BYTES:
            raise CardError(f"its card is over {MAX_CARD_BYTES:,} bytes uncompressed")
        return data.decode("utf-8")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError, zlib.error) as exc:
        # the file does end with a zip (its end record checked out), so a failure here is a broken card
        raise CardError(f"cannot read the card in the zip appended to the model ({engine_message(exc)})") from None
