"""Our share of a frame, before and after a change, side by side: ``classify`` of a camera frame against the raw
engine call on MobileNetV2-224 int8 ``.tflite`` (LiteRT, 2 threads), at 640×480 and 1920×1080, and against
MediaPipe Tasks' ImageClassifier on the same file and frames; and the bytes one ``classify`` allocates.

Each round runs three fresh processes in turn: the runtime as it was at ``--before`` (that commit's package,
taken with ``git archive``, first on ``PYTHONPATH``), the runtime of this checkout, and MediaPipe (its own
virtual environment, ``tests/setup_mediapipe.sh``). In an edgecls process the variants (raw call, 640×480,
1080p) alternate in blocks of 25 calls; the frames rotate over 16 so each is cold in the cache as a camera's
would be. Then the input of a 640×480 frame is timed inside ``classify`` and on its own. In the first two
rounds' processes ``tracemalloc`` then counts what one ``classify`` allocates at its peak (the most over 40
calls after a warm-up) and what 2,000 calls leave held after the first 2,000.

    python -m benchmarks.frame_share [--before 0bbf424] [--rounds 15] [--calls 300]
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.suite.checkout import revision_view, side_envs
from benchmarks.suite.probes import mediapipe_rounds
from benchmarks.suite.publish import RESULTS, ROOT, publish
from benchmarks.suite.timing import probe_cli, run_json
from edgecls.bench.measure import spread_of

THREADS = 2
BLOCK = 25
SIZES = {"640x480": (640, 480), "1920x1080": (1920, 1080)}
MEDIAPIPE = ROOT / ".cache" / "mediapipe-venv" / "bin" / "python"


def probe(spec: dict) -> dict:
    """In a fresh process: medians of the raw call and of ``classify`` per size; then the allocations."""
    import edgecls.runtime
    from edgecls.bench.measure import camera_frames
    from edgecls.runtime import Classifier

    clf = Classifier.from_path(spec["model"], num_threads=THREADS)
    x = clf.preprocess(np.zeros((224, 224, 3), np.uint8))[None]
    frames = {name: camera_frames(size, count=16) for name, size in SIZES.items()}
    calls = {"raw": lambda i: clf.backend.run(x)}
    calls |= {name: (lambda i, f=f: clf.classify(f[i % len(f)])) for name, f in frames.items()}
    for call in calls.values():
        for i in range(20):
            call(i)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for start in range(0, spec["calls"], BLOCK):
        for name, call in calls.items():
            for i in range(start, start + BLOCK):
                t0 = time.perf_counter()
                call(i)
                times[name].append((time.perf_counter() - t0) * 1e3)
    result = {name: statistics.median(ms) for name, ms in times.items()}
    result["preprocess"] = _preprocess_ms(clf, frames["640x480"], spec["calls"])
    if spec.get("allocations"):
        result["allocations"] = {name: _allocations(clf, f) for name, f in frames.items()}
    result["categories"] = [c.label for c in clf.classify(frames["640x480"][0]).categories]
    result["runtime"] = edgecls.runtime.__file__  # which version ran
    clf.close()
    return result


def _preprocess_ms(clf, frames: list[np.ndarray], calls: int) -> dict:
    """Median ms of making the input of a 640×480 frame: inside ``classify`` (its ``preprocess_ms``, right after
    the previous frame's engine call) and on its own (``into`` a buffer, frame after frame, no engine call)."""
    from edgecls.runtime.images import to_pixels

    pre, slot = clf.preprocessor, clf.preprocessor.buffer(1)[0]
    inside = [clf.classify(frames[i % len(frames)]).timings.preprocess_ms for i in range(calls)]
    alone = []
    for i in range(calls):
        t0 = time.perf_counter()
        pre.into(to_pixels(frames[i % len(frames)], target=pre.target), slot)
        alone.append((time.perf_counter() - t0) * 1e3)
    return {"in_classify": statistics.median(inside), "alone": statistics.median(alone)}


def _allocations(clf, frames: list[np.ndarray]) -> dict:
    """Bytes ``tracemalloc`` sees: the most one ``classify`` holds at once beyond what was held before it
    (over 40 calls after a warm-up), and what 2,000 calls after the first 2,000 leave allocated (Python's
    free lists fill during the first)."""
    import tracemalloc

    tracemalloc.start()
    for i in range(20):
        clf.classify(frames[i % len(frames)])
    peaks = []
    for i in range(40):
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        clf.classify(frames[i % len(frames)])
        peaks.append(tracemalloc.get_traced_memory()[1] - before)
    held = []
    for _ in range(2):
        for i in range(2000):
            clf.classify(frames[i % len(frames)])
        held.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    return {"peak_bytes_per_call": max(peaks), "left_by_2000_more_calls": held[1] - held[0]}


def model(work: Path) -> Path:
    """MobileNetV2-224 (weights=None, BatchNorm statistics from real images) exported to int8 ``.tflite``."""
    import keras

    from edgecls import realdata
    from edgecls.converters import export

    keras.utils.set_random_seed(0)
    images = realdata.digits_rgb(224)[0][:96]
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
    realdata.warm_batchnorm(mobilenet, images[:32] / 127.5 - 1)
    mobilenet.save(work / "mobilenetv2.keras")
    report = export(work / "mobilenetv2.keras", work / "exported", formats=["tflite"], quantize=["int8"],
                    calibration=images[:64], pixels="symmetric", name="mobilenetv2", min_agreement=0.0)
    return Path(report.files[0].path)


def measure(path: Path, before: Path, rounds: int, calls: int) -> dict:
    """Per round: the runtime before, the runtime now (order alternating) and MediaPipe, fresh processes."""
    from edgecls.bench.measure import camera_frames

    spec = {"model": str(path), "calls": calls}
    env = side_envs(before)
    frames = path.parent / "frames.npz"
    np.savez(frames, frames=np.stack([f[:, :, ::-1] for f in camera_frames(SIZES["640x480"], count=16)]))
    runs: dict[str, list[dict]] = {"before": [], "after": [], "mediapipe": []}
    for r in range(rounds):
        for side in ("before", "after") if r % 2 == 0 else ("after", "before"):
            # run as a script: ``-m`` would put the working folder, and its ``edgecls``, before PYTHONPATH
            argv = [sys.executable, __file__, "--probe", json.dumps(spec | {"allocations": r < 2})]
            runs[side].append(run_json(argv, env=env[side]))
        theirs = mediapipe_rounds(MEDIAPIPE, path, frames, 1, calls)
        runs["mediapipe"].append(theirs["rounds"][0] | {"version": theirs["mediapipe"]})
    return {"runs": runs, "summary": {side: _summary(runs[side], runs["mediapipe"]) for side in ("before", "after")}}


def _summary(runs: list[dict], mediapipe: list[dict]) -> dict:
    out = {}
    for name in SIZES:
        out[name] = {"ratio": spread_of([r[name] / r["raw"] for r in runs]),
                     "overhead_ms": spread_of([r[name] - r["raw"] for r in runs]),
                     "ms": statistics.median(r[name] for r in runs),
                     **{figure: max(r["allocations"][name][figure] for r in runs if "allocations" in r)
                        for figure in ("peak_bytes_per_call", "left_by_2000_more_calls")}}
    out["raw_ms"] = statistics.median(r["raw"] for r in runs)
    out["preprocess"] = {k: spread_of([r["preprocess"][k] for r in runs]) for k in ("in_classify", "alone")}
    out["mediapipe"] = spread_of([r["640x480"] / m["mediapipe"] for r, m in zip(runs, mediapipe, strict=True)])
    return out


def page(result: dict, before: str) -> str:
    s, mp = result["summary"], result["runs"]["mediapipe"]

    def cell(fig: dict, digits: int = 3) -> str:
        return f"{fig['median']:.{digits}f} ({fig['min']:.{digits}f}–{fig['max']:.{digits}f})"

    rows = [("end to end / raw call, 640×480 (target ≤ 1.10)", lambda x: cell(x["640x480"]["ratio"])),
            ("end to end / raw call, 1920×1080 (target ≤ 1.25)", lambda x: cell(x["1920x1080"]["ratio"])),
            ("our ms per frame, 640×480", lambda x: cell(x["640x480"]["overhead_ms"])),
            ("our ms per frame, 1920×1080", lambda x: cell(x["1920x1080"]["overhead_ms"])),
            ("edgecls / MediaPipe, 640×480 (target ≤ 0.45)", lambda x: cell(x["mediapipe"])),
            ("ms making the input of a 640×480 frame, in `classify`", lambda x: cell(x["preprocess"]["in_classify"])),
            ("the same on its own (no engine call between frames)", lambda x: cell(x["preprocess"]["alone"])),
            ("bytes one `classify` holds at its peak, 640×480", lambda x: f"{x['640x480']['peak_bytes_per_call']:,}"),
            ("bytes one `classify` holds at its peak, 1920×1080",
             lambda x: f"{x['1920x1080']['peak_bytes_per_call']:,}"),
            ("bytes 2,000 more calls leave held, 640×480", lambda x: f"{x['640x480']['left_by_2000_more_calls']:,}")]
    lines = [f"MobileNetV2-224 int8 `.tflite`, LiteRT, {THREADS} threads; camera-like frames rotating over 16 (cold "
             f"in the cache). Medians of {len(mp)} rounds, each a fresh process per side (min–max of the per-round "
             f"figures); raw call {s['before']['raw_ms']:.3f} ms before, {s['after']['raw_ms']:.3f} ms after; "
             f"MediaPipe {mp[0]['version']} {statistics.median(m['mediapipe'] for m in mp):.3f} ms.", "",
             f"| figure | before ({before}) | after |", "|---|---|---|"]
    lines += [f"| {label} | {fmt(s['before'])} | {fmt(s['after'])} |" for label, fmt in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = probe_cli(__doc__, probe, RESULTS, before=(str, "0bbf424"), rounds=(int, 15), calls=(int, 300))
    if args is None:
        return
    if not MEDIAPIPE.exists():
        subprocess.run(["bash", str(ROOT / "tests" / "setup_mediapipe.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        before = revision_view(args.before, Path(tmp) / "before")
        result = measure(model(Path(tmp)), before, args.rounds, args.calls)
    stamp = dt.date.today().isoformat()
    publish(args.out, f"frame-share-{stamp}", {"date": stamp, "before": args.before, "threads": THREADS,
                                                "result": result}, page(result, args.before))


if __name__ == "__main__":
    main()
