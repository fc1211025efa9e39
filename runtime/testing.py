"""A test seam: :class:`FakeBackend`, an engine that runs no model and answers from a script.

Code built on :class:`~edgecls.runtime.Classifier` (a camera loop, an alarm rule, a stream consumer) can be
tested with it without a model file or an engine installed, the way httpx's ``MockTransport`` tests HTTP
code without a server::

    from edgecls.runtime import Classifier
    from edgecls.runtime.testing import FakeBackend

    fake = FakeBackend(["empty", "person"], scores=[[0.9, 0.1], [0.2, 0.8]])
    with Classifier.from_backend(fake) as clf:
        assert clf.classify(frame).categories[0].label == "empty"    # the script's first row
        assert clf.classify(frame).categories[0].label == "person"   # its second

Everything between the image and the engine runs for real (decoding, resizing, normalizing, the
postprocessing, thresholds and lists), so a test sees what production code sees; only the scores are
scripted. Scripted failures surface as the :class:`~edgecls.runtime.InferenceError` a real engine failure
does.

Code that opens models by path in other processes (``edgecls serve``, ``edgecls batch`` workers) gets the
same fake from a *fake model file*: :func:`write_fake_model` writes the script as JSON (``NAME.fake``), and
importing this module registers the ``fake`` backend for ``.fake`` files, so
``EDGECLS_PLUGINS=edgecls.runtime.testing edgecls serve model.fake`` serves it. The file is data only
(labels, rows of scores or a named rule, size, latency, failures); nothing in it runs.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.backends import BackendConfig, BackendSpec, register
from edgecls.runtime.card import InputSpec, ModelCard, Normalization, OutputSpec
from edgecls.runtime.errors import ClosedError, ModelLoadError, OptionError
from edgecls.runtime.files import write_whole
from edgecls.runtime.tensors import TensorInfo

__all__ = ["FakeBackend", "FakeEngineFailure", "ScoreScript", "by_brightness", "write_fake_model",
           "open_fake_model", "FAKE_SUFFIX"]

ScoreScript = Callable[[np.ndarray], np.ndarray]
"""Scores computed from the batch the engine receives: ``(N, H, W, C)`` float32 in, ``(N, classes)`` out."""


class FakeEngineFailure(RuntimeError):
    """What a scripted failure raises inside the engine (the runtime reports it as an InferenceError)."""


class FakeBackend:
    """A :class:`~edgecls.runtime.backends.Backend` whose scores come from a script.

    Args:
        labels: the class labels (the card's; at least one).
        scores: the rows to answer with, one per image, in turn (cycled when used up); or a
            :data:`ScoreScript` computing them from the input; default: image ``i`` scores 1.0 for
            class ``i % len(labels)``.
        size: the input's ``(height, width)``.
        channels: 3 (RGB) or 1 (grey).
        latency_ms: how long each engine call takes (it sleeps: for code that must cope with a slow model).
        fail_at: the engine calls (0-based) that fail with :class:`FakeEngineFailure`.
        multi_label: each label scored on its own (a sigmoid head) rather than one distribution.
        name: the engine name reported (``Classifier.backend.name``).

    Attributes:
        calls: engine calls so far; ``images``: images classified so far; ``batches``: the sizes of the
            last 10,000 calls (bounded, so a long soak on the fake holds constant memory).

    Raises:
        OptionError: no labels, scripted rows of another width, a bad size, channel count or latency.
    """

    device = "cpu"
    accelerators: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __init__(self, labels: Sequence[str], *, scores: Sequence[Sequence[float]] | ScoreScript | None = None,
                 size: tuple[int, int] = (224, 224), channels: int = 3, latency_ms: float = 0.0,
                 fail_at: Iterable[int] = (), multi_label: bool = False, name: str = "fake") -> None:
        self.labels = tuple(str(label) for label in labels)
        if not self.labels:
            raise OptionError("a FakeBackend needs at least one label")
        if channels not in (1, 3) or len(size) != 2 or min(size) <= 0:
            raise OptionError(f"a FakeBackend input is (height, width) > 0 with 1 or 3 channels, got {size} x {channels}")
        if latency_ms < 0:
            raise OptionError(f"latency_ms must be >= 0, got {latency_ms}")
        self.name = name
        self.latency_ms = float(latency_ms)
        self.fail_at = frozenset(fail_at)
        self.multi_label = multi_label
        self._script = scores if callable(scores) else self._rows(scores)
        self.input = TensorInfo("image", (None, size[0], size[1], channels), np.dtype(np.float32))
        self.output = TensorInfo("scores", (None, len(self.labels)), np.dtype(np.float32))
        self.calls = 0
        self.images = 0
        self._batches: deque[int] = deque(maxlen=10_000)
        self.closed = False
        self._lock = threading.Lock()

    def _rows(self, scores: Sequence[Sequence[float]] | None) -> np.ndarray:
        if scores is None:
            return np.eye(len(self.labels), dtype=np.float32)
        rows = np.asarray(scores, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != len(self.labels):
            raise OptionError(f"scripted scores must be rows of {len(self.labels)} values (one per label), "
                              f"got shape {rows.shape}")
        return rows

    def card(self) -> ModelCard:
        """The card the fake model carries: its labels and input, pixels scaled to [0, 1]."""
        height, width, channels = self.input.shape[1:]
        return ModelCard(
            labels=self.labels,
            input=InputSpec(height=height, width=width, channels=channels, color="gray" if channels == 1 else "rgb",
                            normalization=Normalization(baked=False, mean=(0.0,), std=(255.0,))),
            output=OutputSpec(num_classes=len(self.labels),
                              kind="multi-label" if self.multi_label else "single-label"),
            name=self.name,
        )

    @property
    def batches(self) -> list[int]:
        return list(self._batches)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The scripted scores of ``batch``'s images.

        Raises:
            ClosedError: after :meth:`close`.
            FakeEngineFailure: this call is in ``fail_at``.
        """
        with self._lock:
            if self.closed:
                raise ClosedError(f"{self.name}: the engine is closed")
            call, first = self.calls, self.images
            self.calls += 1
            self.images += len(batch)
            self._batches.append(len(batch))
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)
        if call in self.fail_at:
            raise FakeEngineFailure(f"scripted failure of engine call {call}")
        if callable(self._script):
            return np.asarray(self._script(batch), dtype=np.float32)
        return self._script[np.arange(first, first + len(batch)) % len(self._script)]

    def embedded_card(self) -> str:
        return self.card().to_json()

    def close(self) -> None:
        self.closed = True


