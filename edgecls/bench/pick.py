"""``edgecls bench --pick DIR``: the fastest way to run an export folder on this device, chosen by measurement.

Every model file in the folder × every installed engine that reads it × thread counts (1, half and all of
this machine's cores) is a candidate. First each file on each engine classifies the images of ``data``: a
candidate whose top-1 agreement with the reference (the folder's fp32 file on its default engine, which the
export proved equal to the Keras model) is under its budget, or whose accuracy (class folders) falls more
than its budget allows, is discarded. The budget is the file's own, from its card (the quantization
ladder's), else the export's defaults (agreement 0.999 for fp32, 0.98 otherwise), unless given. Then the
rest are timed end to end on camera frames, in interleaved rounds (every candidate once per round, so that
machine noise hits all alike), and the lowest median of the per-round p50s wins. The choice, its figures,
every candidate and the machine go to ``DIR/deploy.json`` (:mod:`edgecls.runtime.deploy`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.bench.measure import camera_frames, spread_of
from edgecls.runtime.deploy import DEPLOY_FILE, Deployment
from edgecls.runtime.errors import MeasurementError, OptionError, OutputError

__all__ = ["PickOptions", "Candidate", "pick", "candidate_threads"]

MODEL_SUFFIXES = (".tflite", ".onnx")


@dataclass(frozen=True)
class PickOptions:
    """How to pick.

    Attributes:
        data: images the candidates classify for the budget check (class folders add accuracy).
        limit: at most this many of them (a fixed sample).
        threads: thread counts to try; None: 1, half and all of the cores.
        rounds, runs, warmup: timed rounds, classifications per candidate and round, untimed ones first.
        size: the camera frames timed (W×H).
        min_agreement, max_drop: the budget for every file, instead of each file's own.
        engines: only these engines (names); None: every installed one.

    Raises:
        OptionError: a value out of range.
    """

    data: str | Path
    limit: int = 500
    threads: tuple[int, ...] | None = None
    rounds: int = 5
    runs: int = 50
    warmup: int = 10
    size: tuple[int, int] = (640, 480)
    min_agreement: float | None = None
    max_drop: float | None = None
    engines: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("limit", "rounds", "runs"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 1:
            raise OptionError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        if self.max_drop is not None and not 0 <= self.max_drop <= 100:
            raise OptionError(f"max_drop must be in [0, 100] accuracy points, got {self.max_drop}")


@dataclass
class Candidate:
    """One file on one engine with one thread count, and what was measured."""

    file: str
    quantization: str
    backend: str
    threads: int
    agreement: float = 0.0
    accuracy: float | None = None
    min_agreement: float | None = None
    max_drop: float | None = None
    discarded: str | None = None
    """Why it was not timed (outside its budget, or its engine refused the file)."""
    round_p50_ms: list[float] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return float(np.median(self.round_p50_ms)) if self.round_p50_ms else float("inf")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["p50_ms"] = None if not self.round_p50_ms else round(self.p50_ms, 4)
        data["spread"] = spread_of(self.round_p50_ms)
        return data


def candidate_threads(cores: int | None = None) -> tuple[int, ...]:
    """1, half and all of ``cores`` (this machine's), without repeats."""
    cores = cores or os.cpu_count() or 1
    return tuple(sorted({1, max(1, cores // 2), cores}))


def pick(folder: str | Path, options: PickOptions) -> tuple[Deployment, list[Candidate]]:
    """Measure every candidate of ``folder`` and write ``folder/deploy.json`` naming the fastest within budget.

    Raises:
        OptionError: no model files in ``folder``, or no fp32 file to be the reference.
        DatasetError: ``data`` holds no images, or class folders that are not the model's labels.
        MeasurementError: no candidate is within its budget.
        OutputError: deploy.json cannot be written.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise OptionError(f"{folder}: no .tflite or .onnx files to pick from")
    reference = _reference(files)
    images, truth = _images(reference, options)
    ref_top, _ = _answers(reference, "auto", images)
    candidates = []
    for path in files:
        for backend in _engines(path, options.engines):
            candidates += _checked(path, backend, options, images, truth, ref_top)
    timed = [c for c in candidates if c.discarded is None]
    if not timed:
        raise MeasurementError(f"{folder}: no candidate is within its accuracy budget:\n"
                               + "\n".join(f"  {c.file} on {c.backend}: {c.discarded}" for c in candidates))
    _time(folder, timed, options)
    best = min(timed, key=lambda c: c.p50_ms)
    deployment = _deployment(folder, best, candidates)
    try:
        from edgecls.runtime.files import write_whole

        write_whole(folder / DEPLOY_FILE, json.dumps(deployment.to_dict(), indent=1).encode())
    except OSError as exc:
        raise OutputError(f"{folder / DEPLOY_FILE}: cannot write ({exc.strerror or exc})") from exc
    return deployment, candidates


def _reference(files: list[Path]) -> Path:
    """The fp32 file (a ``.tflite`` first): the export proved it equal to the Keras model."""
    from edgecls.runtime import Classifier

    for path in sorted(files, key=lambda p: p.suffix != ".tflite"):
        with Classifier.from_path(path, num_threads=1) as clf:
            if clf.card.provenance.quantization == "fp32":
                return path
    raise OptionError(f"{files[0].parent}: no fp32 file to check the others against (export with fp32 too)")


def _images(reference: Path, options: PickOptions) -> tuple[list[str], np.ndarray | None]:
    from edgecls.runtime import Classifier
    from edgecls.runtime.datasets import ImageFolder

    data = ImageFolder.scan(options.data, limit=options.limit)
    with Classifier.from_path(reference, num_threads=1) as clf:
        truth = data.label_indices(clf.labels)
    return [str(p) for p in data.files], truth


def _answers(path: Path, backend: str, images: list[str]) -> tuple[np.ndarray, Any]:
    """The top-1 class of each image, and the file's card."""
    from edgecls.runtime import Classifier

    with Classifier.from_path(path, backend=backend) as clf:
        tops = [clf.scores_batch(images[i:i + 32]).argmax(1) for i in range(0, len(images), 32)]
        return np.concatenate(tops), clf.card


def _engines(path: Path, only: tuple[str, ...] | None) -> list[str]:
    """The installed engines that read ``path``'s suffix (or those of ``only``)."""
    from edgecls.runtime.backends import installed, registered

    return [spec.name for spec in registered() if path.suffix.lower() in spec.suffixes and installed(spec)
            and (only is None or spec.name in only)]


def _budget(card: Any, options: PickOptions) -> tuple[float | None, float | None]:
    """(min agreement, max accuracy drop in points) for a file: given, else its card's, else the export's."""
    if options.min_agreement is not None or options.max_drop is not None:
        return options.min_agreement, options.max_drop
    budget = (card.provenance.ladder or {}).get("budget") or {}
    if budget:
        return budget.get("min_agreement"), budget.get("max_drop")
    return (0.999 if card.provenance.quantization == "fp32" else 0.98), None


def _checked(path: Path, backend: str, options: PickOptions, images: list[str], truth: np.ndarray | None,
             ref_top: np.ndarray) -> list[Candidate]:
    """The candidates of one file on one engine (one per thread count), each with its budget check."""
    from edgecls.runtime.errors import EdgeclsError

    threads = options.threads or candidate_threads()
    try:
        top, card = _answers(path, backend, images)
    except EdgeclsError as exc:
        return [Candidate(path.name, "?", backend, n, discarded=f"the engine refused it: {exc}") for n in threads]
    min_agreement, max_drop = _budget(card, options)
    agreement = float((top == ref_top).mean())
    accuracy = None if truth is None else float((top == truth).mean())
    why = None
    if min_agreement is not None and agreement < min_agreement:
        why = f"top-1 agreement {agreement:.4f} < {min_agreement} (its budget)"
    elif max_drop is not None and truth is not None:
        drop = 100 * float((ref_top == truth).mean() - accuracy)
        if drop > max_drop:
            why = f"accuracy {drop:.2f} points below the reference's > {max_drop} (its budget)"
    return [Candidate(path.name, card.provenance.quantization or "?", backend, n, agreement, accuracy,
                      min_agreement, max_drop, why) for n in threads]


def _time(folder: Path, timed: list[Candidate], options: PickOptions) -> None:
    """Each candidate's p50 per round: the candidates loaded together, then timed in turn each round."""
    from edgecls.runtime import Classifier

    frames = camera_frames(options.size)
    loaded = []
    try:
        for c in timed:
            loaded.append(Classifier.from_path(folder / c.file, backend=c.backend, num_threads=c.threads))
            for i in range(options.warmup):
                loaded[-1].classify(frames[i % len(frames)])
        for _ in range(options.rounds):
            for c, clf in zip(timed, loaded, strict=True):
                samples = []
                for i in range(options.runs):
                    start = time.perf_counter()
                    clf.classify(frames[i % len(frames)])
                    samples.append((time.perf_counter() - start) * 1000)
                c.round_p50_ms.append(float(np.median(samples)))
    finally:
        for clf in loaded:
            clf.close()


def _deployment(folder: Path, best: Candidate, candidates: list[Candidate]) -> Deployment:
    from edgecls.runtime.fingerprint import file_sha256

    return Deployment(file=best.file, backend=best.backend, threads=best.threads, device="cpu",
                      sha256=file_sha256(folder / best.file), p50_ms=round(best.p50_ms, 4),
                      spread=spread_of(best.round_p50_ms), picked=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      machine=machine(), candidates=[c.to_dict() for c in candidates])


def machine() -> dict[str, Any]:
    """The CPU, its cores, the OS and the engines' versions."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    engines = {}
    for package in ("ai-edge-litert", "onnxruntime", "openvino", "tflite-runtime"):
        try:
            engines[package] = version(package)
        except PackageNotFoundError:
            continue
    return {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "engines": engines}
