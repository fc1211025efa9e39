"""Soak: 20,000 classifications and a 5,000-frame stream in one process leak no memory, threads or files."""

import json
import subprocess
import sys

import pytest

SOAK = """
import json, os, sys, threading
import numpy as np
from edgecls.runtime import Classifier

def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024

def state():
    return {"rss_mb": rss_mb(), "fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count()}

frames = [np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(8)]

def source(n):
    for i in range(n):
        yield frames[i % 8]

def work(clf, classifications, stream_frames, live_frames):
    for i in range(classifications):
        clf.classify(frames[i % 8])
    with clf.stream(source(stream_frames)) as stream:
        streamed = sum(1 for _ in stream)
    results = []
    with clf.live(results.append) as session:
        for i in range(live_frames):
            session.classify_async(frames[i % 8], float(i))
    return streamed, session.summary

with Classifier.from_path(sys.argv[1]) as clf:
    work(clf, 1000, 500, 500)  # warm-up: allocator pools, engine buffers, thread start-up
    before = state()
    streamed, live = work(clf, 20000, 5000, 2000)
    after = state()
print(json.dumps({"before": before, "after": after, "streamed": streamed,
                  "live": [live.frames_read, live.classified + live.dropped]}))
"""


@pytest.mark.parametrize("name", ["tflite_int8", "onnx_fp32"])
def test_soak_has_no_leaks(seed_exports, name):
    _, paths, _ = seed_exports
    proc = subprocess.run([sys.executable, "-c", SOAK, str(paths[name])], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    before, after = out["before"], out["after"]
    assert out["streamed"] == 5000 and out["live"] == [2000, 2000]
    assert after["rss_mb"] - before["rss_mb"] < 5, out
    assert (after["fds"], after["threads"]) == (before["fds"], before["threads"]), out
