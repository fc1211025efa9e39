"""Which quantization defaults: accuracy and speed of each format × quantization, side by side.

- Accuracy: top-1 agreement with Keras and accuracy on the held-out digits for
  (a) the seed CNN trained on scikit-learn's digits and (b) MobileNetV2 at
  64×64 trained one epoch on them (a depthwise-conv model, the hard case for int8).
- Speed: MobileNetV2 224×224 (weights=None, BatchNorm statistics set from real
  images), raw engine call on a prepared tensor, median of N runs, 2 threads.
ONNX int8 is measured per-tensor (edgecls' default) and per-channel (``--per-channel``).

    python -m benchmarks.quantization [--runs 200] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.suite.publish import RESULTS, publish
from edgecls import realdata

QUANTS = ["fp32", "fp16", "dynamic", "int8"]


def engine_latency(path: Path, runs: int, threads: int = 2) -> float:
    """Median ms of the raw engine call on a prepared input tensor."""
    from edgecls.runtime.backends import BackendConfig, open_backend

    backend = open_backend(path, config=BackendConfig(num_threads=threads))
    shape = tuple(d or 1 for d in backend.input.shape)
    tensor = np.random.default_rng(0).integers(0, 256, shape).astype(backend.input.dtype)
    for _ in range(20):
        backend.run(tensor)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        backend.run(tensor)
        times.append((time.perf_counter() - t) * 1000)
    backend.close()
    return statistics.median(times)


def export_variants(model, out: Path, **kwargs) -> dict:
    """{(format, quantization label): ExportedFile} with ONNX int8 both per-tensor and per-channel."""
    from edgecls.converters import export

    files = {(f.format, f.quantization): f for f in export(model, out, quantize=QUANTS, min_agreement=0.0, **kwargs).files}
    pc = export(model, out / "pc", formats=["onnx"], quantize=["int8"], per_channel=True, min_agreement=0.0, **kwargs)
    files[("onnx", "int8 per-channel")] = pc.files[0]
    return files


def trained(name: str, images: np.ndarray, labels: np.ndarray):
    import keras

    keras.utils.set_random_seed(0)
    if name == "seed":
        model = realdata.seed_cnn()
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(images[:1400] / 255.0, labels[:1400], epochs=8, batch_size=32, verbose=0)
        return model, {}
    model = keras.applications.MobileNetV2(weights=None, input_shape=images.shape[1:], classes=10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(images[:1400].astype("float32"), labels[:1400], epochs=1, batch_size=32, verbose=0)
    realdata.warm_batchnorm(model, images[:256])
    return model, {"pixels": "raw"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import keras

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for key, size in (("seed_cnn", 32), ("mobilenetv2_64", 64)):
            images, labels = realdata.digits_rgb(size)
            model, extra = trained("seed" if key == "seed_cnn" else "mnv2", images, labels)
            train = realdata.write_digits(tmp / key / "train", images[:1400], labels[:1400])
            val = realdata.write_digits(tmp / key / "val", images[1400:], labels[1400:])
            for k, f in export_variants(model, tmp / key / "out", calibration=train, validation=val, name=key, **extra).items():
                results.setdefault(k, {})[key] = {"accuracy": f.validation.accuracy, "agreement": f.validation.top1_agreement,
                                                  "keras_accuracy": f.validation.keras_accuracy}
        keras.utils.set_random_seed(0)
        big = realdata.digits_rgb(224)[0][:64]
        mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
        realdata.warm_batchnorm(mobilenet, big[:32] / 127.5 - 1)
        for k, f in export_variants(mobilenet, tmp / "mnv2_224", calibration=big, pixels="symmetric", name="mnv2").items():
            results[k]["mobilenetv2_224"] = {"ms": engine_latency(f.path, args.runs), "mb": f.size_bytes / 1e6}
    rows = [{"format": fmt, "quantization": q, **{f"{m}_{k}": v for m, d in res.items() for k, v in d.items()}}
            for (fmt, q), res in sorted(results.items())]
    stamp = dt.date.today().isoformat()
    lines = ["| format | quantization | seed CNN accuracy (agreement) | MobileNetV2-64 accuracy (agreement) | MobileNetV2-224 ms | MB |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['quantization']} | {r['seed_cnn_accuracy']:.4f} ({r['seed_cnn_agreement']:.3f}) | "
                     f"{r['mobilenetv2_64_accuracy']:.4f} ({r['mobilenetv2_64_agreement']:.3f}) | "
                     f"{r['mobilenetv2_224_ms']:.2f} | {r['mobilenetv2_224_mb']:.1f} |")
    keras_acc = rows[0]["seed_cnn_keras_accuracy"], rows[0]["mobilenetv2_64_keras_accuracy"]
    lines.append(f"\nKeras accuracy: seed CNN {keras_acc[0]:.4f}, MobileNetV2-64 {keras_acc[1]:.4f}; 2 threads, median of {args.runs} runs.")
    publish(args.out, f"quantization-{stamp}", {"date": stamp, "threads": 2, "runs": args.runs, "rows": rows},
            "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
