"""Options and summary of a batch run (MediaPipe-style small dataclasses)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from edgecls.runtime.capture import CaptureOptions
from edgecls.runtime.errors import OptionError
from edgecls.runtime.monitor import MonitorOptions
from edgecls.runtime.regions import CropPolicy
from edgecls.runtime.trust import Trust

__all__ = ["BatchOptions", "BatchSummary"]


@dataclass(frozen=True)
class BatchOptions:
    """How to run a batch.

    Attributes:
        engine: ``"local"`` (a process pool on this machine) or ``"ray"`` (Ray Data; extra ``ray``).
        workers: worker processes (local) or actors (Ray); None: this machine's cores (local) or the
            cluster's CPUs (Ray).
        batch_size: images per inference call and per work unit's sub-batch.
        top_k: labels and scores kept per row.
        every_seconds: one frame per this many seconds of a video.
        resume: continue the run that made ``out`` (same model and settings), classifying only what it lacks.
        ray_address: a running Ray cluster to join (``ray start --head`` prints it); None starts and stops
            a local Ray instance.
        shard_size: items per committed shard (the most a kill can make a resumed run redo per worker).
        capture: keep the items the model was unsure about (:mod:`edgecls.batch.capture`); its margin
            rule needs ``top_k`` ≥ 2 (the rows keep the top-k scores).
        crop: the crop policy for images listed with boxes (``"square:1.2,min=64,shift"``, ``"frigate"``;
            see :class:`~edgecls.runtime.regions.CropPolicy`); None: the model card's, else ``square``.
        trust: the keys the model must be signed by, the versions it may not go below
            (:class:`~edgecls.runtime.trust.Trust`); None: ``EDGECLS_TRUSTED_KEYS``, else unchecked.
        backend, device: the engine and device every worker runs the model on (``"auto"``: by suffix; a
            folder's deploy.json names its own).
        drift: compare the run's images with the model's reference profile (:mod:`edgecls.batch.drift`):
            ``True`` (every image, the default thresholds) or :class:`~edgecls.runtime.monitor.MonitorOptions`
            (its thresholds, signals, ``every`` and profile; the run is one window).

    Raises:
        OptionError: a value out of range, options that contradict each other, a crop policy that
            cannot be read (RegionError).
    """

    engine: str = "local"
    workers: int | None = None
    batch_size: int = 32
    top_k: int = 5
    every_seconds: float = 1.0
    resume: bool = False
    ray_address: str | None = None
    shard_size: int = 2048
    capture: CaptureOptions | None = None
    crop: str | None = None
    trust: Trust | None = None
    drift: MonitorOptions | bool = False
    backend: str = "auto"
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("workers", "batch_size", "top_k", "shard_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise OptionError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.every_seconds, (int, float)) and self.every_seconds > 0):
            raise OptionError(f"every_seconds must be a positive number, got {self.every_seconds!r}")
        if self.ray_address is not None and self.engine != "ray":
            raise OptionError("ray_address applies to engine='ray' only", options=("engine",))
        if self.capture is not None and not isinstance(self.capture, CaptureOptions):
            raise OptionError(f"capture takes CaptureOptions, got {type(self.capture).__name__}", options=("capture",))
        if self.capture is not None and self.capture.below_margin is not None and self.top_k < 2:
            raise OptionError("capture's margin rule needs top_k ≥ 2 (the rows keep the top-k scores)",
                              options=("capture", "top_k"))
        if not isinstance(self.drift, (bool, MonitorOptions)):
            raise OptionError(f"drift takes MonitorOptions or True, got {type(self.drift).__name__}",
                              options=("drift",))
        if self.crop is not None:
            object.__setattr__(self, "crop", CropPolicy.parse(self.crop).to_text())  # one spelling per policy

    def unit_size(self, items: int, workers: int) -> int:
        """Items per unit of work (a committed shard, a Ray block): ``shard_size``, smaller for a short
        run so that every worker gets about four units."""
        return max(1, min(self.shard_size, -(-items // (4 * workers))))

    def worker_count(self) -> int:
        """``workers``, or the cores this process may use."""
        if self.workers is not None:
            return self.workers
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)


@dataclass
class EngineReport:
    """What an engine did.

    Attributes:
        classified: items classified (``errors`` of them could not be read; each has its row with ``error``).
        workers: the worker processes (local) or actors (Ray) it ran.
        start_s: seconds until the engine could classify: the pool's processes with their model (local);
            starting or joining Ray, then the actors with theirs until the first block starts (Ray).
        work_s: from the engine's start to its last row committed.
        retried: units of work that ran more than once because a worker died (Ray); each is written once.
        worker_restarts: workers started again after one died (Ray).
    """

    classified: int = 0
    errors: int = 0
    workers: int = 0
    start_s: float = 0.0
    work_s: float = 0.0
    retried: int = 0
    worker_restarts: int = 0


@dataclass
class BatchSummary(EngineReport):
    """What a batch run did: its engine's :class:`EngineReport`, and

    Attributes:
        inputs: items the inputs name (images and sampled video frames).
        skipped: items already in the output folder (a resumed run), not classified again.
        rows: rows in the output folder now (each input once; an image with boxes, once per box).
        wall_s: the whole run: listing the inputs, reading OUT, the engine's start and work.
        images_per_s: items classified per second once started (``classified / work_s``).
    """

    engine: str = ""
    out: str = ""
    inputs: int = 0
    skipped: int = 0
    rows: int = 0
    wall_s: float = 0.0
    images_per_s: float = 0.0
    model: str = ""
    model_sha256: str = ""
    capture: dict[str, int] | None = None
    """What capture did (:class:`~edgecls.runtime.capture.CaptureStats` as a dict), None without it."""
    drift: dict[str, Any] | None = None
    """The drift report of every image in OUT against the reference (:func:`edgecls.batch.drift.drift_report`),
    None without ``drift``."""

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}
