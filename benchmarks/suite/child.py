"""One latency probe in a fresh runtime-only process, as a user deploys: no TensorFlow, no Keras model,
no engine but the probe's own.

    python benchmarks/suite/child.py SPEC_JSON

SPEC is ``{"probe": "variants", "variants": {NAME: {"kind": "classify"|"raw", "model": PATH,
"cv_threads": N}}, "threads": T, "rounds": R, "per_round": N, "warmup": W}`` (the variants interleaved
round by round: each round runs every variant ``per_round`` times, in turn) or ``{"probe": "stream",
"model": PATH, "video": PATH, "rounds": R}``. Prints one JSON line: ``rounds`` (per round, each
variant's median ms, or the stream figures) and ``modules`` (which heavy modules the process held).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    """Per round, each variant's median ms; variants alternate within every round."""
    import cv2

    from edgecls.bench.measure import camera_frames

    frames = camera_frames((640, 480))
    default_cv = cv2.getNumThreads()
    fns = {name: _callable(v, spec["threads"], frames) for name, v in spec["variants"].items()}
    cv_threads = {name: v.get("cv_threads") or default_cv for name, v in spec["variants"].items()}
    for name, fn in fns.items():
        cv2.setNumThreads(cv_threads[name])
        for i in range(spec.get("warmup", 20)):
            fn(i)
    rounds = []
    for _ in range(spec["rounds"]):
        medians = {}
        for name, fn in fns.items():
            cv2.setNumThreads(cv_threads[name])
            times = []
            for i in range(spec["per_round"]):
                t = time.perf_counter()
                fn(i)
                times.append((time.perf_counter() - t) * 1000)
            medians[name] = statistics.median(times)
        rounds.append(medians)
    return rounds


def stream(spec: dict) -> list[dict[str, float]]:
    """Per round, the stream figures of :func:`suite.streaming.stream_throughput`."""
    from edgecls.runtime import Classifier
    from suite.streaming import stream_throughput

    with Classifier.from_path(spec["model"], num_threads=1) as clf:
        return stream_throughput(clf, Path(spec["video"]), repeats=spec["rounds"])["per_round"]


PROBES = {"variants": variants, "stream": stream}


def main() -> None:
    spec = json.loads(sys.argv[1])
    rounds = PROBES[spec["probe"]](spec)
    print(json.dumps({"rounds": rounds, "modules": sorted(m for m in HEAVY if m in sys.modules)}))


if __name__ == "__main__":
    main()
