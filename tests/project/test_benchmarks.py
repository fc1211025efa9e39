"""The benchmark suite's own code: the stream-throughput probe and the results page (no timing asserts)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.suite.streaming import stream_throughput, write_video
from edgecls.runtime import Classifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_stream_throughput_measures_every_way_through_the_video(tmp_path, int8_model):
    from edgecls.bench.measure import camera_frames

    video = write_video(tmp_path / "v.avi", camera_frames((160, 120)), 24)
    with Classifier.from_path(int8_model, num_threads=1) as clf:
        result = stream_throughput(clf, video, repeats=1)
    assert result["frames"] == 24
    assert all(result[k] > 0 for k in ("decode_ms", "classify_ms", "sequential_fps", "stream_fps", "bound_fps"))
    assert result["rounds"] == 1
    assert result["bound_fps"] == pytest.approx(1000 / max(result["decode_ms"], result["classify_ms"]))
    assert result["over_bound"] == pytest.approx(result["stream_fps"] / result["bound_fps"])
    assert result["over_sequential"] == pytest.approx(result["stream_fps"] / result["sequential_fps"])


def test_results_page_shows_each_target_direction_and_the_spread():
    from benchmarks import run

    spread = {"min": 0.48, "median": 0.5, "max": 0.6, "range_pct": 24.0, "stable": False}
    page = run.render({"date": "d", "machine": {"cores": 2, "processor": "x", "python": "3"}, "threads": 2,
                       "runs": 1, "notes": [],
                       "ratios": [run.ratio("a / b", 0.5, 0.7, {}) | {"spread": spread, "rounds": 20, "processes": 4},
                                  run.ratio("stream / bound", 0.95, 0.9, {}, higher_is_better=True),
                                  run.ratio("stream / sequential", 1.1, 1.2, {}, higher_is_better=True)]})
    assert "| 1 | a / b | 0.500 | 0.480 / 0.500 / 0.600 (24.0 %) **unstable** | 20 (4) | ≤ 0.7 | yes |" in page
    assert "| 2 | stream / bound | 0.950 | one measurement | 1 (1) | ≥ 0.9 | yes |" in page
    assert "| 3 | stream / sequential | 1.100 | one measurement | 1 (1) | ≥ 1.2 | NO |" in page


def test_two_runs_compare_ratio_by_ratio():
    from benchmarks import run

    a = {"ratios": [run.ratio("x", 1.0, 2, {}), run.ratio("y", 0.5, 1, {})]}
    b = {"ratios": [run.ratio("x", 1.04, 2, {}), run.ratio("y", 0.53, 1, {})]}
    page = run.compare(a, b, ["a.json", "b.json"])
    assert "| x | 1.000 | 1.040 | +4.0 % | yes |" in page
    assert "| y | 0.500 | 0.530 | +6.0 % | NO |" in page
    assert "1 of 2 ratios within 5 %" in page


def _attempts(*rounds_per_call):
    calls = iter(rounds_per_call)
    return lambda: [{"a": v, "b": 1.0} for v in next(calls)]


def test_a_ratio_pools_rounds_of_several_processes_and_reruns_when_they_disagree():
    from benchmarks.suite.rounds import over_processes

    def ratio(r):
        return r["a"] / r["b"]

    stable = over_processes(_attempts([1.0, 1.02], [1.01, 0.99]), ratio, processes=2)
    assert (stable["attempts"], stable["processes"], stable["rounds"]) == (1, 2, 4)
    assert stable["value"] == pytest.approx(1.005) and stable["spread"]["stable"]
    # first attempt 30 % apart, the second agrees: the second is kept
    rerun = over_processes(_attempts([1.0, 1.3], [1.0, 1.0], [2.0, 2.02], [2.01, 2.0]), ratio, processes=2)
    assert (rerun["attempts"], rerun["processes"], rerun["rounds"]) == (2, 4, 4)
    assert rerun["value"] == pytest.approx(2.005) and rerun["spread"]["stable"]
    # both attempts disagree: all rounds pooled, flagged
    flagged = over_processes(_attempts([1.0, 1.3], [1.0, 1.0], [1.0, 1.5], [1.0, 1.0]), ratio, processes=2)
    assert (flagged["attempts"], flagged["rounds"]) == (2, 8)
    assert flagged["spread"]["stable"] is False and flagged["spread"]["max"] == 1.5
    assert flagged["figures"]["a"] == 1.0


def test_latency_probes_run_in_a_runtime_only_process(int8_model, seed_exports):
    """benchmarks.suite.child: the variants interleave in rounds, in a fresh process holding no TensorFlow or Keras
    and no engine but the probe's own (an ONNX probe holds onnxruntime only)."""
    from benchmarks.suite.rounds import child_rounds

    spec = {"probe": "variants", "threads": 1, "rounds": 3, "per_round": 4, "warmup": 2,
            "variants": {"edgecls": {"kind": "classify", "model": str(int8_model)},
                         "raw": {"kind": "raw", "model": str(int8_model)}}}
    rounds = child_rounds(spec, engines=("ai_edge_litert",))
    assert len(rounds) == 3 and all(set(r) == {"edgecls", "raw"} and min(r.values()) > 0 for r in rounds)
    onnx = str(seed_exports[1]["onnx_fp32"])
    spec["variants"] = {"fp32": {"kind": "raw", "model": onnx}}
    assert len(child_rounds(spec, engines=("onnxruntime",))) == 3
    with pytest.raises(RuntimeError, match=r"not runtime-only.*onnxruntime"):
        child_rounds(spec, engines=("ai_edge_litert",))


