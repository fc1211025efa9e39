"""``edgecls batch`` side by side: workers, engines, and reduced-scale JPEG decoding.

Scaling (``--part scaling``): the seed CNN int8 (TFLite, 32×32) on 20,000 digit PNGs, and MobileNetV2
(α 1.0, 224×224, ``weights=None`` with BatchNorm statistics from real images) int8 on 1,500 640×480
JPEGs made from scikit-image's photos: the local engine with 1 and 2 workers and the Ray engine with
2 actors, in rounds with the configurations alternating. images/s excludes each engine's start (the
pool's spawn; for Ray, starting a local instance and its actors, reported apart).

Decoding (``--part decode``): 12-megapixel JPEGs (4000×3000, camera-like noise) of scikit-image's photos
and of held-out digits, classified from the file with the runtime's reduced-scale decoding against a
full decode of the same file (``cv2.imread``) then the same classification; images/s of each over
rounds (alternating), top-1 agreement of the two, and accuracy where the images have labels (the digits
with the seed CNN; the photos with a small CNN trained here to tell the six photos apart from crops).

    python -m benchmarks.batch_suite [--part scaling,decode] [--rounds 3] [--out benchmarks/results]
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

from benchmarks.suite.publish import publish, spread_range
from edgecls import realdata
from edgecls.bench.measure import spread_of

DECODE_IMAGES = 120
"""12-megapixel JPEGs per set (about 2.5 MB each)."""
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "motorcycle")


def photo(name: str) -> np.ndarray:
    """A scikit-image colour photo as BGR."""
    from skimage import data

    rgb = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def random_crop(image: np.ndarray, rng: np.random.Generator, low: float = 0.5) -> np.ndarray:
    h, w = image.shape[:2]
    share = rng.uniform(low, 1.0)
    ch, cw = int(h * share), int(w * share)
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return image[top:top + ch, left:left + cw]


def camera_jpeg(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator, quality: int = 90) -> bytes:
    """``image`` enlarged to ``size`` with sensor-like noise, as a JPEG."""
    big = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC).astype(np.int16)
    big += rng.normal(0, 4, big.shape).astype(np.int16)
    return cv2.imencode(".jpg", np.clip(big, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


# -- models -------------------------------------------------------------------------------------------
def export_int8(model, work: Path, name: str, calib: np.ndarray, labels: list[str], pixels: str) -> Path:
    from edgecls.converters import export

    calib_dir = work / f"{name}-calib"  # a flat folder: calibration needs no labels
    calib_dir.mkdir()
    for i, image in enumerate(calib):
        cv2.imwrite(str(calib_dir / f"{i:04d}.png"), image[:, :, ::-1])
    report = export(model, work / name, formats=["tflite"], quantize=["int8"], calibration=calib_dir,
                    labels=labels, pixels=pixels, name=name, min_agreement=0.0, force=True)
    return report.files[0].path


def seed_int8(work: Path) -> Path:
    x, y = realdata.digits_rgb(32)
    model = realdata.seed_cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit((x / 255.0).astype("float32"), y, epochs=8, verbose=0)
    import keras

    inputs = keras.Input((32, 32, 3))
    wrapped = keras.Model(inputs, model(keras.layers.Rescaling(1 / 255)(inputs)))
    return export_int8(wrapped, work, "seed", x[:200], list(realdata.LABELS), "raw")


def mobilenet_int8(work: Path) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    frames = np.stack([cv2.resize(random_crop(photo(n), np.random.default_rng(i)), (224, 224))[:, :, ::-1]
                       for i, n in enumerate(PHOTOS * 8)])
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)
    realdata.warm_batchnorm(model, frames / 127.5 - 1)
    return export_int8(model, work, "mobilenetv2", frames, list(realdata.LABELS), "symmetric")


def photo_classifier(work: Path) -> Path:
    """A small CNN trained to tell the six photos apart from random crops (64×64), exported int8."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = [], []
    for label, name in enumerate(PHOTOS):
        image = photo(name)
        for _ in range(200):
            crop = cv2.resize(random_crop(image, rng, 0.3), (64, 64), interpolation=cv2.INTER_AREA)
            x.append(crop[:, :, ::-1])
            y.append(label)
    x, y = np.stack(x), np.array(y)
    inputs = keras.Input((64, 64, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32, 64):
        h = keras.layers.Conv2D(filters, 3, activation="relu", padding="same")(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(len(PHOTOS), activation="softmax")(h))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x.astype("float32"), y, epochs=15, batch_size=32, verbose=0, shuffle=True)
    return export_int8(model, work, "photos", x[::6], list(PHOTOS), "raw")


