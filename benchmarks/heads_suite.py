"""Scores users can act on, for the heads the best-known tutorials end in: each shape trained on the digits,
exported to TFLite and ONNX in fp32 and int8 (``max_drop=1``), and its files' scores compared with the Keras
model's probabilities. "Before" is what a file outputs without the head stage: the model's raw outputs,
reported as scores (a binary ``Dense(1)`` was refused outright).

    python -m benchmarks.heads_suite [--shapes tutorial-logits,binary-logit,transfer-binary]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.suite.publish import publish
from edgecls import realdata
from edgecls.converters import export
from edgecls.converters.heads import to_probabilities
from edgecls.runtime import Classifier

SHAPES = ("tutorial-logits", "binary-logit", "transfer-binary")
TITLE = {"tutorial-logits": "TensorFlow tutorial: Dense(10), from_logits=True",
         "binary-logit": "keras.io binary: Dense(1), from_logits=True",
         "transfer-binary": "transfer learning: preprocess_input, frozen MobileNetV2, Dense(1)",
         "binary-sigmoid": "Dense(1, sigmoid)", "softmax-layer": "linear Dense(10) + Softmax layer",
         "nested-head": "head in a nested Sequential", "multilabel-sigmoid": "multi-label Dense(4, sigmoid)"}


def _folders(root: Path, shape: str, images: np.ndarray, labels: np.ndarray):
    if shape == "multilabel-sigmoid":
        return None  # not in this suite: its table is per label
    if "binary" in shape:
        realdata.write_digits(root / "val", images[1400:], realdata.binary_labels(labels[1400:]), ("low", "high"))
        realdata.write_digits(root / "calib", images[:300], realdata.binary_labels(labels[:300]), ("low", "high"))
        return root / "val", root / "calib", realdata.binary_labels(labels[1400:])
    realdata.write_digits(root / "val", images[1400:], labels[1400:])
    realdata.write_digits(root / "calib", images[:300], labels[:300])
    return root / "val", root / "calib", labels[1400:]


def measure(shape: str, images: np.ndarray, labels: np.ndarray, work: Path) -> dict:
    val, calib, truth = _folders(work, shape, images, labels)
    model = realdata.head_model(shape, images[:1400], labels[:1400])
    model.save(work / "model.keras")
    raw = model.predict(images[1400:].astype("float32"), verbose=0)
    t0 = time.perf_counter()
    report = export(work / "model.keras", work / "out", quantize=["fp32", "int8"], calibration=calib,
                    validation=val, max_drop=1.0, positive="high" if "binary" in shape else None)
    seconds = time.perf_counter() - t0
    kind = report.head.kind
    probabilities = to_probabilities(kind, raw)
    row = {"shape": shape, "title": TITLE[shape], "head": kind, "baked": report.head.baked,
           "export_s": round(seconds, 1), "keras_accuracy": float((probabilities.argmax(1) == truth).mean()),
           "before": {"scores": "refused (output (None, 1))" if raw.shape[1] == 1 else "raw logits",
                      "max_diff": None if raw.shape[1] == 1 else float(np.abs(raw - probabilities).max()),
                      "row_sums": None if raw.shape[1] == 1 else [float(raw.sum(1).min()), float(raw.sum(1).max())]},
           "files": []}
    for exported in report.files:
        with Classifier.from_path(exported.path) as clf:
            scores = clf.scores_batch(list(images[1400:]), color="rgb")
        row["files"].append({"file": exported.path.name, "holds": exported.rung,
                             "max_diff": float(np.abs(scores - probabilities).max()),
                             "row_sums": [float(scores.sum(1).min()), float(scores.sum(1).max())],
                             "accuracy": float((scores.argmax(1) == truth).mean())})
    return row


def page(rows: list[dict], when: str) -> str:
    lines = [f"# Heads: scores before and after ({when})", "",
             "Each model trained on 1,400 digits, checked on the 397 held-out ones; max |Δ| is the largest "
             "difference between a file's scores and the Keras model's probabilities (softmax / [1 − p, p] of its "
             "outputs); sums are the rows' range.", "",
             "| model | head found | baked | before: scores, max Δ, sums | file | holds | after: max Δ | sums | "
             "accuracy (Keras) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r["before"]
        before = b["scores"] if b["max_diff"] is None else \
            f"{b['scores']}, {b['max_diff']:.2f}, {b['row_sums'][0]:.1f}..{b['row_sums'][1]:.1f}"
        for i, f in enumerate(r["files"]):
            lead = (r["title"], r["head"], r["baked"] or "-", before) if i == 0 else ("", "", "", "")
            lines.append(f"| {' | '.join(lead)} | {f['file']} | {f['holds']} | {f['max_diff']:.2e} | "
                         f"{f['row_sums'][0]:.4f}..{f['row_sums'][1]:.4f} | {f['accuracy']:.4f} "
                         f"({r['keras_accuracy']:.4f}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    images, labels = realdata.digits_rgb()
    rows = []
    for shape in args.shapes.split(","):
        with tempfile.TemporaryDirectory(prefix="edgecls-heads-") as work:
            rows.append(measure(shape, images, labels, Path(work)))
    when = dt.date.today().isoformat()
    publish(args.out, f"heads-{when}", {"date": when, "rows": rows}, page(rows, when))


if __name__ == "__main__":
    main()
