"""``edgecls demo``: the whole path on real data, in about a minute.

Builds the seed CNN exactly as the seed writes it, trains it on scikit-learn's
bundled handwritten digits (written out as a PNG folder, stratified 80/20
split), saves ``model.h5``, exports TFLite and ONNX in fp32 and int8 with
validation, then evaluates and benchmarks every file against Keras.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.realdata import digits_rgb, seed_cnn, write_digits

__all__ = ["DemoResult", "digits_rgb", "seed_cnn", "write_digits", "run_demo"]

@dataclass
class DemoResult:
    out_dir: Path
    model_h5: Path
    train_dir: Path
    val_dir: Path
    keras_accuracy: float
    keras_p50_ms: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "model": str(self.model_h5), "train": str(self.train_dir),
                "val": str(self.val_dir), "keras_accuracy": self.keras_accuracy, "keras_p50_ms": self.keras_p50_ms,
                "rows": self.rows, "seconds": round(self.seconds, 1)}


def _keras_p50(model, image: np.ndarray, runs: int = 20) -> float:
    batch = image[None].astype("float32") / 255.0
    for _ in range(3):
        model.predict(batch, verbose=0)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model.predict(batch, verbose=0)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def run_demo(out_dir: str | Path, *, epochs: int = 10, runs: int = 100,
             on_step: Callable[[str], None] | None = None, seed: int = 0) -> DemoResult:
    """Run the demo into ``out_dir`` (re-running rewrites its files); ``seed`` seeds the training.
    Raises EdgeclsError."""
    import keras
    from sklearn.model_selection import train_test_split

    from edgecls.bench import BenchOptions, benchmark
    from edgecls.converters import export
    from edgecls.converters.errors import ExportError
    from edgecls.evaluate import evaluate
    from edgecls.runtime import Classifier

    step = on_step or (lambda message: None)
    start = time.perf_counter()
    out = Path(out_dir)
    step("writing scikit-learn's handwritten digits as PNG folders")
    images, labels = digits_rgb()
    x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=0.2, random_state=0, stratify=labels)
    try:
        train_dir = write_digits(out / "data" / "train", x_train, y_train)
        val_dir = write_digits(out / "data" / "val", x_val, y_val)
    except OSError as exc:  # a file where a folder goes, no permission, a full disk
        raise ExportError(f"{out}: cannot write the demo's images ({exc.strerror or exc})") from None

    step(f"training the seed CNN ({epochs} epochs)")
    keras.utils.set_random_seed(seed)
    model = seed_cnn()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train.astype("float32") / 255.0, keras.utils.to_categorical(y_train, 10),
              epochs=epochs, batch_size=32, verbose=0)
    model_h5 = out / "model.h5"
    model.save(model_h5)
    keras_accuracy = float((model.predict(x_val.astype("float32") / 255.0, verbose=0).argmax(1) == y_val).mean())
    keras_p50 = _keras_p50(model, x_val[0])

    step("exporting TFLite and ONNX, fp32 and int8, with validation")
    report = export(model_h5, out / "exported", formats=["tflite", "onnx"], quantize=["fp32", "int8"],
                    calibration=train_dir, validation=val_dir, force=True)
    result = DemoResult(out, model_h5, train_dir, val_dir, keras_accuracy, keras_p50)
    for f in report.files:
        step(f"evaluating and benchmarking {f.path.name}")
        with Classifier.from_path(f.path) as clf:
            accuracy = evaluate(clf, val_dir).top1
        bench = benchmark(f.path, BenchOptions(runs=runs, cold_start=False))
        p50 = bench.stages["end_to_end"].p50
        result.rows.append({"file": str(f.path), "format": f.format, "quantization": f.quantization,
                            "size_mb": round(f.size_bytes / 1e6, 3), "accuracy": accuracy,
                            "p50_ms": round(p50, 4), "speedup_vs_keras": round(keras_p50 / p50, 1),
                            "validation": f.validation.to_dict()})
    result.seconds = time.perf_counter() - start
    (out / "demo.json").write_text(json.dumps(result.to_dict(), indent=2))
    return result
