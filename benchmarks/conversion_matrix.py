"""Conversion matrix: one model of every Keras Applications family, and the seed CNN in every save format,
through ``edgecls export`` to TFLite and ONNX in fp32 and int8.

Each row is a real classifier: the architecture with ``weights=None`` at the smallest input
size it accepts, trained briefly on scikit-learn's digits with the pixel normalization its
family's ``preprocess_input`` uses, BatchNorm statistics then set from real images. A build
process trains and saves it (``.keras``; the seed CNN also as a tf_keras ``.h5`` and as a
SavedModel folder) with train/val image folders; a second process runs the real CLI,
``edgecls export ... --json``, whose peak RSS is read from ``wait4``. Per row: exported files,
fp32 top-1 agreement and max |Δ| against Keras, int8 agreement, pass/fail, export time, peak
RSS, and the error when the export fails.

    python -m benchmarks.conversion_matrix                   # every row; writes benchmarks/results/
    python -m benchmarks.conversion_matrix --rows ConvNeXtTiny,seed_h5 --out /tmp/m

Rows run one at a time (2 cores); the whole matrix takes about an hour here. CI runs
``--rows ci``, a rotating slice (:func:`ci_slice`; ``tests/converters/test_conversion_matrix.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.suite.publish import publish
from benchmarks.suite.timing import module, root_env, run_measured
from edgecls.runtime.card import holds_text

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    name: str
    size: int
    pixels: tuple[str, ...]
    """The ``edgecls export`` flags that say how the model was trained (its preprocess_input)."""
    save: str = "keras"
    """``keras`` (.keras), ``h5`` (tf_keras .h5) or ``savedmodel`` (a SavedModel folder)."""
    learning_rate: float = 1e-3


SYMMETRIC = ("--pixels", "symmetric")  # preprocess_input mode "tf": x/127.5 - 1
IMAGENET = ("--pixels", "imagenet")  # mode "torch"
CAFFE = ("--mean", "123.68,116.779,103.939", "--std", "1,1,1")  # mode "caffe" on RGB input (no BGR swap: gray digits)
RAW = ("--pixels", "raw")  # the model has its own Rescaling/Normalization layers

ROWS = {row.name: row for row in [
    Row("Xception", 71, SYMMETRIC),
    Row("VGG16", 32, CAFFE, learning_rate=1e-4),  # no BatchNorm: at 1e-3 it stays at chance
    Row("ResNet50", 32, CAFFE),
    Row("ResNet50V2", 32, SYMMETRIC),
    Row("InceptionV3", 75, SYMMETRIC),
    Row("InceptionResNetV2", 75, SYMMETRIC),
    Row("MobileNet", 32, SYMMETRIC),
    Row("MobileNetV2", 32, SYMMETRIC),
    Row("MobileNetV3Small", 32, RAW),
    Row("MobileNetV3Large", 32, RAW),
    Row("DenseNet121", 32, IMAGENET),
    Row("NASNetMobile", 32, SYMMETRIC),
    Row("EfficientNetB0", 32, RAW),
    Row("EfficientNetV2B0", 32, RAW),
    Row("ConvNeXtTiny", 32, RAW),
    Row("seed_keras", 32, ("--pixels", "unit"), "keras"),
    Row("seed_h5", 32, ("--pixels", "unit"), "h5"),
    Row("seed_savedmodel", 32, ("--pixels", "unit"), "savedmodel"),
]}
TRAIN, CALIB = 1400, 100


def ci_slice(day: int) -> list[str]:
    """The rows CI runs on ``day`` (a date's ordinal): ConvNeXtTiny (the graph rewrites' case), one other
    Keras Applications family and one seed save format, rotating, so every row runs within 14 days."""
    families = [n for n in ROWS if not n.startswith("seed") and n != "ConvNeXtTiny"]
    seeds = [n for n in ROWS if n.startswith("seed")]
    return ["ConvNeXtTiny", families[day % len(families)], seeds[day % len(seeds)]]


def _scale(pixels: tuple[str, ...], x):
    """Apply the normalization the export flags describe to float 0-255 images (the training inputs)."""
    import numpy as np

    if pixels == CAFFE:
        return x - np.array([123.68, 116.779, 103.939], "float32")
    return {"symmetric": lambda v: v / 127.5 - 1.0, "imagenet": lambda v: (v / 255.0 - np.array(
        [0.485, 0.456, 0.406], "float32")) / np.array([0.229, 0.224, 0.225], "float32"),
            "unit": lambda v: v / 255.0, "raw": lambda v: v}[pixels[1]](x)


def build(row: Row, out: Path, epochs: int) -> dict:
    """Train and save the row's model, write train/val folders; returns what the export is compared with."""
    import numpy as np

    from edgecls.realdata import digits_rgb, seed_cnn, warm_batchnorm, write_digits

    images, labels = digits_rgb(row.size)
    write_digits(out / "train", images[:CALIB], labels[:CALIB])
    write_digits(out / "val", images[TRAIN:], labels[TRAIN:])
    x = _scale(row.pixels, images.astype("float32"))
    if row.save == "h5":
        import tf_keras as keras
    else:
        import keras
    keras.utils.set_random_seed(0)
    if row.name.startswith("seed"):
        model = _tf_keras_seed(keras) if row.save == "h5" else seed_cnn()
    else:
        model = getattr(keras.applications, row.name)(weights=None, input_shape=(row.size, row.size, 3), classes=10)
    model.compile(keras.optimizers.Adam(row.learning_rate), "sparse_categorical_crossentropy")
    t0 = time.perf_counter()
    model.fit(x[:TRAIN], labels[:TRAIN], epochs=epochs, batch_size=32, verbose=0)
    warm_batchnorm(model, x[:256])
    train_s = time.perf_counter() - t0
    accuracy = float((np.asarray(model(x[TRAIN:], training=False)).argmax(1) == labels[TRAIN:]).mean())
    path = {"keras": out / "model.keras", "h5": out / "model.h5", "savedmodel": out / "saved_model"}[row.save]
    if row.save == "savedmodel":
        model.export(str(path), verbose=False)
    else:
        model.save(path)
    return {"model": str(path), "keras_accuracy": accuracy, "train_s": round(train_s, 1), "epochs": epochs,
            "params": int(model.count_params())}


