"""Full int8 against ``--max-drop 0.5 --min-agreement 0.98``: the quantization ladder on a model suite.

Five models trained here to real margins on images from packages: MobileNetV2 α 0.5 at 128×128,
MobileNetV3Small at 128×128 and EfficientNetB0 at 96×96 on scikit-learn's digits, the seed CNN (no
BatchNorm) at 32×32 on the digits, and a two-class BatchNorm CNN on scikit-image's faces/non-faces
subset; and the seed CNN with an activation outlier (two channels of its first convolution scaled up 300×
and the next convolution's weights down: the same function, one tensor whose range two channels set).
Each model is exported twice per format, full int8 (no budget) and with the budget; for each
file: accuracy drop against Keras (points), top-1 agreement, size, the rung the ladder chose and its
float layers, and the export time with the budget. Latencies are the raw engine call, measured in
two fresh runtime-only processes (``suite/child.py``) with fp32, full int8 and the chosen file
alternating call by call (ONNX Runtime: in blocks of 20), 5 rounds of 150 calls each; speed-up kept =
(fp32 − chosen) / (fp32 − int8), median of the per-round values with their range.

    python -m benchmarks.ladder_suite [--models mobilenetv2_96,...] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.suite.publish import RESULTS, publish
from benchmarks.suite.rounds import child_rounds
from edgecls import realdata
from edgecls.bench.measure import spread_of

BUDGET = {"max_drop": 0.5, "min_agreement": 0.98}
NO_GAIN = 0.9
"""int8 in over this share of fp32's time has no speed-up to keep (the page says so instead of a ratio)."""
ENGINES = {"tflite": ("ai_edge_litert",), "onnx": ("onnxruntime",)}


def _split(images: np.ndarray, labels: np.ndarray, val_share: float):
    from sklearn.model_selection import train_test_split

    return train_test_split(images, labels, test_size=val_share, random_state=0, stratify=labels)


def faces(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's faces/non-faces subset (100 + 100 grey 25×25 images, bundled) as RGB uint8 at ``size``."""
    import cv2
    from skimage import data

    raw = (data.lfw_subset() * 255).astype(np.uint8)
    images = np.stack([cv2.cvtColor(cv2.resize(x, (size, size), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
                       for x in raw])
    return images, np.array([1] * 100 + [0] * 100)


def faces_cnn():
    """The two-class faces / non-faces CNN (48×48 raw pixels in; BatchNorm), untrained."""
    import keras

    inputs = keras.Input((48, 48, 3))
    h = keras.layers.Rescaling(1 / 255)(inputs)
    for filters in (16, 32, 64):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.ReLU()(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(h))


def _fit(model, x, y, epochs: int, flips: bool = False):
    import keras

    if flips:
        x, y = np.concatenate([x, x[:, :, ::-1]]), np.concatenate([y, y])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x.astype("float32"), y, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    return model


def build(name: str):
    """(model, train images, train labels, val images, val labels, class names, export pixels)."""
    import keras

    keras.utils.set_random_seed(0)
    digits = [str(i) for i in range(10)]
    if name == "faces_2class":
        images, labels = faces(48)
        x, xv, y, yv = _split(images, labels, 0.4)
        model = faces_cnn()
        _fit(model, x, y, 40, flips=True)
        realdata.warm_batchnorm(model, x.astype("float32"))  # a few hundred steps leave BatchNorm's averages behind
        return model, x, y, xv, yv, ["other", "face"], "raw"
    size = {"mobilenetv2_128": 128, "mobilenetv3small_128": 128, "efficientnetb0_96": 96, "cnn_nobn_32": 32,
            "cnn_outlier_32": 32}[name]
    images, labels = realdata.digits_rgb(size)
    x, xv, y, yv = _split(images, labels, 0.2)
    if name in ("cnn_nobn_32", "cnn_outlier_32"):
        model = realdata.seed_cnn()
        _fit(model, x / 255.0, y, 10)
        if name == "cnn_outlier_32":
            realdata.with_outlier_channels(model)
        return model, x, y, xv, yv, digits, "unit"
    if name == "mobilenetv2_128":
        model = keras.applications.MobileNetV2(alpha=0.5, weights=None, input_shape=(128, 128, 3), classes=10)
        _fit(model, x / 127.5 - 1, y, 8)
        realdata.warm_batchnorm(model, (x[:256] / 127.5 - 1).astype("float32"))
        return model, x, y, xv, yv, digits, "symmetric"
    if name == "mobilenetv3small_128":  # Rescaling to [-1, 1] inside (include_preprocessing)
        model = keras.applications.MobileNetV3Small(weights=None, input_shape=(128, 128, 3), classes=10)
        _fit(model, x, y, 10)
        realdata.warm_batchnorm(model, x[:256].astype("float32"))
        return model, x, y, xv, yv, digits, "raw"
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(96, 96, 3), classes=10)  # Rescaling inside
    _fit(model, x, y, 8)
    realdata.warm_batchnorm(model, x[:256].astype("float32"))
    return model, x, y, xv, yv, digits, "raw"


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray, names: list[str]) -> Path:
    import cv2

    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:05d}.png"), image[:, :, ::-1])
    return root


