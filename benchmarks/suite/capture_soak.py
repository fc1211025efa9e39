"""Hard-example capture over a long stream in one process: every frame is hard, the folder is capped, the
writer falls behind and drops; prints RSS at checkpoints and the capture's counts as JSON (run by
tests/streams/test_hard_example_capture.py's slow test and benchmarks/capture_suite.py).

    python benchmarks/suite/capture_soak.py MODEL FOLDER [--frames 200000] [--checkpoints 10]
"""

import argparse
import json

import numpy as np

from edgecls.runtime import CaptureOptions, Classifier


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("folder")
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--checkpoints", type=int, default=10)
    args = parser.parse_args()
    frames = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(16)]
    every = args.frames // args.checkpoints

    def source():
        for i in range(args.frames):
            yield frames[i % len(frames)]

    rss = []
    options = CaptureOptions(args.folder, below_score=1.0, below_margin=1.0, max_files=200, queue_size=16)
    with Classifier.from_path(args.model, num_threads=1) as clf, clf.stream(source(), capture=options) as stream:
        for result in stream:
            if result.index % every == every - 1:
                rss.append(rss_mb())
    print(json.dumps({"frames": args.frames, "rss_mb": rss, "capture": stream.summary.capture.as_dict(),
                      "classified": stream.summary.classified}))


if __name__ == "__main__":
    main()
