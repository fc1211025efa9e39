"""Resize strategies for a camera frame → model input: speed and fidelity, side by side.

Compares cv2.INTER_AREA (the anti-aliased reference), cv2.INTER_LINEAR and
edgecls' fast_resize (integer-factor INTER_AREA, then INTER_LINEAR) on real
photos from scikit-image, scaled to camera frame sizes. Fidelity is the mean
absolute difference to INTER_AREA in 8-bit levels. Run:

    python -m benchmarks.resize [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.suite.publish import RESULTS, publish
from edgecls.runtime.resize import fast_resize

FRAMES = [(640, 480), (1280, 720), (1920, 1080)]
TARGETS = [224, 32]


def photos() -> list[np.ndarray]:
    """Real photos shipped with scikit-image (BGR), or a textured synthetic frame without it."""
    try:
        from skimage import data

        return [cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR) for name in ("astronaut", "chelsea", "coffee")]
    except ImportError:
        rng = np.random.default_rng(0)
        return [cv2.GaussianBlur(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), (0, 0), 1.5)]


def median_ms(fn, repeat: int = 200) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows = []
    sources = photos()
    for fw, fh in FRAMES:
        frames = [cv2.resize(p, (fw, fh), interpolation=cv2.INTER_CUBIC) for p in sources]
        for t in TARGETS:
            area = [cv2.resize(f, (t, t), interpolation=cv2.INTER_AREA).astype(np.float32) for f in frames]
            methods = {
                "INTER_AREA": lambda f, t=t: cv2.resize(f, (t, t), interpolation=cv2.INTER_AREA),
                "INTER_LINEAR": lambda f, t=t: cv2.resize(f, (t, t), interpolation=cv2.INTER_LINEAR),
                "fast_resize": lambda f, t=t: fast_resize(f, t, t),
            }
            for name, fn in methods.items():
                diff = float(np.mean([np.abs(fn(f).astype(np.float32) - a).mean() for f, a in zip(frames, area, strict=True)]))
                rows.append({"frame": f"{fw}x{fh}", "target": f"{t}x{t}", "method": name,
                             "median_ms": round(median_ms(lambda fn=fn, frame=frames[0]: fn(frame)), 4),
                             "mean_abs_diff_vs_area": round(diff, 3)})
    stamp = dt.date.today().isoformat()
    lines = ["| frame | target | method | median ms | mean abs diff vs INTER_AREA |", "|---|---|---|---|---|"]
    lines += [f"| {r['frame']} | {r['target']} | {r['method']} | {r['median_ms']:.3f} | {r['mean_abs_diff_vs_area']:.2f} |" for r in rows]
    publish(args.out, f"resize-{stamp}", {"date": stamp, "threads": 1, "rows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
