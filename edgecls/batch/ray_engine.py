"""The Ray engine: Ray Data on a local Ray instance, or on a cluster (``ray_address``).

The items become a dataset of blocks of ``shard_size`` rows; ``map_batches`` runs :class:`_Classify`, a
callable class that holds one :class:`Classifier` per actor (a fixed pool of ``workers`` actors, one
CPU each), and Ray writes the rows as Parquet into a staging folder of the output, which the driver then
adopts (:meth:`ResultStore.adopt`: complete files only, rows already committed dropped). The model goes
to the actors through Ray's object store, so a worker node needs edgecls's runtime extra, not the file.
Ray Data retries the blocks of an actor that dies on a restarted one; a small ledger actor counts
those retries and the progress.
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

from edgecls.batch.engines import EngineReport, Job
from edgecls.batch.inputs import Item
from edgecls.batch.progress import Progress
from edgecls.batch.rows import ModelFacts, RowMaker
from edgecls.runtime.engine_log import LOGGER_NAME, engine_output
from edgecls.runtime.errors import BackendUnavailableError, EdgeclsError

__all__ = ["run_ray", "import_ray"]

_ITEM_FIELDS = ("path", "frame", "time_s", "note")


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
    """Counts, across actors: blocks started (a block started twice was retried), rows finished, actors."""

    def __init__(self) -> None:
        self.starts: dict[str, int] = {}
        self.finished: dict[str, int] = {}
        self.actors = 0
        self.first: float | None = None

    def actor_started(self) -> None:
        self.actors += 1

    def started(self, block: str) -> None:
        self.starts[block] = self.starts.get(block, 0) + 1
        if self.first is None:
            self.first = time.time()

    def done(self, block: str, rows: int) -> None:
        self.finished[block] = rows

    def counts(self) -> tuple[int, int, int, float | None]:
        """(rows finished, blocks retried, actors started, when the first block started: time.time())."""
        return sum(self.finished.values()), sum(n - 1 for n in self.starts.values()), self.actors, self.first


class _Classify:
    """What each actor runs: ``map_batches`` calls it with a block of items (a pyarrow Table)."""

    def __init__(self, model: list[Any], suffix: str, facts: ModelFacts, top_k: int, batch_size: int,
                 ledger: Any) -> None:
        import ray

        from edgecls.runtime import Classifier

        logging.getLogger("edgecls").setLevel(logging.WARNING)
        folder = tempfile.mkdtemp(prefix="edgecls-ray-")
        path = Path(folder) / f"model{suffix}"
        path.write_bytes(ray.get(model[0]))  # the bytes, from the object store
        self.maker = RowMaker(Classifier.from_path(path, num_threads=1), facts, top_k=top_k, batch_size=batch_size)
        self.ledger = ledger
        ledger.actor_started.remote()

    def __call__(self, block):
        columns = {name: block.column(name).to_pylist() for name in _ITEM_FIELDS}
        items = [Item(*values) for values in zip(*(columns[n] for n in _ITEM_FIELDS), strict=True)]
        import ray

        key = items[0].key if items else ""
        ray.get(self.ledger.started.remote(key))  # waited for: a kill right after must not lose the count
        table = self.maker(items)
        self.ledger.done.remote(key, table.num_rows)
        return table


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

    schema = pa.schema([("path", pa.string()), ("frame", pa.int64()), ("time_s", pa.float64()), ("note", pa.string())])
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        yield pa.table({name: [getattr(i, name) for i in chunk] for name in _ITEM_FIELDS}, schema=schema)


def run_ray(job: Job, todo: list[Item], progress: Progress) -> EngineReport:
    """Classify ``todo`` with Ray Data (a local Ray instance started and stopped here, or the cluster at
    ``job.options.ray_address``).

    Raises:
        BackendUnavailableError: Ray Data is not installed.
        EdgeclsError: Ray could not start or reach the cluster, or the job failed.
    """
    ray = import_ray()
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
                raise EdgeclsError(f"cannot start or reach {where} ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None
        try:
            report.workers = opts.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            report.start_s = time.perf_counter() - t0
            _execute(ray, job, todo, progress, report)
        finally:
            if connected_here:
                ray.shutdown()
    return report


def _execute(ray: ModuleType, job: Job, todo: list[Item], progress: Progress, report: EngineReport) -> None:
    import ray.data

    opts = job.options
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    ledger = ray.remote(num_cpus=0)(_Ledger).remote()
    model = ray.put(job.model_path.read_bytes())
    staging = job.store.staging(job.run_id)
    size = opts.unit_size(len(todo), report.workers)
    dataset = ray.data.from_arrow(list(_blocks(todo, size))).map_batches(
        _Classify, batch_size=size, batch_format="pyarrow", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=report.workers),
        fn_constructor_kwargs={"model": [model], "suffix": job.model_path.suffix, "facts": job.facts,
                               "top_k": opts.top_k, "batch_size": opts.batch_size, "ledger": ledger})
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            try:
                progress.set(ray.get(ledger.counts.remote(), timeout=5)[0])
            except Exception:  # progress is best effort; the job's own errors surface below
                pass

    watcher = threading.Thread(target=watch, name="edgecls-ray-progress", daemon=True)
    submitted = time.time()
    watcher.start()
    try:
        try:
            dataset.write_parquet(str(staging), ray_remote_args={"num_cpus": 0})
        except Exception as exc:  # a failed Ray job: one line, the staged rows kept for resume
            raise EdgeclsError(f"the Ray job failed ({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}); "
                               "rows written so far are kept: run again with resume") from None
    finally:
        stop.set()
        watcher.join()
    finished, report.retried, actors, first = ray.get(ledger.counts.remote())
    report.start_s += max(0.0, (first or submitted) - submitted)  # the actors' start: processes, the model
    progress.set(finished)
    report.worker_restarts = max(0, actors - report.workers)
    committed, report.duplicates_dropped = job.store.adopt()
    report.classified = committed
    report.errors = _errors(job, staging)


def _errors(job: Job, staging: Path) -> int:
    """Error rows among the shards this run committed (their names carry the run id)."""
    from edgecls.batch.output import pyarrow_parquet

    pq = pyarrow_parquet()
    errors = 0
    for part in job.store.parts():
        if part.name.startswith(f"part-{job.run_id}-"):
            column = pq.read_table(part, columns=["error"]).column("error")
            errors += len(column) - column.null_count
    return errors
