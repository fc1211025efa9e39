"""Soak: 20,000 classifications and a 5,000-frame stream in one process leak no memory, threads or files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "suite" / "soak.py"


@pytest.mark.parametrize("name", ["tflite_int8", "onnx_fp32"])
def test_soak_has_no_leaks(seed_exports, name):
    _, paths, _ = seed_exports
    proc = subprocess.run([sys.executable, str(SOAK), str(paths[name])], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    before, after = out["before"], out["after"]
    assert out["streamed"] == 5000 and out["live"] == [2000, 2000]
    assert after["rss_mb"] - before["rss_mb"] < 5, out
    assert (after["fds"], after["threads"]) == (before["fds"], before["threads"]), out


MILLION = """
import json, sys
import numpy as np
from edgecls.runtime import Classifier

def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024

frame = np.zeros((8, 8, 3), np.uint8)

def source(n):
    for _ in range(n):
        yield frame

checkpoints = []
with Classifier.from_path(sys.argv[1], num_threads=1) as clf:
    with clf.stream(source(1_000_000)) as stream:
        for result in stream:
            if result.index % 100_000 == 99_999:
                checkpoints.append(rss_mb())
print(json.dumps({"rss_mb": checkpoints, "classified": stream.summary.classified,
                  "p50": stream.summary.p50_latency_ms, "p99": stream.summary.p99_latency_ms}))
"""


@pytest.mark.slow
def test_million_frame_stream_costs_constant_memory(color_model):
    """A stream's bookkeeping is O(1) in frames: 1,000,000 frames of a tiny model (about 10 s per 100k)."""
    proc = subprocess.run([sys.executable, "-c", MILLION, str(color_model)], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = out["rss_mb"]
    assert out["classified"] == 1_000_000 and len(rss) == 10
    # After the first 100k frames (warm-up), 900k more: growth under 2 MB, i.e. < 2.3 bytes a frame
    # (a latency list alone would grow by ~32 MB).
    assert rss[-1] - rss[0] < 2.0, rss
    assert 0 < out["p50"] <= out["p99"]


REGIONS = """
import json, sys
import numpy as np
from edgecls.runtime import Classifier
from edgecls.runtime.testing import FakeBackend, by_brightness

def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024

frame = np.zeros((120, 160, 3), np.uint8)
boxes = [(10, 10, 60, 60), (50, 20, 150, 110), (0, 0, 8, 8), (500, 0, 600, 50)]  # the last outside: skipped
detections = sys.argv[1]
with open(detections, "w") as out:
    for i in range(int(sys.argv[2])):
        out.write(json.dumps({"frame": i, "boxes": boxes}) + "\\n")
checkpoints = []
with Classifier.from_backend(FakeBackend(["dark", "bright"], scores=by_brightness(2), size=(16, 16))) as clf:
    frames = (frame for _ in range(int(sys.argv[2])))
    with clf.stream(frames, regions=detections) as stream:
        for result in stream:
            assert len(result.regions) == 4
            if result.index % 20_000 == 19_999:
                checkpoints.append(rss_mb())
print(json.dumps({"rss_mb": checkpoints, "classified": stream.summary.classified}))
"""


def test_a_stream_of_regions_from_a_detector_file_costs_constant_memory(tmp_path):
    """100,000 frames with four boxes each, read from a 100,000-line detections file one line ahead: after
    the first 20,000 frames, memory grows by under 2 MB (20 bytes a frame)."""
    proc = subprocess.run([sys.executable, "-c", REGIONS, str(tmp_path / "detections.jsonl"), "100000"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = out["rss_mb"]
    assert out["classified"] == 100_000 and len(rss) == 5
    assert rss[-1] - rss[0] < 2.0, rss