def latencies(fmt: str, files: dict[str, Path]) -> dict:
    """Per-round medians in two fresh runtime-only processes, and the speed-up kept per round."""
    spec = {"probe": "variants", "variants": {k: {"kind": "raw", "model": str(p)} for k, p in files.items()},
            "threads": 2, "rounds": 5, "per_round": 150, "block": 20 if fmt == "onnx" else 1, "warmup": 20}
    rounds = [r for _ in range(2) for r in child_rounds(spec, ENGINES[fmt])]
    kept = [(r["fp32"] - r["chosen"]) / (r["fp32"] - r["int8"]) for r in rounds
            if "chosen" in r and r["fp32"] > r["int8"]]
    return {"rounds": rounds, **{f"{k}_ms": statistics.median(r[k] for r in rounds) for k in files},
            "kept": statistics.median(kept) if kept else None, "kept_spread": spread_of(kept) if kept else None}


def run_model(name: str, work: Path) -> dict:
    from edgecls.converters import export

    t0 = time.perf_counter()
    model, x, y, xv, yv, names, pixels = build(name)
    train_s = time.perf_counter() - t0
    train = write_folder(work / name / "train", x, y, names)
    val = write_folder(work / name / "val", xv, yv, names)
    common = {"calibration": train, "validation": val, "labels": names, "pixels": pixels, "name": name, "force": True}
    full = export(model, work / name / "full", quantize=["fp32", "int8"], min_agreement=0.0, **common)
    t0 = time.perf_counter()
    budget = export(model, work / name / "budget", quantize=["int8"], **BUDGET, **common)
    budget_s = time.perf_counter() - t0
    row = {"model": name, "train_s": round(train_s, 1), "budget_export_s": round(budget_s, 1),
           "keras_accuracy": full.files[0].validation.keras_accuracy, "val_images": len(yv), "formats": {}}
    for fmt in ("tflite", "onnx"):
        files = {f.quantization: f for f in full.files if f.format == fmt}
        chosen = next(f for f in budget.files if f.format == fmt)
        same = chosen.rung == "int8"  # the default full-int8 graph: the same file but for its card
        lat = latencies(fmt, {"fp32": files["fp32"].path, "int8": files["int8"].path,
                              **({} if same else {"chosen": chosen.path})})
        if same:
            lat.update(chosen_ms=lat["int8_ms"], kept=1.0, kept_spread=None)
        row["formats"][fmt] = {
            "int8": _file(files["int8"]), "budget": {**_file(chosen), "ladder": chosen.to_dict()["quantization_ladder"]},
            "fp32_size_bytes": files["fp32"].size_bytes, "latency": lat,
        }
    return row