# -- decoding -----------------------------------------------------------------------------------------
def decode_part(work: Path, rounds: int) -> dict:
    from edgecls.runtime import Classifier

    rng = np.random.default_rng(1)
    seed_model = seed_int8(work)
    photo_model = photo_classifier(work)
    sets = {}
    folder = work / "12mp-photos"
    folder.mkdir()
    truth = {}
    for i in range(DECODE_IMAGES):
        label = i % len(PHOTOS)
        path = folder / f"{i:03d}.jpg"
        path.write_bytes(camera_jpeg(random_crop(photo(PHOTOS[label]), rng, 0.6), (4000, 3000), rng))
        truth[path] = PHOTOS[label]
    sets["photos"] = (photo_model, truth)
    x, y = realdata.digits_rgb(64)
    folder = work / "12mp-digits"
    folder.mkdir()
    truth = {}
    for i in range(DECODE_IMAGES):
        path = folder / f"{i:03d}.jpg"
        path.write_bytes(camera_jpeg(x[1600 + i][:, :, ::-1], (4000, 3000), rng))
        truth[path] = str(y[1600 + i])
    sets["digits"] = (seed_model, truth)
    out = {}
    for name, (model, truth) in sets.items():
        with Classifier.from_path(model, num_threads=1) as clf:
            paths = list(truth)
            full_s, reduced_s = [], []
            full_top = reduced_top = None
            for _ in range(rounds):
                t0 = time.perf_counter()
                full_top = [clf.classify(cv2.imread(str(p))).top.label for p in paths]
                t1 = time.perf_counter()
                reduced_top = [clf.classify(p).top.label for p in paths]
                t2 = time.perf_counter()
                full_s.append(t1 - t0)
                reduced_s.append(t2 - t1)
            ratios = [f / r for f, r in zip(full_s, reduced_s, strict=True)]
            out[name] = {
                "images": len(paths), "model": model.name,
                "full_images_per_s": len(paths) / statistics.median(full_s),
                "reduced_images_per_s": len(paths) / statistics.median(reduced_s),
                "speedup": statistics.median(ratios), "speedup_spread": spread_of(ratios),
                "top1_agreement": float(np.mean([a == b for a, b in zip(full_top, reduced_top, strict=True)])),
                "accuracy_full": float(np.mean([a == truth[p] for a, p in zip(full_top, paths, strict=True)])),
                "accuracy_reduced": float(np.mean([a == truth[p] for a, p in zip(reduced_top, paths, strict=True)])),
            }
            print(name, json.dumps(out[name]), flush=True)
    return out


# -- scaling ------------------------------------------------------------------------------------------
def scaling_part(work: Path, rounds: int) -> dict:
    from edgecls.batch import BatchOptions, run

    rng = np.random.default_rng(2)
    digits = work / "digits-20k"
    x, _ = realdata.digits_rgb(32)
    for i in range(20_000):
        folder = digits / f"{i // 1000:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        shifted = np.roll(x[i % len(x)], (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
        cv2.imwrite(str(folder / f"{i:05d}.png"), shifted)
    frames = work / "photos-640"
    frames.mkdir()
    for i in range(1_500):
        (frames / f"{i:04d}.jpg").write_bytes(camera_jpeg(random_crop(photo(PHOTOS[i % len(PHOTOS)]), rng), (640, 480), rng))
    models = {"seed CNN int8": (seed_int8(work), digits), "MobileNetV2-224 int8": (mobilenet_int8(work), frames)}
    configs = {"local 1 worker": BatchOptions(workers=1), "local 2 workers": BatchOptions(workers=2),
               "ray 2 actors": BatchOptions(engine="ray", workers=2)}
    results: dict = {"models": {}}
    starts = []
    for m, (model_name, (model, folder)) in enumerate(models.items()):
        per = {c: [] for c in configs}
        walls = {c: [] for c in configs}
        for r in range(rounds):
            for c, (config, options) in enumerate(configs.items()):
                out = work / f"out-{m}-{c}-{r}"
                summary = run(model, [folder], out, options)
                assert summary.classified == summary.inputs and summary.errors == 0, summary
                per[config].append(summary.images_per_s)
                if options.engine == "ray":
                    starts.append(summary.start_s)
                walls[config].append(summary.wall_s)
                print(model_name, config, r, f"{summary.images_per_s:.0f}/s wall {summary.wall_s:.1f} s "
                      f"start {summary.start_s:.2f} s", flush=True)
        two = [a / b for a, b in zip(per["local 2 workers"], per["local 1 worker"], strict=True)]
        ray_vs = [a / b for a, b in zip(per["ray 2 actors"], per["local 2 workers"], strict=True)]
        results["models"][model_name] = {
            "images": summary.inputs, "images_per_s": {c: statistics.median(v) for c, v in per.items()},
            "wall_s": {c: statistics.median(v) for c, v in walls.items()},
            "two_vs_one": statistics.median(two), "two_vs_one_spread": spread_of(two),
            "ray_vs_local": statistics.median(ray_vs), "ray_vs_local_spread": spread_of(ray_vs),
            "rounds": per,
        }
    results["ray_start_s"] = statistics.median(starts)
    results["ray_start_spread"] = spread_of(starts)
    return results


