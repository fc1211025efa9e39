"""``edgecls.batch.run``: classify an archive into a folder of Parquet files, resumably."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TextIO

from edgecls.batch.capture import capture_rows
from edgecls.batch.drift import drift_report, worker_monitor
from edgecls.batch.engines import Job, get_engine
from edgecls.batch.inputs import expand
from edgecls.batch.options import BatchOptions, BatchSummary, EngineReport
from edgecls.batch.output import ResultStore
from edgecls.batch.progress import Progress
from edgecls.batch.rows import ModelFacts
from edgecls.runtime.errors import ModelLoadError
from edgecls.runtime.fingerprint import file_sha256
from edgecls.runtime.monitor import Monitor
from edgecls.runtime.trust import Trust

__all__ = ["run"]


def run(model: str | Path, inputs: Sequence[str | Path], out: str | Path, options: BatchOptions | None = None,
        *, progress_to: TextIO | None = None) -> BatchSummary:
    """Classify every image and sampled video frame that ``inputs`` name with ``model``, into ``out``: a
    folder of Parquet files, one row per item (path, frame and time for video frames, top-1 label and
    score, top-k labels and scores, ``error`` for an item that could not be read, the model's name and
    sha256); an image listed with boxes (a ``boxes`` column of a CSV or Parquet list) has one row per box
    instead, with ``box`` (its index), ``region`` (in frame pixels), ``detected`` (the detector's label),
    ``crop`` (what the model saw, by ``options.crop``) or ``skipped`` (why not). Killed and run again with ``resume=True``, it classifies only what ``out`` lacks; ``out``
    then holds each item exactly once. Read it with ``pyarrow.parquet.read_table(out)`` or pandas.
    With ``options.capture``, the items under its threshold are then kept as hard examples, each once
    across resumes (:mod:`edgecls.batch.capture`). With ``options.drift``, every image in ``out`` is
    compared with the model's reference profile: ``summary.drift`` and ``out/_drift.json``
    (:mod:`edgecls.batch.drift`).
    ``progress_to``: a stream for progress (a bar on a terminal, a line per tenth otherwise).

    Raises:
        ModelLoadError: the model file is missing or unreadable (or does not load in a worker); a folder
            without a usable deploy.json (a folder with one runs the file, engine and device it names).
        OptionError: bad options; ``out`` holds an earlier run and ``resume`` is off, or another model's.
        OptionError: with ``drift``, the card has no reference profile (``edgecls profile`` makes one).
        DatasetError: an input that does not exist, a glob or folder without images.
        RegionError: a list's ``boxes`` cell that is not boxes (naming the list and row).
        SignatureError: with trusted keys, the model is not signed by one, or older than before.
        BackendUnavailableError: pyarrow (extra ``batch``) or, for ``engine="ray"``, Ray Data (extra ``ray``)
            is missing.
        EdgeclsError: a worker died or the Ray job failed (what was written is kept: resume).
        OSError: the capture folder cannot be created.
        OutputError: the drift report cannot be written.
    """
    options = options or BatchOptions()
    engine = get_engine(options.engine)
    model, options = _deployed(Path(model), options)
    t0 = time.perf_counter()
    try:
        sha256 = file_sha256(model)
    except IsADirectoryError:
        raise ModelLoadError(f"{model}: is a folder, not a model file") from None
    except OSError as exc:
        raise ModelLoadError(f"{model}: cannot read model file ({exc.strerror or exc})") from None
    items = expand(inputs, every_seconds=options.every_seconds)
    trust = options.trust if options.trust is not None else Trust.of()
    name, card_crop, monitor = _card_facts(model, trust, options)  # a model that does not load (or is refused) writes nothing
    manifest = {"model": str(model.resolve()), "model_sha256": sha256, "top_k": options.top_k,
                "every_seconds": options.every_seconds, "crop": options.crop}
    store = ResultStore(out, manifest, resume=options.resume)
    done = store.done_keys()
    todo = [item for item in items if item.key not in done]
    facts = ModelFacts(name, sha256)
    report = EngineReport()
    captured = None
    if todo:
        workers = replace(options, trust=replace(trust, state_dir=None) if trust is not None else None)
        job = Job(model, facts, workers, store, f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}")
        progress = Progress(len(todo), progress_to)
        try:
            report = engine(job, todo, progress)
        finally:
            progress.close()
    if options.capture is not None:  # also after a run with nothing left to classify: a killed capture pass
        captured = capture_rows(store, options.capture, sha256, options.crop or card_crop).as_dict()
    drift = drift_report(store, monitor) if monitor is not None else None
    return BatchSummary(**asdict(report), engine=options.engine, out=str(store.out), inputs=len(items),
                        skipped=len(items) - len(todo), rows=store.row_count(),
                        wall_s=time.perf_counter() - t0,
                        images_per_s=report.classified / report.work_s if report.work_s > 0 else 0.0,
                        model=facts.name, model_sha256=sha256, capture=captured, drift=drift)


def _card_facts(model: Path, trust: Trust | None, options: BatchOptions) -> tuple[str, str | None, Monitor | None]:
    """The card's name (else the file's stem), crop policy and, with ``options.drift``, the monitor that
    merges the workers' tallies, from loading the model here once: a model that does not load (or, with
    ``trust``, is not signed by a trusted key or is older than before; or, with drift, has no reference
    profile) fails now, with its own error, before any worker starts."""
    from edgecls.runtime.classifier import Classifier

    with Classifier.from_path(model, num_threads=1, trusted_keys=trust, monitor=worker_monitor(options.drift),
                              backend=options.backend, device=options.device) as clf:
        return clf.card.name or model.stem, clf.card.input.crop, clf.monitor


def _deployed(model: Path, options: BatchOptions) -> tuple[Path, BatchOptions]:
    """A folder's deploy.json: its file, and its engine and device where ``options`` leave them at the defaults
    (every worker runs one engine thread: the pool is the parallelism). A file: itself.

    Raises:
        ModelLoadError: a folder without a usable deploy.json.
    """
    from edgecls.runtime.deploy import require_deployment

    if not model.is_dir():
        return model, options
    deployment = require_deployment(model)
    backend, device = deployment.engine(options.backend, options.device)
    return model / deployment.file, replace(options, backend=backend, device=device)
