"""Regions of a frame, side by side: one ``classify_regions`` call against cropping in Python and calling
``classify`` once per box, against 8 raw engine invokes on pre-cut tensors (the engine's floor), and against
MediaPipe's ``classify`` with ``region_of_interest`` once per box, on the same file.

8 boxes (24-300 px, held-out digits pasted on a scikit-image photo) of a 1920×1080 frame; the seed CNN
(32×32) and MobileNetV2-224 (weights=None, BatchNorm from real photos), both TFLite int8 with 2 engine
threads. Each round runs the edgecls variants call by call in fresh runtime-only processes, one for the
runtime as it was at ``--before`` (that commit's package, taken with ``git archive``, first on
``PYTHONPATH``) and one for this checkout's, in alternating order, and MediaPipe in its own (its virtual
environment: it pins its own OpenCV); the ratios are per round, with their spread. Run:

    python -m benchmarks.regions_suite [--before 3edb702] [--rounds 5] [--per-round 40] [--out benchmarks/results]
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.suite.checkout import revision_view, side_envs
from benchmarks.suite.publish import RESULTS, publish, spread_range
from benchmarks.suite.timing import probe_cli, run_json
from edgecls import realdata
from edgecls.bench.measure import spread_of

THREADS = 2
MEDIAPIPE = """
import json, statistics, sys, time
import mediapipe as mp
from mediapipe.tasks import python as mpt
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.components.containers.rect import RectF
from mediapipe.tasks.python.vision.core.image_processing_options import ImageProcessingOptions
spec = json.loads(sys.argv[1])
options = vision.ImageClassifierOptions(base_options=mpt.BaseOptions(model_asset_path=spec["model"]), max_results=3)
rois = [ImageProcessingOptions(region_of_interest=RectF(left=l, top=t, right=r, bottom=b)) for l, t, r, b in spec["rects"]]
with vision.ImageClassifier.create_from_options(options) as classifier:
    image = mp.Image.create_from_file(spec["frame"])
    def call():
        return [classifier.classify(image, roi).classifications[0].categories[0].category_name for roi in rois]
    for _ in range(spec["warmup"]):
        call()
    times = []
    for _ in range(spec["per_round"]):
        t = time.perf_counter(); call(); times.append((time.perf_counter() - t) * 1000)
    labels = call()
print(json.dumps({"ms": statistics.median(times), "labels": labels}))
"""


def probe(spec: dict) -> dict:
    """In a fresh runtime-only process: per variant, the median ms of one frame's 8 regions."""
    import edgecls.runtime
    from edgecls.runtime import Classifier
    from edgecls.runtime.backends import BackendConfig, open_backend
    from edgecls.runtime.regions import CropPolicy, Region, cut

    frame = cv2.imread(spec["frame"])
    boxes = [tuple(b) for b in spec["boxes"]]
    stretch = CropPolicy.parse("stretch")
    clf = Classifier.from_path(spec["model"], num_threads=THREADS)
    backend = open_backend(Path(spec["model"]), config=BackendConfig(num_threads=THREADS))
    tensors = [clf.preprocess(cut(frame, stretch.plan(Region(*b), frame.shape[1], frame.shape[0]), stretch))[None]
               for b in boxes]
    variants = {
        "classify_regions": lambda: clf.classify_regions(frame, boxes, crop=stretch),
        "crop + 8 classify": lambda: [clf.classify(frame[y0:y1, x0:x1]) for x0, y0, x1, y1 in boxes],
        "8 raw invokes": lambda: [backend.run(t) for t in tensors],
    }
    for fn in variants.values():
        for _ in range(spec["warmup"]):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(spec["per_round"]):
        for name, fn in variants.items():  # call by call: a burst of noise hits every variant alike
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
    labels = [r.top.label for r in clf.classify_regions(frame, boxes, crop=stretch)]
    heavy = sorted(m for m in ("tensorflow", "keras", "onnxruntime") if m in sys.modules)
    return {"ms": {name: statistics.median(v) for name, v in times.items()}, "labels": labels, "modules": heavy,
            "runtime": edgecls.runtime.__file__}


def _mediapipe(spec: dict) -> dict:
    from benchmarks.run import ensure_mediapipe

    return run_json([str(ensure_mediapipe()), "-c", MEDIAPIPE, json.dumps(spec)])