def _tf_keras_seed(keras):
    """The seed CNN in tf_keras (a Keras 2 ``.h5`` as older projects save it)."""
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(64, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])


def _run(argv: list[str], log: Path, env: dict | None = None) -> tuple[int, float, float]:
    """Run ``argv`` with stdout to ``log`` and stderr beside it; (exit code, seconds, peak RSS MB)."""
    return run_measured(argv, log, log.with_suffix(".err"), env=env)


BUDGET = ("--max-drop", "1.0")
"""What the exports must hold: within 1 accuracy point of Keras on the 397 held-out digits (4 images).
Briefly trained models have small score margins, so top-1 agreement understates int8 files that
classify as well as Keras; the accuracy budget is what a user cares about."""


def run_row(row: Row, out: Path, epochs: int, quantize: str) -> dict:
    """Build the row's model in one process and export it with the CLI in another."""
    out.mkdir(parents=True, exist_ok=True)
    code, _, _ = _run(module("benchmarks.conversion_matrix", "--build", row.name, "--out", str(out), "--epochs",
                             str(epochs)), out / "build.json", env=root_env())
    if code != 0:
        return {"row": row.name, "error": "build failed: " + (out / "build.err").read_text()[-500:]}
    built = json.loads((out / "build.json").read_text())
    argv = [sys.executable, "-m", "edgecls", "export", built["model"], "-o", str(out / "exported"), "--force",
            "--quantize", quantize, "--calib", str(out / "train"), "--val", str(out / "val"), "--json", *row.pixels,
            *BUDGET]
    code, seconds, peak = _run(argv, out / "report.json")
    result = {"row": row.name, "size": row.size, "save": row.save, "pixels": " ".join(row.pixels),
              "budget": " ".join(BUDGET),
              **{k: built[k] for k in ("keras_accuracy", "train_s", "epochs", "params")},
              "export_s": round(seconds, 1), "peak_rss_mb": round(peak), "exit_code": code}
    try:
        report = json.loads((out / "report.json").read_text())
    except ValueError:
        lines = [line for line in (out / "report.err").read_text().splitlines() if line.startswith("error:")]
        return result | {"error": lines[-1] if lines else "no report"}
    result["files"] = [{"format": f["format"], "quantization": f["quantization"], "passed": f["passed"],
                        "size_mb": round(f["size_bytes"] / 1e6, 2), "rung": f.get("rung", f["quantization"]),
                        "float_nodes": len((f.get("quantization_ladder") or {}).get("float_layers", [])),
                        **{k: f["validation"][k] for k in ("top1_agreement", "max_abs_diff", "accuracy",
                                                           "accuracy_drop")}}
                       for f in report["files"]]
    result["pixels_check"] = report.get("pixels")
    return result


