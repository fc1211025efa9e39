"""Are the heat maps right? Deletion: the explained class's score after blurring away the 10 % most
salient pixels (by the map) against 10 % random pixels, per image, averaged over held-out images; for
both methods, fp32 and int8 files, on the seed CNN (digits) and a two-class CNN (scikit-image's faces /
non-faces, trained with label smoothing). Plus the time of an occlusion map for MobileNetV2-224 int8
against one classification.

    python -m benchmarks.explain_suite [--images 80] [--models cnn_nobn_32,faces_2class] [--no-timing]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.batch_suite import PHOTOS, camera_jpeg, mobilenet_int8, photo, random_crop
from benchmarks.ladder_suite import _split, build, faces, faces_cnn
from benchmarks.suite.publish import publish
from edgecls import realdata
from edgecls.runtime import Classifier
from edgecls.runtime.explain import baseline_of


def deleted(image: np.ndarray, order: np.ndarray, share: float) -> np.ndarray:
    """``image`` with the first ``share`` of pixels in ``order`` (flat indices) replaced by the
    explanations' own baseline, a blurred copy of the image: the deletion removes what the maps were
    measured removing (grey pixels scattered at random are a texture of their own, which the faces model
    reacted to more than to its most salient 10 %)."""
    out = image.copy()
    count = round(order.size * share)
    ys, xs = np.unravel_index(order[:count], image.shape[:2])
    out[ys, xs] = baseline_of(image, "blur")[ys, xs]
    return out


def deletion(model: Path, images: np.ndarray, method: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    salient, random_ = [], []
    with Classifier.from_path(model, num_threads=2) as clf:
        for image in images:
            bgr = image[:, :, ::-1].copy()
            e = clf.explain(bgr, method=method)
            by_heat = np.argsort(-e.heatmap.ravel(), kind="stable")
            shuffled = rng.permutation(by_heat.size)
            salient.append(e.score - float(clf.scores(deleted(bgr, by_heat, 0.1))[e.index]))
            random_.append(e.score - float(clf.scores(deleted(bgr, shuffled, 0.1))[e.index]))
    wins = float(np.mean(np.array(salient) > np.array(random_)))
    return {"images": len(images), "salient_drop": float(np.mean(salient)), "random_drop": float(np.mean(random_)),
            "salient_wins": wins}


def faces_with_margins():
    """The ladder suite's two-class faces CNN, trained with label smoothing (0.2) instead of to saturation.

    Trained plainly it reaches accuracy 1.0 with its top score at 1.0 (exactly, in uint8): no perturbation
    moves a score that sits on its ceiling, so no perturbation method can see anything. With smoothed
    labels the scores keep margins under 1 and the explanation has something to measure.
    """
    import keras

    keras.utils.set_random_seed(0)
    images, labels = faces(48)
    x, xv, y, yv = _split(images, labels, 0.4)
    model = faces_cnn()
    xf, yf = np.concatenate([x, x[:, :, ::-1]]), np.concatenate([y, y])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(label_smoothing=0.2),
                  metrics=["accuracy"])
    model.fit(xf.astype("float32"), np.eye(2)[yf], epochs=40, batch_size=32, verbose=0, shuffle=True)
    realdata.warm_batchnorm(model, x.astype("float32"))
    return model, x, y, xv, yv, ["other", "face"], "raw"


def export_pair(model, work: Path, name: str, calib: np.ndarray, labels: list[str], pixels: str) -> dict[str, Path]:
    from edgecls.converters import export

    folder = work / f"{name}-calib"
    folder.mkdir()
    for i, image in enumerate(calib):
        cv2.imwrite(str(folder / f"{i:04d}.png"), image[:, :, ::-1])
    report = export(model, work / name, formats=["tflite"], quantize=["fp32", "int8"], calibration=folder,
                    labels=labels, pixels=pixels, name=name, min_agreement=0.0, force=True)
    return {f.quantization: f.path for f in report.files}


def timing(work: Path, rounds: int = 5) -> dict:
    model = mobilenet_int8(work)
    rng = np.random.default_rng(5)
    frame = cv2.imdecode(np.frombuffer(camera_jpeg(random_crop(photo(PHOTOS[0]), rng), (640, 480), rng), np.uint8),
                         cv2.IMREAD_COLOR)
    with Classifier.from_path(model, num_threads=2) as clf:
        clf.explain(frame)
        maps, ones = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            clf.explain(frame)
            t1 = time.perf_counter()
            for _ in range(20):
                clf.classify(frame)
            t2 = time.perf_counter()
            maps.append(t1 - t0)
            ones.append((t2 - t1) / 20)
    return {"map_s": statistics.median(maps), "map_range_s": [min(maps), max(maps)],
            "classify_ms": statistics.median(ones) * 1000, "ratio": statistics.median(m / o for m, o in zip(maps, ones, strict=True))}


def figure(panels: list[tuple[Path, np.ndarray]], path: Path) -> None:
    """The docs' picture (docs/explain.md): per example (a model file and an RGB image) a column of the image, its
    occlusion map and its RISE map (``edgecls explain``'s pictures, each 192 px high)."""
    from edgecls.sinks.draw import explanation_picture

    columns = []
    for model, image in panels:
        bgr = image[:, :, ::-1].copy()
        with Classifier.from_path(model, num_threads=2) as clf:
            maps = [clf.explain(bgr, method=m) for m in ("occlusion", "rise")]
        side = 192
        plain = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_NEAREST)
        cells = [plain] + [cv2.resize(explanation_picture(bgr, e), (side, side), interpolation=cv2.INTER_AREA)
                           for e in maps]
        columns.append(np.vstack([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells]))
    cv2.imwrite(str(path), np.hstack(columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--models", default="cnn_nobn_32,faces_2class")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args(argv)
    date = dt.date.today().isoformat()
    data: dict = {"date": date, "deletion": {}}
    earlier = args.out / f"explain-{date}.json"
    if args.no_timing and earlier.exists():  # keep today's timing when only the deletion part runs again
        data["timing"] = json.loads(earlier.read_text()).get("timing")
    panels: list[tuple[Path, np.ndarray]] = []
    with tempfile.TemporaryDirectory(prefix="edgecls-explain-") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            model, x, _, xv, _, labels, pixels = faces_with_margins() if name == "faces_2class" else build(name)
            if name == "cnn_nobn_32":  # the seed CNN takes x/255: wrap it to take raw pixels
                import keras

                inputs = keras.Input((32, 32, 3))
                model = keras.Model(inputs, model(keras.layers.Rescaling(1 / 255)(inputs)))
                pixels = "raw"
            files = export_pair(model, work, name, x[:200], labels, pixels)
            # the digits from the fp32 file: the int8 file's uint8 output sits at 255/255 for most clean
            # digits, and a score on its ceiling gives a flat map (the deletion rows above include them)
            panels += [(files["fp32" if name == "cnn_nobn_32" else "int8"], image) for image in xv[:4]]
            for quant, path in files.items():
                for method in ("occlusion", "rise"):
                    result = deletion(path, xv[: args.images], method)
                    data["deletion"][f"{name} {quant} {method}"] = result
                    print(name, quant, method, json.dumps(result), flush=True)
        if panels:
            args.out.mkdir(parents=True, exist_ok=True)
            figure(panels, args.out / f"explain-{date}.png")
        if not args.no_timing:
            data["timing"] = timing(work)
            print("timing", json.dumps(data["timing"]), flush=True)
    lines = [f"# Explanations: deletion test and occlusion time ({date})", "",
             "Produced by `python -m benchmarks.explain_suite`. Score drop of the explained (top-1) class after "
             "replacing the 10 % most salient pixels by the map with a blurred copy of the image, against 10 % "
             "random pixels, averaged over held-out images; wins: the share of images where the salient "
             "deletion hurt more (ties, both drops 0, are not wins).", "",
             "| model, file, method | images | salient drop | random drop | salient wins |", "|---|---|---|---|---|"]
    for key, r in data["deletion"].items():
        lines.append(f"| {key} | {r['images']} | {r['salient_drop']:.3f} | {r['random_drop']:.3f} | {r['salient_wins']:.2f} |")
    lines += ["", f"![the first four held-out digits (fp32 file) and faces (int8 file): the image, its occlusion map, "
                  f"its RISE map](explain-{date}.png)", "",
              f"`explain-{date}.png`: the first four held-out digits (fp32 file: the int8 file's uint8 output sits "
              "at 255/255 for most clean digits, and a score on its ceiling gives a flat map) and faces / non-faces "
              "(int8 file); per column the image, its occlusion map and its RISE map, as `edgecls explain` draws "
              "them (red: what the answer rests on)."]
    t = data.get("timing")
    lines += [] if t is None else ["", f"Occlusion map of a 640×480 frame, MobileNetV2-224 int8, 2 threads: {t['map_s']:.2f} s "
                  f"({t['map_range_s'][0]:.2f}–{t['map_range_s'][1]:.2f}), {t['ratio']:.0f}× one classification "
                  f"({t['classify_ms']:.2f} ms)."]
    publish(args.out, f"explain-{date}", data, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
