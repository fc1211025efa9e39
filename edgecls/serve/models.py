"""The models a service serves: a pool of :class:`Classifier` per model, swapped whole on reload.

A :class:`ModelPool` holds ``workers`` classifiers of one file (LiteRT runs one call at a time per
interpreter, so parallel requests need one each). A :class:`ServedModel` points at its current pool; a
reload loads the new file into a new pool beside the old one, checks it (it loads, its card agrees with
its tensors, it classifies a blank frame of its input size into as many scores as it has labels), then
swaps the pointer: requests that hold the old pool finish on it, and the old pool is closed when the last
of them gives it back. A file that fails its check is refused and the old pool keeps serving.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.runtime.capture_store import folder_name
from edgecls.runtime.classifier import Classifier
from edgecls.runtime.errors import ModelLoadError, OptionError
from edgecls.runtime.monitor import Monitor, MonitorOptions
from edgecls.runtime.trust import Trust

__all__ = ["ModelPool", "ServedModel", "ModelSet", "parse_model_args"]


class ModelPool:
    """``size`` classifiers of one model file (or of the file a folder's ``deploy.json`` names), lent one
    request at a time; ``threads`` engine threads each (None: 1, or the deploy.json's); ``engine``: the
    ``backend`` and ``device`` to load it with."""

    def __init__(self, path: Path, size: int, threads: int | None, trust: Trust | None = None,
                 monitor: MonitorOptions | None = None, engine: dict[str, str] | None = None) -> None:
        self.path = path
        self.loaded_at = time.time()
        self._free: queue.SimpleQueue[Classifier] = queue.SimpleQueue()
        self._all: list[Classifier] = []
        self.monitor: Monitor | None = None
        """The drift monitor every classifier of the pool feeds (one per pool: a reload starts afresh)."""
        try:
            for _ in range(size):  # a folder: its deploy.json's file, engine (and threads, unless given)
                clf = Classifier.from_path(path, num_threads=threads or (None if path.is_dir() else 1),
                                           trusted_keys=trust, monitor=self.monitor or monitor, **(engine or {}))
                self.monitor = clf.monitor
                self._all.append(clf)
                self._free.put(clf)
        except BaseException:
            self.close()
            raise
        self.card = self._all[0].card
        self.file, self.sha256, self.engine = self._all[0].path, self._all[0].sha256, self._all[0].backend.name
        self._users = 0
        self._retired = False
        self._lock = threading.Lock()

    def check(self) -> None:
        """Classify a blank frame of the input size with every classifier.

        Raises:
            ModelLoadError: a classifier returns another number of scores than the card's labels.
        """
        spec = self.card.input
        blank = np.zeros((spec.height, spec.width, 3), np.uint8)
        for clf in self._all:
            scores = clf.scores(blank)
            if scores.shape != (len(clf.labels),) or not np.isfinite(scores).all():
                raise ModelLoadError(f"{self.path}: a blank frame gave scores of shape {scores.shape} "
                                   f"for {len(clf.labels)} labels (or non-finite ones)")

    def enter(self) -> None:
        """One more request holds this pool (see :meth:`ServedModel.lease`)."""
        with self._lock:
            self._users += 1

    def leave(self) -> None:
        """A request gives the pool back; the last one closes a retired pool."""
        with self._lock:
            self._users -= 1
            last = self._retired and self._users == 0
        if last:
            self.close()

    @contextmanager
    def borrow(self) -> Iterator[Classifier]:
        """A free classifier of this pool for the block (waits for one)."""
        clf = self._free.get()
        try:
            yield clf
        finally:
            self._free.put(clf)

    def retire(self) -> None:
        """Close now if no request holds the pool, else when the last one gives it back."""
        with self._lock:
            self._retired = True
            idle = self._users == 0
        if idle:
            self.close()

    def close(self) -> None:
        for clf in self._all:
            clf.close()


@dataclass
class ServedModel:
    """A name, the file it is loaded from, and its current pool."""

    name: str
    path: Path
    pool: ModelPool
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def lease(self) -> Iterator[ModelPool]:
        """The current pool, held for the block: a reload meanwhile swaps in a new pool, and this one is
        closed only after the block (and every other holder) gives it back."""
        with self._lock:
            pool = self.pool
            pool.enter()
        try:
            yield pool
        finally:
            pool.leave()

    def swap(self, pool: ModelPool) -> None:
        """Make ``pool`` current; the old one closes when its last holder leaves."""
        with self._lock:
            old, self.pool = self.pool, pool
        old.retire()

    def describe(self) -> dict[str, Any]:
        pool = self.pool
        return {"name": self.name, "path": str(self.path), "file": str(pool.file), "backend": pool.engine,
                "sha256": pool.sha256,
                "loaded_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pool.loaded_at)),
                "labels": list(pool.card.labels), "card": pool.card.to_dict()}


class ModelSet:
    """The served models by name; the first is the default. Thread-safe reloads."""

    def __init__(self, named: Sequence[tuple[str | None, Path]], *, workers: int, threads: int | None,
                 trust: Trust | None = None, monitor: MonitorOptions | None = None,
                 engine: dict[str, str] | None = None) -> None:
        """``named``: (name, path) pairs; a None name is the card's name (made a safe folder and URL name:
        a card is not trusted), else the file's stem. ``trust``: the keys every file (and every reload)
        must be signed by, and the versions it may not go below (None: ``EDGECLS_TRUSTED_KEYS``, else none).
        ``monitor``: watch each model for drift (a monitor per model, shared by its pool's classifiers).
        ``engine``: the ``backend`` and ``device`` every model loads with."""
        if not named:
            raise OptionError("give at least one model to serve")
        self.workers, self.threads = workers, threads
        self.trust = trust if trust is not None else Trust.of()
        self.monitor, self.engine = monitor, engine
        self.models: dict[str, ServedModel] = {}
        self._reload_lock = threading.Lock()
        try:
            for given, path in named:
                pool = ModelPool(path, workers, threads, self.trust, monitor, engine)
                name = given or (folder_name(pool.card.name) if pool.card.name else path.stem)
                if name in self.models:
                    pool.close()
                    raise OptionError(f"two models are named {name!r}: name them with NAME=PATH")
                try:
                    pool.check()
                except BaseException:
                    pool.close()
                    raise
                self.models[name] = ServedModel(name, path, pool)
        except BaseException:  # a later model failed: the ones loaded before it are closed, not leaked
            self.close()
            raise
        self.default = next(iter(self.models))

    def get(self, name: str | None) -> ServedModel:
        """The model ``name`` (None: the default). Raises KeyError for an unknown name."""
        return self.models[self.default if name is None else name]

    def reload(self, name: str) -> ServedModel:
        """Load ``name``'s file again (it may have been replaced on disk), check it, and swap it in.

        Raises:
            KeyError: unknown model.
            EdgeclsError: the new file does not load or fails its check, or (SignatureError) is not signed by
                a trusted key or older than the version accepted (the old model keeps serving).
        """
        with self._reload_lock:
            served = self.models[name]
            try:
                pool = ModelPool(served.path, self.workers, self.threads, self.trust, self.monitor, self.engine)
            except OSError as exc:
                raise ModelLoadError(f"{served.path}: cannot read model file ({exc.strerror or exc})") from None
            try:
                pool.check()
            except BaseException:
                pool.close()
                raise
            served.swap(pool)
            return served

    def close(self) -> None:
        for served in self.models.values():
            served.pool.retire()


def parse_model_args(args: Sequence[str]) -> list[tuple[str | None, Path]]:
    """``NAME=PATH`` or ``PATH`` → (name, path) pairs; a bare PATH's name is None (the :class:`ModelSet`
    names it by its card, else its file's stem, once it has loaded it).

    Raises:
        OptionError: an empty name or path.
    """
    named = []
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = "", arg
        if sep and (not name or not path):
            raise OptionError(f"expected NAME=PATH or PATH, got {arg!r}")
        named.append((name or None, Path(path)))
    return named
