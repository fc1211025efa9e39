"""Soak one model in one process: 20,000 classifications, a 5,000-frame stream and 2,000 live pushes after a
warm-up; prints RSS, open files and threads before and after as JSON (run by tests/project/test_no_leaks_over_long_runs.py and
benchmarks/reliability.py).

    python benchmarks/suite/soak.py MODEL
"""

import json
import os
import sys
import threading

import numpy as np

from edgecls.runtime import Classifier

FRAMES = [np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(8)]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def state() -> dict:
    return {"rss_mb": rss_mb(), "fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count()}


def source(n: int):
    for i in range(n):
        yield FRAMES[i % 8]


def work(clf, classifications: int, stream_frames: int, live_frames: int):
    for i in range(classifications):
        clf.classify(FRAMES[i % 8])
    with clf.stream(source(stream_frames)) as stream:
        streamed = sum(1 for _ in stream)
    results = []
    with clf.live(results.append) as session:
        for i in range(live_frames):
            session.classify_async(FRAMES[i % 8], float(i))
    return streamed, session.summary


def main(model: str) -> None:
    with Classifier.from_path(model) as clf:
        work(clf, 1000, 500, 500)  # warm-up: allocator pools, engine buffers, thread start-up
        before = state()
        streamed, live = work(clf, 20000, 5000, 2000)
        after = state()
    print(json.dumps({"before": before, "after": after, "streamed": streamed,
                      "live": [live.frames_read, live.classified + live.dropped]}))


if __name__ == "__main__":
    main(sys.argv[1])
