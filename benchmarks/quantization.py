"""Which quantization defaults: speed and accuracy of each format × quantization, side by side.

Accuracy: the seed CNN trained on scikit-learn's digits (held-out split).
Speed: MobileNetV2 224×224 (Keras Applications, weights=None, BatchNorm statistics
set from real images), raw engine call on a prepared tensor, median of N runs,
2 threads. ONNX int8 is measured both per-tensor (edgecls' default) and
per-channel, to justify the default. Run:

    python benchmarks/quantization.py [--runs 200] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import builders  # noqa: E402

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


def per_channel_onnx(fp32_onnx: Path, calib: np.ndarray, out: Path) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgecls.converters.formats.onnx_format import _Reader

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_onnx), str(pre))
    quantize_static(str(pre), str(out), _Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    import keras

    from edgecls.converters import export
    from edgecls.converters.validate import compare, keras_scores

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # Accuracy on real digits.
        images, labels = builders.digits_rgb()
        keras.utils.set_random_seed(0)
        seed = builders.seed_cnn()
        seed.compile("adam", "sparse_categorical_crossentropy")
        seed.fit(images[:1400] / 255.0, labels[:1400], epochs=8, batch_size=32, verbose=0)
        train = builders.write_image_folder(tmp / "train", images[:1400], labels[:1400])
        val = builders.write_image_folder(tmp / "val", images[1400:], labels[1400:])
        report = export(seed, tmp / "seed", quantize=QUANTS, calibration=train, validation=val, name="seed")
        accuracy = {(f.format, f.quantization): f.validation for f in report.files}
        fp32_seed = tmp / "seed" / "seed_fp32.onnx"
        calib = builders.ArrayReader(train) if False else None  # placeholder removed below
        from edgecls.converters.data import ImageFolder
        from edgecls.runtime.card import InputSpec

        calib = ImageFolder.scan(train, limit=300).load(InputSpec(32, 32))
        pc = per_channel_onnx(fp32_seed, calib, tmp / "seed" / "seed_int8pc.onnx")
        from edgecls.runtime import Classifier

        with Classifier.from_path(pc) as clf:
            scores = clf.scores_batch(list(images[1400:]), color="rgb")
        accuracy[("onnx", "int8 per-channel")] = compare(scores, keras_scores(seed, images[1400:].astype("float32") / 255.0),
                                                         labels[1400:], "val")
        # Speed on MobileNetV2-224.
        keras.utils.set_random_seed(0)
        big = builders.digits_rgb(224)[0][:64]
        mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
        builders.warm_batchnorm(mobilenet, big[:32] / 127.5 - 1)
        report = export(mobilenet, tmp / "mnv2", quantize=QUANTS, calibration=big, pixels="symmetric",
                        name="mobilenetv2", min_agreement=0.0)
        latency = {(f.format, f.quantization): engine_latency(f.path, args.runs) for f in report.files}
        fp32_mnv2 = tmp / "mnv2" / "mobilenetv2_fp32.onnx"
        from edgecls.converters.normalization import PIXEL_PRESETS, wrap_with_normalization  # noqa: F401

        latency[("onnx", "int8 per-channel")] = engine_latency(per_channel_onnx(fp32_mnv2, big, tmp / "pc.onnx"), args.runs)
        sizes = {(f.format, f.quantization): f.size_bytes for f in report.files}
        for key in sorted(accuracy, key=lambda k: (k[0], k[1])):
            v = accuracy[key]
            rows.append({"format": key[0], "quantization": key[1],
                         "seed_accuracy": round(v.accuracy, 4), "seed_agreement": round(v.top1_agreement, 4),
                         "mobilenetv2_ms": round(latency[key], 3),
                         "mobilenetv2_mb": round(sizes[key] / 1e6, 2) if key in sizes else None})
    stamp = dt.date.today().isoformat()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"quantization-{stamp}.json").write_text(json.dumps({"date": stamp, "threads": 2, "rows": rows}, indent=2))
    lines = ["| format | quantization | seed CNN accuracy | agreement with Keras | MobileNetV2-224 ms | size MB |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['quantization']} | {r['seed_accuracy']:.4f} | {r['seed_agreement']:.4f} | "
                     f"{r['mobilenetv2_ms']:.2f} | {r['mobilenetv2_mb'] if r['mobilenetv2_mb'] is not None else '-'} |")
    (args.out / f"quantization-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
