"""The Ray engine: Ray Data on a local Ray instance, or on a cluster (``ray_address``).

The items become a dataset of blocks (``unit_size`` rows); ``map_batches`` runs :class:`_Classify`, a
callable class that holds one :class:`Classifier` per actor (a fixed pool of ``workers`` actors, one
CPU each). Each actor writes its block's rows as one Parquet shard of the output, under a temporary
name renamed into place (the output must be a folder every node can write), and returns only their
counts, which the driver reads as the dataset streams. Ray's own Parquet sink is not used: its write
tasks started a Python worker process each beside the actors (on 2 cores, 20,000 digits ran at 0.15 of
the local engine's rate with it, against 0.47 with one writer at a time), and a file it had half
written when killed would be left for a resumed run to sort out; a shard named by its block is
replaced whole when Ray redoes the block. The model goes to the actors through Ray's object store, so
a worker node needs edgecls with a runtime extra, not the model file. Ray Data retries the blocks of an
actor that dies on a restarted actor; a small ledger actor counts those retries.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

from edgecls.batch.drift import with_tally, worker_monitor
from edgecls.batch.engines import EngineReport, Job
from edgecls.batch.inputs import Item
from edgecls.batch.options import BatchOptions
from edgecls.batch.output import commit_table
from edgecls.batch.progress import Progress
from edgecls.batch.rows import ModelFacts, RowMaker
from edgecls.runtime.engine_log import LOGGER_NAME, engine_output
from edgecls.runtime.errors import BackendUnavailableError, BatchError
from edgecls.runtime.regions import regions_from
from edgecls.runtime.signatures import verify_file

__all__ = ["run_ray", "import_ray"]

_ITEM_FIELDS = ("path", "frame", "time_s", "note", "boxes")


def import_ray() -> ModuleType:
    """``ray`` with Ray Data.

    Raises:
        BackendUnavailableError: Ray Data is not installed (names the extra ``ray``).
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise BackendUnavailableError("the Ray engine needs Ray Data, which is not installed: "
                                      "pip install 'edgecls[ray]'", extra="ray") from None
    return ray


class _Ledger:
    """Counts, across actors: blocks started (a block started twice was retried) and actors started, and
    when the first block started."""

    def __init__(self) -> None:
        self.starts: dict[int, int] = {}
        self.actors = 0
        self.first: float | None = None

    def actor_started(self) -> None:
        self.actors += 1

    def started(self, block: int) -> None:
        self.starts[block] = self.starts.get(block, 0) + 1
        if self.first is None:
            self.first = time.time()

    def counts(self) -> tuple[int, int, float | None]:
        """(blocks retried, actors started, when the first block started: ``time.time()``)."""
        return sum(n - 1 for n in self.starts.values()), self.actors, self.first


class _Classify:
    """What each actor runs: ``map_batches`` calls it with a block of items (a pyarrow Table); it commits
    the block's rows as one shard of the output (named by the block, so a block Ray redoes after a
    worker died replaces its own shard) and returns their counts."""

    def __init__(self, model: list[Any], suffix: str, facts: ModelFacts, options: BatchOptions, ledger: Any,
                 out: str, run_id: str) -> None:
        import ray

        from edgecls.runtime import Classifier

        logging.getLogger("edgecls").setLevel(logging.WARNING)
        folder = tempfile.mkdtemp(prefix="edgecls-ray-")
        path = Path(folder) / f"model{suffix}"
        path.write_bytes(ray.get(model[0]))  # the bytes, from the object store
        clf = Classifier.from_path(path, num_threads=1, trusted_keys=(),  # the bytes the driver checked
                                   monitor=worker_monitor(options.drift), backend=options.backend, device=options.device)
        self.maker = RowMaker(clf, facts, top_k=options.top_k,
                              batch_size=options.batch_size, crop=options.crop)
        try:  # loaded (or mapped, which outlives the name on POSIX): no file per actor left behind
            path.unlink()
            Path(folder).rmdir()
        except OSError:
            pass
        self.ledger, self.out, self.run_id = ledger, Path(out), run_id
        ledger.actor_started.remote()

    def __call__(self, block):
        import pyarrow as pa
        import ray

        columns = {name: block.column(name).to_pylist() for name in _ITEM_FIELDS}
        columns["boxes"] = [None if b is None else tuple(regions_from(json.loads(b))) for b in columns["boxes"]]
        items = [Item(*values) for values in zip(*(columns[n] for n in _ITEM_FIELDS), strict=True)]
        index = block.column("block")[0].as_py()
        ray.get(self.ledger.started.remote(index))  # waited for: a kill right after must not lose the count
        table = with_tally(self.maker(items), self.maker.classifier.monitor)
        commit_table(self.out, table, f"{self.run_id}-{index:06d}")
        errors = table.num_rows - table.column("error").null_count
        return pa.table({"items": [len(items)], "errors": [errors]})


