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
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from edgecls.runtime.card import InputSpec, ModelCard, Normalization, OutputSpec
from edgecls.runtime.errors import ClosedError, OptionError
from edgecls.runtime.tensors import TensorInfo

__all__ = ["FakeBackend", "FakeEngineFailure", "ScoreScript"]

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
