"""Classify archives: image folders, globs, lists and videos into Parquet, on this machine's cores
(``engine="local"``) or a Ray cluster (``engine="ray"``), resumable and exactly once.

    from edgecls.batch import BatchOptions, run
    summary = run("model_int8.tflite", ["photos/"], "results/", BatchOptions(workers=2))
    print(summary.classified, summary.images_per_s)

Needs one runtime extra and pyarrow (``edgecls[batch]``); the Ray engine needs ``edgecls[ray]``.
"""

from edgecls.batch.engines import engine_names, get_engine, register_engine
from edgecls.batch.inputs import Item, expand
from edgecls.batch.options import BatchOptions, BatchSummary
from edgecls.batch.run import run

__all__ = ["run", "BatchOptions", "BatchSummary", "Item", "expand", "engine_names", "get_engine", "register_engine"]
