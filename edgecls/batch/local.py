"""The local engine: a pool of worker processes on this machine, one :class:`Classifier` each.

Each worker loads the model once (one engine thread: the pool is the parallelism), takes a shard of
items, decodes and classifies them, and commits the shard's rows itself (a temporary file renamed into
place), so the driver never holds results and a kill loses at most the shards in flight. Workers are
spawned, not forked (an engine's threads do not survive a fork). At most two shards per worker are
queued at a time.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from edgecls.batch.drift import with_tally, worker_monitor
from edgecls.batch.engines import EngineReport, Job
from edgecls.batch.inputs import Item
from edgecls.batch.options import BatchOptions
from edgecls.batch.output import commit_table
from edgecls.batch.progress import Progress
from edgecls.batch.rows import ModelFacts, RowMaker
from edgecls.runtime.errors import BatchError

__all__ = ["run_local"]

_maker: RowMaker | None = None


def _start_worker(model_path: str, facts: ModelFacts, options: BatchOptions) -> None:
    import logging
    import signal

    from edgecls.runtime import Classifier

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the driver stops the workers

    logging.getLogger("edgecls").setLevel(logging.WARNING)
    global _maker
    clf = Classifier.from_path(model_path, num_threads=1, trusted_keys=options.trust,  # checked again: its own read
                               monitor=worker_monitor(options.drift), backend=options.backend, device=options.device)
    _maker = RowMaker(clf, facts, top_k=options.top_k, batch_size=options.batch_size, crop=options.crop)


def _ready() -> bool:
    return _maker is not None


def _shard(out: str, name: str, items: list[Item]) -> tuple[int, int]:
    """Classify and commit one shard; (items, items that could not be read: a row each)."""
    table = with_tally(_maker(items), _maker.classifier.monitor)
    commit_table(Path(out), table, name)
    return len(items), table.num_rows - table.column("error").null_count


def run_local(job: Job, todo: list[Item], progress: Progress) -> EngineReport:
    """Classify ``todo`` with a process pool of ``job.options.worker_count()`` workers.

    Raises:
        BatchError: a worker could not load the model, or died (the shards finished are kept: run
            again with resume).
    """
    opts = job.options
    workers = min(opts.worker_count(), len(todo))
    report = EngineReport(workers=workers)
    size = opts.unit_size(len(todo), workers)
    shards = [(f"{job.run_id}-{i:06d}", todo[start:start + size]) for i, start in enumerate(range(0, len(todo), size))]
    t0 = time.perf_counter()
    others = set(multiprocessing.active_children())  # the caller's own children are not ours to stop
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(str(job.model_path), job.facts, opts))
    clean = False
    try:
        try:
            for f in [pool.submit(_ready) for _ in range(workers)]:
                f.result()
        except BrokenProcessPool:
            raise BatchError(f"{job.model_path}: the batch worker processes exited while starting: the model "
                               "does not load in a fresh process, or the calling script cannot be imported by one "
                               "(put the call under if __name__ == '__main__':)") from None
        started = time.perf_counter()
        report.start_s = started - t0
        queue = iter(shards)
        running: dict[Future, int] = {}
        for name, items in queue:
            running[pool.submit(_shard, str(job.store.out), name, items)] = len(items)
            if len(running) >= 2 * workers:
                break
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                running.pop(f)
                try:
                    done, errors = f.result()
                except BrokenProcessPool:
                    raise BatchError("a batch worker process died (killed, or the engine crashed on an input); "
                                       "the shards already written are kept: run again with resume to classify "
                                       "the rest") from None
                report.classified += done
                report.errors += errors
                progress.update(done)
                nxt = next(queue, None)
                if nxt is not None:
                    running[pool.submit(_shard, str(job.store.out), nxt[0], nxt[1])] = len(nxt[1])
        report.work_s = time.perf_counter() - started
        clean = True
    finally:
        if not clean:  # interrupted or failed: stop the workers now, not after their shards
            for child in set(multiprocessing.active_children()) - others:
                child.terminate()
        pool.shutdown(wait=clean, cancel_futures=not clean)
    return report
