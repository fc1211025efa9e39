"""Drift over a batch run: each worker's monitor tallies its shard (histogram counts against the model's
reference profile, O(bins)), the tally is committed inside the shard's Parquet file (its schema metadata,
so a shard and its tally are written together, and a resumed run neither loses nor counts one twice), and
the driver merges every shard's tally in OUT into one report of the whole archive: ``OUT/_drift.json``
and ``BatchSummary.drift``.

A batch is one window: its images are not a camera's consecutive frames, so the report compares all of
them with the reference (``MonitorOptions.window`` does not apply; its thresholds, signals and profile do).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from edgecls.batch.output import ResultStore, pyarrow_parquet
from edgecls.runtime.errors import OptionError, OutputError
from edgecls.runtime.files import write_whole
from edgecls.runtime.monitor import Monitor, MonitorOptions

__all__ = ["DRIFT_FILE", "TALLY_KEY", "worker_monitor", "with_tally", "drift_report"]

DRIFT_FILE = "_drift.json"
TALLY_KEY = b"edgecls.drift"
_NEVER = 2**62
"""A worker's window: its monitor never closes one (the driver does, over the whole run)."""


def worker_monitor(drift: MonitorOptions | bool | None) -> MonitorOptions | None:
    """The monitor options each worker (and the driver) loads its classifier with: ``drift``'s (``True``:
    the defaults, reading every image), with a window that never closes by itself and no callback.

    Raises:
        OptionError: ``drift`` is neither MonitorOptions nor a bool.
    """
    if drift is None or drift is False:
        return None
    if drift is True:
        drift = MonitorOptions(every=1)
    if not isinstance(drift, MonitorOptions):
        raise OptionError(f"drift takes MonitorOptions or True, got {type(drift).__name__}", options=("drift",))
    return replace(drift, window=_NEVER, on_change=None)


def with_tally(table, monitor: Monitor | None):
    """``table`` (a shard's rows) carrying the tally of the images its classifier's ``monitor`` read since
    the last shard; ``table`` itself without a monitor."""
    if monitor is None:
        return table
    return table.replace_schema_metadata({TALLY_KEY: json.dumps(monitor.take()).encode()})


def drift_report(store: ResultStore, monitor: Monitor) -> dict[str, Any]:
    """Merge the tallies of every shard in ``store`` into ``monitor`` and close its window: the report
    (:meth:`DriftReport.to_dict`, with ``shards`` and ``shards_without``: the shards with no tally of this
    reference, e.g. from a run without drift that this one resumed), also written to ``OUT/_drift.json``.
    With no image tallied, ``state`` is None and no signal is reported.

    Raises:
        OutputError: the report cannot be written.
    """
    pq = pyarrow_parquet()
    parts = store.parts()
    without = 0
    for part in parts:
        raw = (pq.read_schema(part).metadata or {}).get(TALLY_KEY)
        try:
            tally = json.loads(raw) if raw is not None else None
        except (ValueError, RecursionError):
            tally = None
        if tally is None or not monitor.absorb(tally):
            without += 1
    report = monitor.close()
    data = report.to_dict() if report is not None else {"images": 0, "state": None, "signals": {}}
    data.pop("window", None)
    data.pop("changed", None)
    data.update(reference_images=monitor.profile.images, shards=len(parts), shards_without=without)
    path = store.out / DRIFT_FILE
    try:
        write_whole(path, json.dumps(data, indent=1).encode())
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the drift report ({exc.strerror or exc})") from exc
    return data
