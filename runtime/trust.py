"""Which model files may run: the trusted keys, and the versions already accepted (no going back).

With :class:`Trust` configured (``Classifier.from_path(path, trusted_keys=[...])``, ``--trusted-key``, or
``EDGECLS_TRUSTED_KEYS``), a model loads only when its signature (:mod:`edgecls.runtime.signatures`)
verifies with one of the keys; with a state folder too (``state_dir``, ``--state``,
``EDGECLS_STATE_DIR``), a signed model whose card version is lower than the highest already accepted
under its name is refused (:class:`~edgecls.runtime.errors.DowngradeError`), also after a restart: the
folder's ``edgecls-versions.json`` keeps, per model name, the highest version accepted, written whole.
Without keys nothing is checked and nothing is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.runtime.card import ModelCard
from edgecls.runtime.errors import DowngradeError, OptionError, SignatureError
from edgecls.runtime.files import file_identity, write_whole
from edgecls.runtime.signatures import PublicKey, Verified, load_public_keys, verify_file

__all__ = ["Trust", "VersionState", "TRUSTED_KEYS_ENV", "STATE_DIR_ENV", "STATE_FILE"]

TRUSTED_KEYS_ENV = "EDGECLS_TRUSTED_KEYS"
"""Trusted public keys (PEM files), separated by ``os.pathsep``."""
STATE_DIR_ENV = "EDGECLS_STATE_DIR"
"""The folder of the accepted versions."""
STATE_FILE = "edgecls-versions.json"
_log = logging.getLogger(__name__)


class VersionState:
    """The highest version accepted per model name, in ``FOLDER/edgecls-versions.json``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / STATE_FILE

    def read(self) -> dict[str, Any]:
        """{name: {"version", "sha256", "accepted"}}.

        Raises:
            SignatureError: the file exists but cannot be read as a state file (never silently reset).
        """
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            raise SignatureError(f"{self.path}: the accepted-versions file cannot be read ({exc}); remove it "
                                 "only if you mean to accept any version again") from None
        if not isinstance(data, dict):
            raise SignatureError(f"{self.path}: not an accepted-versions file")
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Held while reading and writing (other processes loading models wait)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f".{STATE_FILE}.lock", "a") as handle:
            try:
                import fcntl
            except ImportError:  # not on POSIX: one process at a time is the caller's to arrange
                yield
                return
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def admit(self, name: str, version: int, sha256: str, where: str, *, allow_downgrade: bool = False) -> None:
        """Accept ``version`` of model ``name`` (the file ``where``), recording it when it is the highest.

        Raises:
            DowngradeError: a version below the highest accepted under ``name`` (unless ``allow_downgrade``,
                which logs it and keeps the record).
            SignatureError: the state file cannot be read or written.
        """
        with self._locked():
            state = self.read()
            best = state.get(name) or {}
            highest = best.get("version", -1) if isinstance(best, dict) else -1
            if version < highest:
                if not allow_downgrade:
                    raise DowngradeError(f"{where}: version {version} of {name!r} is older than version {highest}, "
                                         f"accepted {best.get('accepted', '')} (an update may not go back; "
                                         "--allow-downgrade to load it anyway)")
                _log.warning("%s: version %d of %r loaded below version %d, as allowed", where, version, name, highest)
                return
            if version == highest and best.get("sha256") == sha256:
                return
            when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            state[name] = {"version": version, "sha256": sha256, "accepted": when}
            try:
                write_whole(self.path, json.dumps(state, indent=1, sort_keys=True).encode(), fsync=True)
            except OSError as exc:
                raise SignatureError(f"{self.path}: cannot record the accepted version ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class Trust:
    """What a model file must be to load: signed by one of ``keys``; with ``state_dir``, no older than the
    version accepted before under its name (``allow_downgrade`` lets an older one load, logged)."""

    keys: tuple[PublicKey, ...]
    state_dir: Path | None = None
    allow_downgrade: bool = False

    @classmethod
    def of(cls, trusted_keys: Sequence[str | os.PathLike] | Trust | None = None, *,
           state_dir: str | os.PathLike | None = None, allow_downgrade: bool = False) -> Trust | None:
        """The trust to load with: ``trusted_keys`` (key files, or a :class:`Trust`; ``()``: none, whatever the
        environment says), else (None) the keys in ``EDGECLS_TRUSTED_KEYS``; the state folder ``state_dir``,
        else ``EDGECLS_STATE_DIR``. None when no key is configured (nothing is checked).

        Raises:
            SignatureError: a key file that cannot be read or is not an elliptic-curve public key.
            OptionError: a state folder or downgrade permission without keys.
            BackendUnavailableError: cryptography is not installed (extra ``sign``).
        """
        if isinstance(trusted_keys, Trust):
            return trusted_keys
        if isinstance(trusted_keys, str | os.PathLike):
            trusted_keys = [trusted_keys]
        paths = list(trusted_keys) if trusted_keys is not None else [
            p for p in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep) if p.strip()]
        if not paths:
            if state_dir is not None or allow_downgrade:
                raise OptionError("a state folder or allow_downgrade needs trusted keys (trusted_keys=, "
                                  "--trusted-key or EDGECLS_TRUSTED_KEYS)", options=("trusted_keys",))
            return None
        folder = state_dir if state_dir is not None else os.environ.get(STATE_DIR_ENV) or None
        return cls(load_public_keys(paths), Path(folder) if folder else None, allow_downgrade)

    def verify(self, path: Path) -> Verified:
        """Raises SignatureError (see :func:`~edgecls.runtime.signatures.verify_file`)."""
        return verify_file(path, self.keys)

    def loaded(self, verified: Verified, card: ModelCard) -> None:
        """After the engine has loaded the verified file: check that it is still the file verified, then
        record (or refuse) its card's version under its card's name (else the file's name).

        Raises:
            SignatureError: the file was replaced or rewritten between its check and its load.
            DowngradeError: its version is below one accepted before under its name.
        """
        try:
            now = file_identity(os.stat(verified.path))
        except OSError:
            now = ()
        if verified.identity and now != verified.identity:
            raise SignatureError(f"{verified.path}: replaced while it was loading (it is not the file whose "
                                 "signature verified); load it again")
        if self.state_dir is not None:
            VersionState(self.state_dir).admit(card.name or verified.path.name, card.version, verified.sha256,
                                               str(verified.path), allow_downgrade=self.allow_downgrade)