def holds(files: dict) -> str:
    """What each int8 file holds: the quantization ladder's rung (rows measured before it: ``int8``)."""
    return " / ".join(holds_text(files[(f, "int8")].get("rung", "int8"), files[(f, "int8")].get("float_nodes", 0))
                      if (f, "int8") in files else "–" for f in ("tflite", "onnx"))


def markdown(results: list[dict], started: str) -> str:
    seconds = sum(r.get("train_s", 0) + r.get("export_s", 0) for r in results)
    lines = [f"# Conversion matrix, {started}", "",
             "`python -m benchmarks.conversion_matrix` on this 2-core x86-64 machine: each model trained briefly on "
             "the digits at the smallest input size its family accepts, then `edgecls export --quantize fp32,int8 "
             f"--calib (100 images) --val (397 held-out digits)`. Training and export, all rows: "
             f"{seconds / 60:.1f} min (`export s` and `peak RSS MB` are the `edgecls export` process alone).", "",
             "| model | input | save | Keras acc | fp32 agree TFLite / ONNX | fp32 max abs diff TFLite / ONNX "
             "| int8 agree TFLite / ONNX | int8 drop pt TFLite / ONNX | int8 holds TFLite / ONNX | budget | all pass "
             "| export s | peak RSS MB | error |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        files = {(f["format"], f["quantization"]): f for f in r.get("files", [])}

        def cell(q: str, key: str, fmt: str, files: dict = files, scale: float = 1.0) -> str:
            return " / ".join(fmt.format(files[(f, q)][key] * scale) if (f, q) in files and files[(f, q)].get(key)
                              is not None else "–" for f in ("tflite", "onnx"))

        ok = bool(files) and all(f["passed"] for f in files.values()) and "error" not in r
        lines.append(
            f"| {r['row']} | {r.get('size', '')} | {r.get('save', '')} | {r.get('keras_accuracy', 0):.3f} "
            f"| {cell('fp32', 'top1_agreement', '{:.4f}')} | {cell('fp32', 'max_abs_diff', '{:.1e}')} "
            f"| {cell('int8', 'top1_agreement', '{:.3f}')} | {cell('int8', 'accuracy_drop', '{:+.2f}', scale=100)} "
            f"| {holds(files)} "
            f"| {r.get('budget', 'agreement ≥ 0.999 fp32, ≥ 0.98 int8')} | {'yes' if ok else 'NO'} | {r.get('export_s', '')} "
            f"| {r.get('peak_rss_mb', '')} | {r.get('error', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS),
                        help="comma list of rows (default: all), or 'ci' for today's CI slice")
    parser.add_argument("--out", type=Path, help="work folder and results (default: benchmarks/results/)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quantize", default="fp32,int8")
    parser.add_argument("--update", type=Path, metavar="RESULTS_JSON",
                        help="re-run --rows and replace them in this results file (and its .md page)")
    parser.add_argument("--build", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build:  # child process: train and save one row's model
        print(json.dumps(build(ROWS[args.build], args.out, args.epochs)))
        return 0
    if args.rows == "ci":
        args.rows = ",".join(ci_slice(dt.date.today().toordinal()))
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    import tempfile

    started = dt.date.today().isoformat()
    results = []
    with tempfile.TemporaryDirectory(prefix="edgecls-matrix-") as work:
        for name in names:
            results.append(run_row(ROWS[name], Path(work) / name, args.epochs, args.quantize))
            print(json.dumps(results[-1]), flush=True)
    if args.update:
        fresh = {r["row"]: r for r in results}
        earlier = json.loads(args.update.read_text())
        earlier = earlier["rows"] if isinstance(earlier, dict) else earlier  # pages before 2026-12-06: a list
        results = [fresh.pop(r["row"], r) for r in earlier] + list(fresh.values())
        target = args.update
    else:
        target = (args.out or RESULTS) / f"conversion-matrix-{started}.json"
    publish(target.parent, target.stem, {"date": started, "rows": results}, markdown(results, started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
