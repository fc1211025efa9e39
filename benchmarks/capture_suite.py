"""Hard-example capture: classification throughput with capture on against off, measured side by side
(rounds alternating which goes first), and memory over a long stream where every frame is hard.

Throughput: a 640×480 MJPG video per model with every 8th frame a 50/50 blend of two pictures; the seed
CNN (int8) on digits with the CLI's default rule (top score under 0.6); MobileNetV2-224 (int8) on
scikit-image photos with the threshold at the 15th percentile of its top scores (so about 15 % of frames
are hard). Two engine threads: the writer thread competes with inference for the same two cores.

    python -m benchmarks.capture_suite [--rounds 15] [--frames 1200] [--soak-frames 200000] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.batch_suite import PHOTOS, mobilenet_int8, photo, random_crop, seed_int8
from benchmarks.suite.publish import publish
from edgecls import realdata
from edgecls.runtime import CaptureOptions, Classifier

SIZE = (640, 480)
SOAK = Path(__file__).resolve().parent / "suite" / "capture_soak.py"


def video(path: Path, pictures: list[np.ndarray], frames: int) -> Path:
    """``frames`` 640×480 frames cycling through ``pictures`` (BGR), every 8th a 50/50 blend of two."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, SIZE)
    big = [cv2.resize(p, SIZE, interpolation=cv2.INTER_CUBIC) for p in pictures]
    for i in range(frames):
        frame = big[i % len(big)]
        if i % 8 == 3:
            frame = cv2.addWeighted(frame, 0.5, big[(i * 7 + 5) % len(big)], 0.5, 0)
        writer.write(frame)
    writer.release()
    return path


def top_scores(model: Path, source: Path) -> np.ndarray:
    with Classifier.from_path(model, num_threads=2) as clf, clf.stream(str(source), max_results=1) as stream:
        return np.array([r.top.score for r in stream])


def fps(clf: Classifier, source: Path, capture: CaptureOptions | None) -> tuple[float, dict | None]:
    with clf.stream(str(source), capture=capture) as stream:
        t0 = time.perf_counter()
        count = sum(1 for _ in stream)
        elapsed = time.perf_counter() - t0
    stats = stream.summary.capture  # after close: the writer has written everything queued
    return count / elapsed, None if stats is None else stats.as_dict()


ORDERS = (("off", "on", "again"), ("on", "again", "off"), ("again", "off", "on"))


def throughput(name: str, model: Path, source: Path, below: float, rounds: int, work: Path) -> dict:
    """``rounds`` rounds of three runs over the whole video with one classifier: capture off, on, and off
    again (the order rotates). The ratio on / off of each round is the measurement; off-again / off is
    the same measurement of nothing, which says how finely this machine can tell (its spread is noise)."""
    tops = top_scores(model, source)
    fps_of: dict[str, list[float]] = {"off": [], "on": [], "again": []}
    stats = None
    with Classifier.from_path(model, num_threads=2) as clf:
        fps(clf, source, None)  # warm the file cache and the engine's first-run costs
        for r in range(rounds):
            folder = work / f"{name}-capture-{r}"
            for which in ORDERS[r % len(ORDERS)]:
                got, counts = fps(clf, source, CaptureOptions(folder, below_score=below) if which == "on" else None)
                fps_of[which].append(got)
                stats = counts or stats
            shutil.rmtree(folder, ignore_errors=True)
            print(name, f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f} fps" for k, v in fps_of.items()), flush=True)
    off, on, again = (np.array(fps_of[k]) for k in ("off", "on", "again"))
    ratios, control = on / off, again / off
    return {"frames": int(tops.size), "below_score": below, "hard_share": float(np.mean(tops < below)),
            "fps_off": float(np.median(off)), "fps_on": float(np.median(on)),
            "ratio": float(np.median(ratios)), "ratio_iqr": [float(q) for q in np.quantile(ratios, [0.25, 0.75])],
            "ratio_range": [float(ratios.min()), float(ratios.max())],
            # all frames over all time, on against off (the harmonic means of the runs' FPS)
            "ratio_of_totals": float(np.sum(1 / off) / np.sum(1 / on)),
            "control": float(np.median(control)), "control_iqr": [float(q) for q in np.quantile(control, [0.25, 0.75])],
            "ratios": ratios.tolist(), "controls": control.tolist(), "last_capture": stats}