class _ToLog(io.TextIOBase):
    """A text stream whose lines go to the ``edgecls.engine`` logger."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(LOGGER_NAME)
        self._pending = ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._logger.info("%s", line)
        return len(text)


@contextmanager
def _quiet_ray() -> Iterator[None]:
    """Ray's and Ray Data's log lines (execution plans, progress, notices), its core worker's native
    output and what it prints to standard output (``(raylet) A worker died ...``, which would corrupt
    ``--json``) kept off the user's terminal: they go to the ``edgecls.engine`` logger (``edgecls -v``
    shows them); Python log lines below ERROR are dropped. Failures still raise."""
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with engine_output(), redirect_stdout(_ToLog()):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _blocks(items: list[Item], size: int):
    import pyarrow as pa

    schema = pa.schema([("path", pa.string()), ("frame", pa.int64()), ("time_s", pa.float64()), ("note", pa.string()),
                        ("boxes", pa.string()), ("block", pa.int64())])
    for index, start in enumerate(range(0, len(items), size)):
        chunk = items[start:start + size]
        columns = {name: [getattr(i, name) for i in chunk] for name in _ITEM_FIELDS}
        columns["boxes"] = [None if i.boxes is None else json.dumps([r.to_dict() for r in i.boxes]) for i in chunk]
        yield pa.table({**columns, "block": [index] * len(chunk)}, schema=schema)


def run_ray(job: Job, todo: list[Item], progress: Progress) -> EngineReport:
    """Classify ``todo`` with Ray Data (a local Ray instance started and stopped here, or the cluster at
    ``job.options.ray_address``).

    Raises:
        BackendUnavailableError: Ray Data is not installed.
        BatchError: Ray could not start or reach the cluster, the job failed, or an ONNX model keeps its
            weights in other files.
        SignatureError: with trusted keys, the bytes sent to the actors are not the signed file's.
    """
    ray = import_ray()
    data = model_bytes(job.model_path)
    if job.options.trust is not None:  # the bytes the actors get are the bytes checked (they have no signature)
        verify_file(job.model_path, job.options.trust.keys, data=data)
    opts = job.options
    report = EngineReport()
    t0 = time.perf_counter()
    with _quiet_ray():
        connected_here = not ray.is_initialized()
        if connected_here:
            try:
                if opts.ray_address:
                    ray.init(address=opts.ray_address, log_to_driver=False, logging_level=logging.ERROR)
                else:
                    ray.init(num_cpus=opts.worker_count(), include_dashboard=False, log_to_driver=False,
                             logging_level=logging.ERROR)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
                where = f"the Ray cluster at {opts.ray_address}" if opts.ray_address else "a local Ray instance"
                raise BatchError(f"cannot start or reach {where} ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
        try:
            report.workers = opts.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            report.start_s = time.perf_counter() - t0
            _execute(ray, job, todo, progress, report, data)
        finally:
            if connected_here:
                ray.shutdown()
    return report


def model_bytes(path: Path) -> bytes:
    """The model file's bytes, for the actors.

    Raises:
        BatchError: an ONNX model that keeps its weights in other files (external data).
    """
    data = path.read_bytes()
    if path.suffix.lower() == ".onnx":
        from edgecls.runtime.backends.onnx_external import external_locations

        try:
            outside = external_locations(data)
        except ValueError:  # not a well-formed ONNX file: its load in the actors says so
            outside = []
        if outside:
            raise BatchError(f"{path}: keeps its weights in other files ({', '.join(outside[:3])}); the Ray engine "
                               "sends the actors one file's bytes: save the model with its weights inside, or use "
                               "the local engine")
    return data


def _execute(ray: ModuleType, job: Job, todo: list[Item], progress: Progress, report: EngineReport,
             data: bytes) -> None:
    import ray.data

    opts = job.options
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    ledger = ray.remote(num_cpus=0)(_Ledger).remote()
    model = ray.put(data)
    size = opts.unit_size(len(todo), report.workers)
    dataset = ray.data.from_arrow(list(_blocks(todo, size))).map_batches(
        _Classify, batch_size=size, batch_format="pyarrow", num_cpus=1, concurrency=report.workers,
        fn_constructor_kwargs={"model": [model], "suffix": job.model_path.suffix, "facts": job.facts,
                               "options": opts, "ledger": ledger, "out": str(job.store.out), "run_id": job.run_id})
    submitted = time.time()
    try:
        for counts in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            done = sum(counts.column("items").to_pylist())
            report.classified += done
            report.errors += sum(counts.column("errors").to_pylist())
            progress.update(done)
    except Exception as exc:  # a failed Ray job: one line; the shards committed are kept for resume
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise BatchError(f"the Ray job failed ({message}); the rows written so far are kept: run again with "
                           "resume") from None
    report.retried, actors, first = ray.get(ledger.counts.remote())
    report.start_s += max(0.0, (first or submitted) - submitted)  # the actors' start: processes, the model
    report.work_s = time.time() - (first or submitted)
    report.worker_restarts = max(0, actors - report.workers)