def markdown(data: dict, date: str) -> str:
    lines = [f"# edgecls batch: workers, engines and reduced-scale decoding ({date})", "",
             "Produced by `python -m benchmarks.batch_suite` on this 2-core x86-64 machine; medians over "
             f"{data['rounds']} rounds with the configurations alternating, ranges in brackets.", ""]
    if "scaling" in data:
        s = data["scaling"]
        lines += ["## Workers and engines", "",
                  "| model | images | local 1 worker img/s | local 2 workers img/s | Ray 2 actors img/s | 2 vs 1 worker (goal ≥ 1.7) | Ray vs local (goal ≥ 0.8) |",
                  "|---|---|---|---|---|---|---|"]
        for name, m in s["models"].items():
            ips = m["images_per_s"]
            sp1, sp2 = m["two_vs_one_spread"], m["ray_vs_local_spread"]
            lines.append(f"| {name} | {m['images']:,} | {ips['local 1 worker']:,.0f} | {ips['local 2 workers']:,.0f} "
                         f"| {ips['ray 2 actors']:,.0f} | {m['two_vs_one']:.2f}{spread_range(sp1)} "
                         f"| {m['ray_vs_local']:.2f}{spread_range(sp2)} |")
        sp = s["ray_start_spread"]
        lines += ["", "images/s counts from the engine's start to the last row committed, excluding the start "
                      "itself (local: spawning the workers, each loading the model, 0.3-0.5 s; Ray: starting a local "
                      "Ray instance, as every `--engine ray` run without `--ray-address` does, then its actors with "
                      f"their model until the first block starts: median {s['ray_start_s']:.1f} s, "
                      f"{spread_range(sp, 1).strip(' ()') or 'one round'}). Each run starts and stops its own engine, so no Ray "
                      "process is alive during a local run.", ""]
    if "decode" in data:
        lines += ["## Reduced-scale JPEG decoding (12 megapixels)", "",
                  "| images | model | full decode img/s | reduced img/s | speed-up (goal ≥ 2.5) | top-1 agreement (goal ≥ 0.99) | accuracy full → reduced |",
                  "|---|---|---|---|---|---|---|"]
        for name, d in data["decode"].items():
            sp = d["speedup_spread"]
            lines.append(f"| {d['images']} {name} (4000×3000) | {d['model']} | {d['full_images_per_s']:.1f} "
                         f"| {d['reduced_images_per_s']:.1f} | {d['speedup']:.2f}{spread_range(sp)} "
                         f"| {d['top1_agreement']:.3f} | {d['accuracy_full']:.3f} → {d['accuracy_reduced']:.3f} |")
        lines += ["", "One thread; each image read from its file: full = `cv2.imread` then `classify(array)`, "
                      "reduced = `classify(path)` (libjpeg's 1/8 scale leaves 500×375, over every input size here)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="scaling,decode")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    date = dt.date.today().isoformat()
    data: dict = {"date": date, "rounds": args.rounds}
    earlier = args.out / f"batch-{date}.json"
    if earlier.exists():  # a part run alone replaces that part of today's results, keeping the others
        data = {**json.loads(earlier.read_text()), **data}
    with tempfile.TemporaryDirectory(prefix="edgecls-batch-") as tmp:
        work = Path(tmp)
        for part in args.part.split(","):
            (work / part).mkdir()
            data[part] = {"decode": decode_part, "scaling": scaling_part}[part](work / part, args.rounds)
    publish(args.out, f"batch-{date}", data, markdown(data, date))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