def soak(model: Path, work: Path, frames: int) -> dict:
    proc = subprocess.run([sys.executable, str(SOAK), str(model), str(work / "soak"), "--frames", str(frames)],
                          capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = out["rss_mb"]
    half = len(rss) // 2  # the first half warms up (the writer thread's allocations, the folder filling)
    out["growth_mb_per_1000_frames"] = (rss[-1] - rss[half - 1]) / ((len(rss) - half) * frames / len(rss) / 1000)
    out["files_left"] = sum(1 for p in (work / "soak").rglob("*") if p.is_file())
    return out


def markdown(data: dict) -> str:
    lines = [f"# Hard-example capture: throughput and memory ({data['date']})", "",
             "Produced by `python -m benchmarks.capture_suite` on this 2-core x86-64 machine. Throughput: the same "
             f"640×480 MJPG video classified by one classifier (2 engine threads), {data['rounds']} rounds of three "
             "runs back to back — capture off, on, and off again, the order rotating. on / off: the median of the "
             "rounds' ratios (interquartile range) [min–max]; all frames: total frames over total time, on against "
             "off; control: off-again / off, the same measurement of no change (its spread is this machine's noise).",
             "", "| model | frames | rule | hard frames | FPS off | FPS on | on / off (goal ≥ 0.95) | all frames | control | written, dropped (last run) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, t in data["throughput"].items():
        c = t["last_capture"]
        lines.append(f"| {name} | {t['frames']} | top < {t['below_score']:.3f} | {t['hard_share']:.0%} | {t['fps_off']:.1f} "
                     f"| {t['fps_on']:.1f} | {t['ratio']:.3f} ({t['ratio_iqr'][0]:.3f}–{t['ratio_iqr'][1]:.3f}) "
                     f"[{t['ratio_range'][0]:.3f}–{t['ratio_range'][1]:.3f}] | {t['ratio_of_totals']:.3f} "
                     f"| {t['control']:.3f} ({t['control_iqr'][0]:.3f}–{t['control_iqr'][1]:.3f}) "
                     f"| {c['written']}, {c['dropped']} |")
    s = data["soak"]
    c = s["capture"]
    lines += ["", f"Memory: {s['frames']:,} frames (64×48, seed CNN int8, 1 thread) all hard, the folder capped at "
                  f"200 captures, the writer queue at 16: RSS every {s['frames'] // len(s['rss_mb']):,} frames "
                  f"{', '.join(f'{m:.1f}' for m in s['rss_mb'])} MB; growth over the second half "
                  f"**{s['growth_mb_per_1000_frames'] * 1000:.2f} kB per 1,000 frames**; written {c['written']:,}, dropped {c['dropped']:,} "
                  f"(the writer is slower than this stream), oldest removed {c['removed']:,}, files left "
                  f"{s['files_left']} (200 pictures + 200 sidecars)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds of three runs (off, on, off again) per model")
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--soak-frames", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    date = dt.date.today().isoformat()
    data: dict = {"date": date, "rounds": args.rounds, "throughput": {}}
    with tempfile.TemporaryDirectory(prefix="edgecls-capture-") as tmp:
        work = Path(tmp)
        (work / "seed").mkdir()
        (work / "mobilenet").mkdir()
        seed = seed_int8(work / "seed")
        x, _ = realdata.digits_rgb(32)
        digits = video(work / "digits.avi", [im[:, :, ::-1] for im in x[-60:]], args.frames)
        data["throughput"]["seed CNN int8, digits"] = throughput("seed", seed, digits, 0.6, args.rounds, work)
        mobilenet = mobilenet_int8(work / "mobilenet")
        rng = np.random.default_rng(3)
        photos = video(work / "photos.avi", [random_crop(photo(n), rng) for n in PHOTOS * 4], args.frames)
        below = float(np.quantile(top_scores(mobilenet, photos), 0.15)) + 1e-6
        data["throughput"]["MobileNetV2-224 int8, photos"] = throughput("mobilenet", mobilenet, photos, below,
                                                                        args.rounds, work)
        data["soak"] = soak(seed, work, args.soak_frames)
    publish(args.out, f"capture-{date}", data, markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
