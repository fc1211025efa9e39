"""One latency probe in a fresh runtime-only process, as a user deploys: no TensorFlow, no Keras model,
no engine but the probe's own.

    python benchmarks/suite/child.py SPEC_JSON

SPEC is ``{"probe": "variants", "variants": {NAME: {"kind": "classify"|"raw", "model": PATH}},
"threads": T, "cv_threads": N (optional: OpenCV's pool), "rounds": R, "per_round": N, "block": B
(default 1), "warmup": W}`` or ``{"probe": "stream", "model": PATH, "video": PATH, "rounds": R}``.

The variants alternate every ``block`` calls, ``per_round`` calls of each per round. One call at a
time suits LiteRT: measured here, per-round int8/fp32 ratios of MobileNetV2 ranged 6-12 % against
22-43 % with each variant's calls in one block. ONNX Runtime's idle pool threads spin for a while
after a call, so two sessions alternating call by call slow each other (int8/fp32 ranged
0.38-0.71): its variants alternate in blocks of 20, whose first, slowed call the median drops.

Prints one JSON line: ``rounds`` (per round, each
variant's median ms, or the stream figures) and ``modules`` (which heavy modules the process held).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

HEAVY = ("tensorflow", "keras", "torch", "onnxruntime", "ai_edge_litert", "tflite_runtime")


def _callable(variant: dict, threads: int, frames: list):
    import numpy as np

    from edgecls.runtime import Classifier
    from edgecls.runtime.backends import BackendConfig, open_backend

    if variant["kind"] == "classify":
        clf = Classifier.from_path(variant["model"], num_threads=threads)
        return lambda i: clf.classify(frames[i % len(frames)])
    backend = open_backend(Path(variant["model"]), config=BackendConfig(num_threads=threads))
    shape = tuple(d or 1 for d in backend.input.shape)
    tensor = np.random.default_rng(0).integers(0, 256, shape).astype(backend.input.dtype)
    return lambda i: backend.run(tensor)


def variants(spec: dict) -> list[dict[str, float]]:
    """Per round, each variant's median ms; the variants alternate every ``block`` calls."""
    import cv2

    from edgecls.bench.measure import camera_frames

    if spec.get("cv_threads"):
        cv2.setNumThreads(spec["cv_threads"])
    frames = camera_frames((640, 480))
    fns = {name: _callable(v, spec["threads"], frames) for name, v in spec["variants"].items()}
    for fn in fns.values():
        for i in range(spec.get("warmup", 20)):
            fn(i)
    rounds = []
    for _ in range(spec["rounds"]):
        times: dict[str, list[float]] = {name: [] for name in fns}
        block = spec.get("block", 1)
        for start in range(0, spec["per_round"], block):
            for name, fn in fns.items():  # in turn, call by call: a burst of noise hits every variant alike
                for i in range(start, min(start + block, spec["per_round"])):
                    t = time.perf_counter()
                    fn(i)
                    times[name].append((time.perf_counter() - t) * 1000)
        rounds.append({name: statistics.median(values) for name, values in times.items()})
    return rounds


def stream(spec: dict) -> list[dict[str, float]]:
    """Per round, the stream figures of :func:`suite.streaming.stream_throughput`."""
    from benchmarks.suite.streaming import stream_throughput
    from edgecls.runtime import Classifier

    with Classifier.from_path(spec["model"], num_threads=1) as clf:
        return stream_throughput(clf, Path(spec["video"]), repeats=spec["rounds"])["per_round"]


PROBES = {"variants": variants, "stream": stream}


def main() -> None:
    spec = json.loads(sys.argv[1])
    rounds = PROBES[spec["probe"]](spec)
    print(json.dumps({"rounds": rounds, "modules": sorted(m for m in HEAVY if m in sys.modules)}))


if __name__ == "__main__":
    main()