def _file(f) -> dict:
    v = f.validation
    return {"rung": f.rung, "passed": f.passed, "accuracy": v.accuracy, "top1_agreement": v.top1_agreement,
            "drop_pt": None if v.accuracy_drop is None else v.accuracy_drop * 100, "size_bytes": f.size_bytes,
            "float_layers": f.float_nodes}


def markdown(rows: list[dict], date: str) -> str:
    lines = [f"# Quantization ladder on a model suite ({date})", "",
             "Full int8 against `--max-drop 0.5 --min-agreement 0.98` (both must hold), per model and format. "
             "drop: Keras accuracy − file accuracy in points on the held-out images; agree: top-1 agreement with "
             "Keras; ms: raw engine call, median over 2 fresh runtime-only processes × 5 rounds (fp32, int8 "
             "and the chosen file alternating); kept: (fp32 − chosen) / (fp32 − int8), median of the per-round "
             "values (range in brackets). Produced by `python -m benchmarks.ladder_suite`.", "",
             "| model | format | Keras acc | int8 drop pt | int8 agree | budget: rung (float nodes) | drop pt | agree "
             "| fp32 ms | int8 ms | chosen ms | kept | MB int8 → chosen | export s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    kept_all = []
    for r in rows:
        for fmt, d in r["formats"].items():
            i8, b, lat = d["int8"], d["budget"], d["latency"]
            spread = lat["kept_spread"]
            if lat["int8_ms"] > NO_GAIN * lat["fp32_ms"]:  # no speed-up to keep: the ratio is noise over noise
                kept = "— (int8 not faster)"
            else:
                kept = f"{lat['kept']:.2f}" + (f" ({spread['min']:.2f}–{spread['max']:.2f})" if spread else " (same graph)")
                kept_all.append(lat["kept"])
            lines.append(
                f"| {r['model']} | {fmt} | {r['keras_accuracy']:.4f} | {i8['drop_pt']:+.2f} | {i8['top1_agreement']:.4f} "
                f"| {b['rung']} ({b['float_layers']}){'' if b['passed'] else ' MISSED'} | {b['drop_pt']:+.2f} "
                f"| {b['top1_agreement']:.4f} | {lat['fp32_ms']:.3f} | {lat['int8_ms']:.3f} | {lat['chosen_ms']:.3f} "
                f"| {kept} | {i8['size_bytes'] / 1e6:.2f} → {b['size_bytes'] / 1e6:.2f} | {r['budget_export_s']:.0f} |")
    if kept_all:
        lines += ["", f"Median speed-up kept over the files whose int8 is faster than fp32: "
                      f"{statistics.median(kept_all):.2f} (goal ≥ 0.8; {len(kept_all)} files); a file whose rung is "
                      "full int8 is the same graph as the int8 file and keeps it all."]
    lines += ["", "Export seconds are for both formats with the budget (2 cores), training excluded; "
                  "validation images: " + ", ".join(f"{r['model']} {r['val_images']}" for r in rows) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenetv2_128,mobilenetv3small_128,efficientnetb0_96,cnn_nobn_32,"
                                            "faces_2class,cnn_outlier_32")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--append", action="store_true", help="add the rows to today's results instead of replacing them")
    args = parser.parse_args(argv)
    rows = []
    date = dt.date.today().isoformat()
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.models.split(",")
    if args.append and (args.out / f"ladder-{date}.json").exists():  # rows of the same model are replaced
        rows = [r for r in json.loads((args.out / f"ladder-{date}.json").read_text())["rows"] if r["model"] not in names]
    with tempfile.TemporaryDirectory(prefix="edgecls-ladder-") as work:
        for name in names:
            print(f"{name}: training and exporting", flush=True)
            rows.append(run_model(name, Path(work)))
            publish(args.out, f"ladder-{date}", {"date": date, "budget": BUDGET, "rows": rows}, markdown(rows, date))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
