"""Signing an export: a model-signing signature beside every model file it wrote (see
:mod:`edgecls.runtime.signatures` for the format)."""

from __future__ import annotations

from pathlib import Path

from edgecls.converters.errors import ExportError
from edgecls.converters.report import ExportResult
from edgecls.runtime.errors import SignatureError
from edgecls.runtime.signatures import sign_file

__all__ = ["sign_export"]


def sign_export(report: ExportResult, key: str | Path, passphrase: bytes | None = None) -> list[Path]:
    """Sign each model file of ``report`` (and the Frigate folder's ``model.tflite``) with ``key``; the
    signatures' paths.

    Raises:
        ExportError: the key cannot be read or decrypted, or is not an elliptic-curve key model-signing
            signs with; a signature cannot be written.
    """
    files = [f.path for f in report.files]
    if report.frigate is not None:
        files.append(Path(report.frigate) / "model.tflite")
    signed = []
    for path in dict.fromkeys(files):
        try:
            signed.append(sign_file(path, key, passphrase=passphrase))
        except SignatureError as exc:
            raise ExportError(str(exc), options=("sign",)) from None
        except OSError as exc:
            raise ExportError(f"{path}: cannot write its signature ({exc.strerror or exc})") from None
    return signed
