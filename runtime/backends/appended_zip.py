"""Reading the model card from the zip archive appended to a ``.tflite`` file, within bounds.

The archive comes with the model, so it is untrusted: its end record, and the central directory that
:mod:`zipfile` would read, are checked before :mod:`zipfile` parses anything (a million central-directory
entries cost seconds and hundreds of MB on every load, and :mod:`zipfile` walks the directory by its
size, not by the count the end record claims), the card's declared and actual size are capped at ``MAX_CARD_BYTES``
(a 1.5 GB card of spaces compresses to a few MB), and what :mod:`zipfile` and :mod:`zlib` raise
on encrypted, unsupported or corrupt members becomes a :class:`CardError` (the caller ignores
the card with a note).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgecls.runtime.card import CARD_FILE_NAME, MAX_CARD_BYTES
from edgecls.runtime.errors import CardError, engine_message

__all__ = ["read_appended_card", "MAX_ZIP_ENTRIES"]

MAX_ZIP_ENTRIES = 16
"""An edgecls export appends 1 entry (MediaPipe's metadata writer a few): more are refused unparsed."""
MAX_DIRECTORY_BYTES = 64 * 1024
"""The most central directory read: 16 entries with names of a few hundred bytes each."""
_END = b"PK\x05\x06"
_END_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ENTRY = b"PK\x01\x02"
_ENTRY_SIZE = 46


@dataclass(frozen=True)
class _EndRecord:
    entries: int
    """The entry count the end record claims."""
    directory: bytes
    """The central directory as :mod:`zipfile` reads it: the ``size`` bytes before the end record
    (at most :data:`MAX_DIRECTORY_BYTES`; empty when it claims more)."""
    directory_size: int
    zip64: bool


def _end_record(path: Path) -> _EndRecord | None:
    """The zip's end record and central directory, or None when the file does not end with a zip.

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
                break
            at = tail.rfind(_END, 0, at)
        else:
            return None
        end_at = size - tail_len + at
        directory_size = int.from_bytes(record[12:16], "little")
        f.seek(max(0, end_at - 20))
        zip64 = f.read(4) == _ZIP64_LOCATOR
        directory = b""
        if directory_size <= min(MAX_DIRECTORY_BYTES, end_at):
            f.seek(end_at - directory_size)
            directory = f.read(directory_size)
    return _EndRecord(int.from_bytes(record[10:12], "little"), directory, directory_size, zip64)


def _directory_entries(directory: bytes) -> int | None:
    """The entries :mod:`zipfile` would read from ``directory`` (it walks them by size, whatever the end
    record's count says), or None when the entries do not fill it exactly."""
    count, at = 0, 0
    while at < len(directory):
        header = directory[at:at + _ENTRY_SIZE]
        if len(header) < _ENTRY_SIZE or not header.startswith(_ENTRY):
            return None
        at += _ENTRY_SIZE + sum(int.from_bytes(header[i:i + 2], "little") for i in (28, 30, 32))
        count += 1
    return count if at == len(directory) else None


def _check_archive(end: _EndRecord) -> None:
    """Refuse, unparsed, an archive that claims or holds more than :data:`MAX_ZIP_ENTRIES` entries."""
    if end.entries > MAX_ZIP_ENTRIES:
        raise CardError(f"the zip appended to the model lists {end.entries:,} entries (at most {MAX_ZIP_ENTRIES} "
                        "are read)")
    if end.zip64:
        raise CardError("the zip appended to the model is a zip64 archive (edgecls reads only small archives)")
    if end.directory_size > MAX_DIRECTORY_BYTES:
        raise CardError(f"the zip appended to the model has a central directory of {end.directory_size:,} bytes "
                        f"(at most {MAX_DIRECTORY_BYTES:,} are read)")
    held = _directory_entries(end.directory)
    if held is None:
        raise CardError("the zip appended to the model has a malformed central directory")
    if held > MAX_ZIP_ENTRIES or held != end.entries:
        raise CardError(f"the zip appended to the model holds {held:,} entries where its end record lists "
                        f"{end.entries:,} (at most {MAX_ZIP_ENTRIES} are read)")


def read_appended_card(path: Path) -> str | None:
    """The ``edgecls_card.json`` text from the zip appended to ``path``; None when there is none.

    Raises:
        CardError: the archive lists or holds more than ``MAX_ZIP_ENTRIES`` entries (its central
            directory is walked before :mod:`zipfile` parses it), is a zip64 archive, the card is larger
            than ``MAX_CARD_BYTES``, not UTF-8, encrypted, compressed with a method Python cannot
            read, or corrupt.
    """
    try:
        end = _end_record(path)
    except OSError:
        return None
    if end is None:
        return None
    _check_archive(end)
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