def by_brightness(classes: int) -> ScoreScript:
    """A script that answers by how bright the image is as the engine sees it: the input's mean (0–1 under the
    fake's card) split into ``classes`` equal bands, band ``k`` scoring 1.0 for class ``k``. Deterministic
    per image, so results do not depend on the order or the process that classified it."""

    def script(batch: np.ndarray) -> np.ndarray:
        bands = np.clip((batch.reshape(len(batch), -1).mean(axis=1) * classes).astype(int), 0, classes - 1)
        return np.eye(classes, dtype=np.float32)[bands]

    return script


FAKE_SUFFIX = ".fake"
FAKE_FORMAT = "edgecls-fake-model"
MAX_FAKE_BYTES = 1 << 20
_SCRIPTS = {"brightness": by_brightness}
_FAKE_DEFAULTS: dict[str, Any] = {name: p.default for name, p in inspect.signature(FakeBackend).parameters.items()
                                  if p.kind is p.KEYWORD_ONLY and name != "scores"}
"""FakeBackend's keywords and their defaults (what a fake model file holds besides labels and scores)."""


def write_fake_model(path: str | os.PathLike, labels: Sequence[str], *,
                     scores: Sequence[Sequence[float]] | str | None = None, **options: Any) -> Path:
    """Write a fake model file (JSON, ``.fake``) that the ``fake`` backend opens as a :class:`FakeBackend` with
    these arguments: ``scores`` as rows or the name of a rule (``"brightness"``: :func:`by_brightness`),
    ``options`` any of its keywords (``size``, ``channels``, ``latency_ms``, ``fail_at``, ``multi_label``,
    ``name``). Returns the path.

    Raises:
        OptionError: arguments a FakeBackend refuses, an unknown rule or keyword, or a name not ending in
            ``.fake``.
        OSError: the file cannot be written (nothing is left behind).
    """
    path = Path(path)
    if path.suffix != FAKE_SUFFIX:
        raise OptionError(f"{path}: a fake model file's name ends in {FAKE_SUFFIX}")
    unknown = sorted(set(options) - set(_FAKE_DEFAULTS))
    if unknown:
        raise OptionError(f"unknown FakeBackend option(s) {', '.join(unknown)}; choose from {', '.join(_FAKE_DEFAULTS)}")
    given = {**_FAKE_DEFAULTS, **options}
    data = {"format": FAKE_FORMAT, "labels": [str(label) for label in labels], "size": list(given["size"]),
            "channels": given["channels"], "latency_ms": given["latency_ms"], "fail_at": sorted(given["fail_at"]),
            "multi_label": given["multi_label"], "name": given["name"],
            "scores": scores if isinstance(scores, str) or scores is None else
            np.asarray(scores, dtype=np.float32).tolist()}
    _fake_from(data, str(path))  # refused here rather than when a server opens it
    write_whole(path, json.dumps(data).encode())
    return path


def _fake_from(data: Any, source: str) -> FakeBackend:
    if not isinstance(data, dict) or data.get("format") != FAKE_FORMAT:
        raise ModelLoadError(f"{source}: not a fake model file (no \"format\": \"{FAKE_FORMAT}\")")
    scores = data.get("scores")
    if isinstance(scores, str):
        if scores not in _SCRIPTS:
            raise OptionError(f"{source}: unknown score rule {scores!r}; choose from {', '.join(_SCRIPTS)}")
        scores = _SCRIPTS[scores](len(data.get("labels") or ()))
    try:
        return FakeBackend(data["labels"], scores=scores, size=tuple(data["size"]), channels=data["channels"],
                           latency_ms=data["latency_ms"], fail_at=data["fail_at"],
                           multi_label=bool(data["multi_label"]), name=str(data["name"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{source}: bad fake model file ({type(exc).__name__}: {exc})") from exc


def open_fake_model(path: Path, config: BackendConfig) -> FakeBackend:
    """The ``fake`` backend's opener: the :class:`FakeBackend` a fake model file describes.

    Raises:
        ModelLoadError: the file is over 1 MB, not JSON, or not a fake model file (naming the file).
        OptionError: values a FakeBackend refuses.
    """
    if path.stat().st_size > MAX_FAKE_BYTES:
        raise ModelLoadError(f"{path}: a fake model file is at most {MAX_FAKE_BYTES} bytes")
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a fake model file ({exc})") from exc
    return _fake_from(data, str(path))


register(BackendSpec("fake", (), (FAKE_SUFFIX,), "", open_fake_model))