def measure(model: Path, frame_path: Path, boxes: list, rounds: int, per_round: int, before: Path) -> dict:
    """Rounds of the edgecls probe (the runtime at ``before`` and this checkout's, alternating) and the MediaPipe
    probe; per side, the per-round ratios and their spread."""
    height, width = cv2.imread(str(frame_path)).shape[:2]
    spec = {"model": str(model), "frame": str(frame_path), "boxes": boxes, "warmup": 10, "per_round": per_round}
    mp_spec = {**spec, "rects": [(x0 / width, y0 / height, x1 / width, y1 / height) for x0, y0, x1, y1 in boxes]}
    env = side_envs(before)
    rounds_of: dict[str, list[dict]] = {"before": [], "after": []}
    for r in range(rounds):
        theirs = _mediapipe(mp_spec)
        for side in ("before", "after") if r % 2 == 0 else ("after", "before"):
            # run as a script: ``-m`` would put the working folder, and its ``edgecls``, before PYTHONPATH
            ours = run_json([sys.executable, __file__, "--probe", json.dumps(spec)], env=env[side])
            if ours["modules"]:
                raise RuntimeError(f"the probe was not runtime-only: it held {ours['modules']}")
            if Path(ours["runtime"]).is_relative_to(before) != (side == "before"):
                raise RuntimeError(f"the {side} probe ran the runtime at {ours['runtime']}")
            rounds_of[side].append({**ours["ms"], "MediaPipe 8 ROI calls": theirs["ms"], "agree": float(np.mean(
                [a == b for a, b in zip(ours["labels"], theirs["labels"], strict=True)]))})
    return {side: _summary(per_round) for side, per_round in rounds_of.items()}


def _summary(per_round: list[dict]) -> dict:
    ratios = {
        "8 classify / classify_regions": [r["crop + 8 classify"] / r["classify_regions"] for r in per_round],
        "classify_regions / 8 raw invokes": [r["classify_regions"] / r["8 raw invokes"] for r in per_round],
        "MediaPipe / classify_regions": [r["MediaPipe 8 ROI calls"] / r["classify_regions"] for r in per_round],
    }
    return {"rounds": per_round, "ratios": {k: {"value": statistics.median(v), "spread": spread_of(v)}
                                           for k, v in ratios.items()},
            "ms": {k: statistics.median(r[k] for r in per_round) for k in per_round[0]}}


def models(work: Path) -> dict[str, Path]:
    from benchmarks.batch_suite import mobilenet_int8, seed_int8

    (work / "seed").mkdir()
    (work / "mobilenet").mkdir()
    return {"seed CNN 32x32 int8": seed_int8(work / "seed"), "MobileNetV2-224 int8": mobilenet_int8(work / "mobilenet")}


def page(results: dict, before: str) -> str:
    lines = ["8 regions of a 1920×1080 frame, TFLite int8, 2 engine threads; median ms per frame (all 8 boxes), "
             f"per-round ratios with min–max; each model with the runtime at {before} (before) and this "
             "checkout's (after), side by side.", "",
             "| model | runtime | classify_regions ms | crop + 8 classify ms | 8 raw invokes ms | MediaPipe 8 ROI ms | "
             "8 classify / regions | regions / raw | MediaPipe / regions | top-1 agreement with MediaPipe |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, sides in results.items():
        for side in ("before", "after"):
            ms, ratios = sides[side]["ms"], sides[side]["ratios"]

            def cell(key: str, ratios: dict = ratios) -> str:
                return f"{ratios[key]['value']:.2f}{spread_range(ratios[key]['spread'])}"

            lines.append(f"| {name} | {side} | {ms['classify_regions']:.2f} | {ms['crop + 8 classify']:.2f} | "
                         f"{ms['8 raw invokes']:.2f} | {ms['MediaPipe 8 ROI calls']:.2f} | "
                         f"{cell('8 classify / classify_regions')} | {cell('classify_regions / 8 raw invokes')} | "
                         f"{cell('MediaPipe / classify_regions')} | {ms['agree']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = probe_cli(__doc__, probe, RESULTS, before=(str, "3edb702"), rounds=(int, 5), per_round=(int, 40))
    if args is None:
        return
    images, labels = realdata.digits_rgb()
    frame, boxes, _ = realdata.pasted_digits(images[1400:], labels[1400:], sizes=((1920, 1080),), frames=1,
                                             per_frame=8, seed=3)[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frame_path = work / "frame.png"
        cv2.imwrite(str(frame_path), frame)
        before = revision_view(args.before, work / "before")
        results = {name: measure(path, frame_path, [list(b) for b in boxes], args.rounds, args.per_round, before)
                   for name, path in models(work).items()}
    stamp = dt.date.today().isoformat()
    publish(args.out, f"regions-{stamp}", {"date": stamp, "threads": THREADS, "before": args.before,
                                           "boxes": [list(b) for b in boxes], "results": results},
            page(results, args.before))


if __name__ == "__main__":
    main()