MEASURE = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])  # the checkout's root, as `python -m benchmarks.export_memory` has it
from benchmarks import export_memory
work = Path(sys.argv[3])
from benchmarks.suite.checkout import package_view
view = package_view(Path(sys.argv[1]), work)
print(json.dumps(export_memory.measure(Path(sys.argv[2]), work, "tflite", view)))
"""


def test_export_memory_measures_a_checkout_in_its_own_process(seed_h5, digits, tmp_path):
    """benchmarks.export_memory's machinery on the small seed model, from a small parent process as the script
    runs it: a package view of a checkout, one export process, its peak RSS from wait4 agreeing with the VmHWM
    the export itself reports."""
    import json
    import subprocess

    from benchmarks import export_memory
    from edgecls import realdata

    images, labels = digits
    realdata.write_digits(tmp_path / "calib", images[:20], labels[:20])
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", MEASURE, str(root), str(seed_h5), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["exit"] == 0 and set(row["top1_agreement"]) == {"seed_fp32.tflite", "seed_int8.tflite"}
    assert abs(row["peak_rss_mb"] - row["report_peak_rss_mb"]) <= 0.05 * row["peak_rss_mb"]
    page = export_memory.render({"date": "d", "before": "x", "rows": [{"config": "TFLite only", "version": "before",
                                                                        **row}]})
    assert f"| TFLite only | before | {row['peak_rss_mb']} |" in page and "Before: x" in page


def test_frame_share_runs_the_runtime_of_a_commit_beside_this_one(seed_exports, tmp_path):
    """benchmarks.frame_share's machinery on the seed CNN: ``revision_view`` of HEAD puts that commit's package
    first, the probe (run as the suite runs it) imports the runtime from there, and times both sizes."""
    import json
    import subprocess

    from benchmarks import frame_share
    from benchmarks.suite.checkout import revision_view, side_envs

    view = revision_view("HEAD", tmp_path / "view")
    env = side_envs(view)["before"]
    spec = json.dumps({"model": str(seed_exports[1]["tflite_int8"]), "calls": 25})
    done = subprocess.run([sys.executable, frame_share.__file__, "--probe", spec], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["runtime"]).is_relative_to(view)  # the commit's package, not this checkout's
    assert min(result[k] for k in ("raw", "640x480", "1920x1080")) > 0 and result["categories"]
    assert result["preprocess"]["alone"] > 0 and result["preprocess"]["in_classify"] > 0


def test_regions_suite_runs_the_runtime_of_a_commit_beside_this_one(seed_exports, tmp_path):
    """benchmarks.regions_suite's probe, run as the suite runs it for ``--before``: with ``revision_view`` of HEAD
    first on ``PYTHONPATH`` it imports that commit's runtime, times every variant and answers each box."""
    import json
    import subprocess

    import cv2

    from benchmarks import regions_suite
    from benchmarks.suite.checkout import revision_view, side_envs

    frame = np.zeros((360, 640, 3), np.uint8)
    boxes = [[10, 10, 90, 120], [300, 100, 340, 130], [500, 200, 640, 360]]
    for (x0, y0, x1, y1), image in zip(boxes, seed_exports[2][0], strict=False):
        frame[y0:y1, x0:x1] = cv2.resize(image[:, :, ::-1], (x1 - x0, y1 - y0))
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    view = revision_view("HEAD", tmp_path / "view")
    env = side_envs(view)["before"]
    spec = json.dumps({"model": str(seed_exports[1]["tflite_int8"]), "frame": str(tmp_path / "frame.png"),
                       "boxes": boxes, "warmup": 2, "per_round": 5})
    done = subprocess.run([sys.executable, regions_suite.__file__, "--probe", spec], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["runtime"]).is_relative_to(view)  # the commit's package, not this checkout's
    assert set(result["ms"]) == {"classify_regions", "crop + 8 classify", "8 raw invokes"}
    assert min(result["ms"].values()) > 0 and len(result["labels"]) == len(boxes) and not result["modules"]


SUITES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py")
                if p.stem != "__init__")


def test_every_suite_is_a_module_listed_with_its_command_and_latest_result():
    root = Path(__file__).resolve().parents[2]
    readme = (root / "benchmarks" / "README.md").read_text()
    for name in SUITES:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"benchmarks/README.md does not list {name}"
        assert f"`python -m benchmarks.{name}`" in row
        result = row.rsplit("](", 1)[1].split(")", 1)[0]
        assert (root / "benchmarks" / result).is_file(), (name, result)
    for path in [*(root / "benchmarks").glob("*.py"), *(root / "benchmarks" / "suite").glob("*.py")]:
        assert "sys.path.insert" not in path.read_text() and "sys.path.append" not in path.read_text(), path


@pytest.mark.parametrize("name", SUITES)
def test_each_suite_runs_as_a_module(name, tmp_path):
    import subprocess

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
