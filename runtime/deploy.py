"""``deploy.json``: which file of an export folder to run, on which engine and with how many threads, as
``edgecls bench --pick`` measured on this device. ``Classifier.from_path(FOLDER)`` (and every command
given a folder) loads what it names, and says so in the classifier's notes.

The record is read as untrusted input: it may only name a plain file in its own folder, a registered
engine, a device and a thread count within the machine's limit; anything else is a :class:`ModelLoadError`
naming the record. It picks for speed, not trust: a signature check (``trusted_keys``) applies to the file
it names. A file whose bytes changed since the pick is still loaded, with a note to measure again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgecls.runtime.errors import ModelLoadError

__all__ = ["DEPLOY_FILE", "Deployment", "read_deployment", "require_deployment", "deployed_options",
           "MAX_DEPLOY_BYTES"]

DEPLOY_FILE = "deploy.json"
DEPLOY_VERSION = 1
MAX_DEPLOY_BYTES = 1 << 20


@dataclass(frozen=True)
class Deployment:
    """What ``edgecls bench --pick`` chose for a folder.

    Attributes:
        file: the model file's name, in the folder.
        backend, device, threads: how to run it.
        sha256: the file's SHA-256 when it was measured.
        p50_ms: its end-to-end median latency per frame then; ``spread``: the min/median/max of the rounds.
        picked: when (ISO 8601, UTC); ``machine``: the CPU, cores and engine versions it was measured on.
        candidates: every candidate measured (its figures, and why one was discarded).
    """

    file: str
    backend: str
    threads: int
    device: str = "cpu"
    sha256: str = ""
    p50_ms: float = 0.0
    spread: dict[str, Any] | None = None
    picked: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"version": DEPLOY_VERSION, **asdict(self)}

    def engine(self, backend: str = "auto", device: str = "cpu") -> tuple[str, str]:
        """(backend, device): the caller's where given (not the defaults ``"auto"`` and ``"cpu"``), else the record's."""
        return self.backend if backend == "auto" else backend, self.device if device == "cpu" else device

    def summary(self) -> str:
        """``model_int8.tflite on litert, 2 threads (p50 1.91 ms, picked 2026-12-07)``."""
        return (f"{self.file} on {self.backend}{'' if self.device == 'cpu' else f' ({self.device})'}, "
                f"{self.threads} thread{'s' if self.threads != 1 else ''} (p50 {self.p50_ms:.2f} ms, picked "
                f"{self.picked[:10] or '?'})")


def read_deployment(folder: str | Path) -> Deployment | None:
    """The folder's ``deploy.json``, None when it has none.

    Raises:
        ModelLoadError: the record is unreadable, too large, or names something it may not (see the module).
    """
    path = Path(folder) / DEPLOY_FILE
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_DEPLOY_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_DEPLOY_BYTES:
        raise ModelLoadError(f"{path}: over {MAX_DEPLOY_BYTES:,} bytes; not a deploy.json edgecls wrote")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({str(exc)[:100] or 'nested too deep'})") from None
    return _checked(data, path)


def _checked(data: Any, path: Path) -> Deployment:
    from edgecls.runtime.backends import BACKENDS, max_threads
    from edgecls.runtime.backends.base import DEVICES

    if not isinstance(data, dict) or data.get("version") != DEPLOY_VERSION:
        raise ModelLoadError(f"{path}: not a version-{DEPLOY_VERSION} deploy.json (edgecls bench --pick writes one)")
    file, backend, threads, device = data.get("file"), data.get("backend"), data.get("threads"), data.get("device", "cpu")
    if not isinstance(file, str) or not file or Path(file).name != file or file in (".", "..") or "\0" in file:
        raise ModelLoadError(f"{path}: 'file' must name a file in its own folder, got {str(file)[:80]!r}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ModelLoadError(f"{path}: 'backend' {str(backend)[:40]!r} is not an engine of this edgecls")
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= max_threads():
        raise ModelLoadError(f"{path}: 'threads' must be 1 to {max_threads()}, got {str(threads)[:20]!r}")
    if device not in DEVICES:
        raise ModelLoadError(f"{path}: 'device' must be one of {', '.join(DEVICES)}, got {str(device)[:20]!r}")
    p50 = data.get("p50_ms", 0.0)
    if isinstance(p50, bool) or not isinstance(p50, (int, float)) or not 0 <= p50 < 1e9:
        raise ModelLoadError(f"{path}: 'p50_ms' must be a number of milliseconds, got {str(p50)[:20]!r}")
    for name in ("sha256", "picked"):
        if not isinstance(data.get(name, ""), str):
            raise ModelLoadError(f"{path}: {name!r} must be text, got {str(data[name])[:20]!r}")
    for name, kind in (("spread", (dict, type(None))), ("machine", dict), ("candidates", list)):
        if name in data and not isinstance(data[name], kind):
            raise ModelLoadError(f"{path}: {name!r} must be {'a list' if kind is list else 'an object'}")
    known = {k: v for k, v in data.items() if k in Deployment.__dataclass_fields__}
    try:
        return Deployment(**known)
    except TypeError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None


def require_deployment(folder: Path) -> Deployment:
    """The ``deploy.json`` of ``folder``.

    Raises:
        ModelLoadError: the folder has none (the message says how to make one), or one that cannot be used.
    """
    deployment = read_deployment(folder)
    if deployment is None:
        raise ModelLoadError(f"{folder}: is a folder without a {DEPLOY_FILE}; give a model file, or pick one "
                             f"for this device first: edgecls bench --pick {folder} --data IMAGES")
    return deployment


def deployed_options(options: Any) -> tuple[Any, str | None]:
    """``options`` (:class:`~edgecls.runtime.options.ClassifierOptions`) for a folder with a ``deploy.json``:
    its file, engine, device and threads, where the caller left them at their defaults (``backend="auto"``,
    ``num_threads=None``, ``device="cpu"``), and the note that says so; ``options`` itself, and None, for a file.

    Raises:
        ModelLoadError: a folder without a deploy.json, or with one that cannot be used.
    """
    folder = Path(options.model_path)
    if not folder.is_dir():
        return options, None
    deployment = require_deployment(folder)
    model = folder / deployment.file
    backend, device = deployment.engine(options.backend, options.device)
    chosen = replace(options, model_path=model, backend=backend, device=device,
                     num_threads=options.num_threads or deployment.threads)
    note = f"{folder / DEPLOY_FILE}: running {deployment.summary()}"
    if deployment.sha256 and model.is_file():
        from edgecls.runtime.fingerprint import file_sha256

        if file_sha256(model) != deployment.sha256:
            note += f"; {deployment.file} changed since: measure again (edgecls bench --pick {folder})"
    return chosen, note
