"""The project's benchmark suite: eight groups of ratios, each measured side by side in one run.

Builds its reference models (the seed CNN trained on scikit-learn's digits, and
MobileNetV2-224 from Keras Applications with weights=None and BatchNorm statistics
set from real images), exports them through the converters, and writes
``benchmarks/results/<date>.json`` and ``.md``. Quote medians; absolute times vary
between machines, the ratios much less.

    python benchmarks/run.py [--runs 300] [--threads 2] [--skip-mediapipe]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from suite.probes import mediapipe_latency, runtime_cold_start, tensorflow_cold_start  # noqa: E402
from suite.streaming import stream_throughput, write_video  # noqa: E402
from suite.timing import interleaved  # noqa: E402

QUANTS = ["fp32", "fp16", "dynamic", "int8"]


def ratio(name: str, value: float, target: float, detail: dict, *, higher_is_better: bool = False) -> dict:
    met = value >= target if higher_is_better else value <= target
    return {"name": name, "value": round(value, 4), "target": target, "met": bool(met),
            "direction": ">=" if higher_is_better else "<=", "detail": detail}


def reference_models(work: Path, threads: int) -> dict:
    import keras

    from edgecls import realdata
    from edgecls.converters import export

    keras.utils.set_random_seed(0)
    images224 = realdata.digits_rgb(224)[0][:96]
    mobilenet = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
    realdata.warm_batchnorm(mobilenet, images224[:32] / 127.5 - 1)
    keras_file = work / "mobilenetv2.keras"
    mobilenet.save(keras_file)
    start = time.perf_counter()
    report = export(keras_file, work / "mnv2", quantize=QUANTS, calibration=images224[:64], pixels="symmetric",
                    name="mobilenetv2", min_agreement=0.0)
    export_s = time.perf_counter() - start
    files = {(f.format, f.quantization): f.path for f in report.files}
    return {"keras": mobilenet, "keras_file": keras_file, "files": files, "export_s": export_s,
            "export_report": report.to_dict()}


def ensure_mediapipe() -> Path:
    python = ROOT / ".cache" / "mediapipe-venv" / "bin" / "python"
    if not python.exists():
        subprocess.run(["bash", str(ROOT / "tests" / "setup_mediapipe.sh")], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-mediapipe", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--render", type=Path, help="Only re-render the markdown page of a results JSON file.")
    args = parser.parse_args()
    if args.render:
        args.render.with_suffix(".md").write_text(render(json.loads(args.render.read_text())))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edgecls.bench.measure import camera_frames
    from edgecls.runtime import Classifier
    from edgecls.runtime.backends import BackendConfig, open_backend

    ratios, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = reference_models(work, args.threads)
        files = models["files"]
        frames = camera_frames((640, 480))
        int8_tflite = files[("tflite", "int8")]

        def raw(path: Path):
            backend = open_backend(path, config=BackendConfig(num_threads=args.threads))
            shape = tuple(d or 1 for d in backend.input.shape)
            tensor = np.random.default_rng(0).integers(0, 256, shape).astype(backend.input.dtype)
            return backend, tensor

        # 1. Runtime overhead: end to end on a 640x480 frame over the raw engine call, with OpenCV's
        # default thread pool (quoted) and single-threaded (it competes with the engine's pool on 2 cores).
        import cv2

        clf = Classifier.from_path(int8_tflite, num_threads=args.threads)
        backend, tensor = raw(int8_tflite)
        overhead = {}
        for cv_threads in (cv2.getNumThreads(), 1):
            cv2.setNumThreads(cv_threads)
            overhead[cv_threads] = interleaved({"edgecls": lambda i: clf.classify(frames[i % len(frames)]),
                                                "raw": lambda i: backend.run(tensor)}, args.runs)
        t, single = overhead[max(overhead)], overhead[1]
        cv2.setNumThreads(max(overhead))
        ratios.append(ratio("runtime overhead (end to end / raw invoke), MobileNetV2 int8 TFLite",
                            t["edgecls"] / t["raw"], 1.15,
                            {"edgecls_p50_ms": t["edgecls"], "raw_p50_ms": t["raw"],
                             "ratio_with_cv2_setNumThreads_1": round(single["edgecls"] / single["raw"], 4)}))

        # 2. Quantization speed-up: int8 over fp32 raw latency, per engine.
        for fmt, target in (("tflite", 0.5), ("onnx", 0.65)):
            (b32, x32), (b8, x8) = raw(files[(fmt, "fp32")]), raw(files[(fmt, "int8")])
            t = interleaved({"fp32": lambda i, b=b32, x=x32: b.run(x), "int8": lambda i, b=b8, x=x8: b.run(x)}, args.runs)
            ratios.append(ratio(f"quantization speed-up (int8 / fp32), {fmt}", t["int8"] / t["fp32"], target,
                                {"fp32_p50_ms": t["fp32"], "int8_p50_ms": t["int8"]}))

        # 3. Against the framework: edgecls int8 end to end over Keras predict on one image.
        keras_model = models["keras"]
        one = (frames[0][None, 16:240, 16:240, ::-1] / 127.5 - 1).astype(np.float32)
        t = interleaved({"edgecls": lambda i: clf.classify(frames[i % len(frames)]),
                         "keras": lambda i: keras_model.predict(one, verbose=0)}, max(30, args.runs // 5), warmup=3)
        ratios.append(ratio("edgecls int8 end to end / Keras model.predict (one image)", t["edgecls"] / t["keras"],
                            1 / 30, {"edgecls_p50_ms": t["edgecls"], "keras_predict_p50_ms": t["keras"]}))

        # 4. Against MediaPipe Tasks ImageClassifier on the same .tflite and frames.
        if args.skip_mediapipe:
            notes.append("MediaPipe comparison skipped (--skip-mediapipe)")
        else:
            npz = work / "frames.npz"
            np.savez(npz, frames=np.stack([f[:, :, ::-1] for f in frames]))
            mp = mediapipe_latency(ensure_mediapipe(), int8_tflite, npz, args.runs)
            ours = interleaved({"edgecls": lambda i: clf.classify(frames[i % len(frames)])}, args.runs)["edgecls"]
            ratios.append(ratio("edgecls / MediaPipe ImageClassifier end to end (640x480, same int8 .tflite)",
                                ours / mp["p50_ms"], 0.7, {"edgecls_p50_ms": ours, "mediapipe_p50_ms": mp["p50_ms"],
                                                           "mediapipe_version": mp["mediapipe"]}))
        clf.close()

        # 5. Cold start, and 6. memory of a runtime-only process.
        ours = runtime_cold_start(int8_tflite, args.threads)
        theirs = tensorflow_cold_start(models["keras_file"])
        ratios.append(ratio("cold start (runtime import+load+first result / TensorFlow import+load_model+predict)",
                            ours["total_s"] / theirs["total_s"], 0.15,
                            {f"edgecls_{k}": v for k, v in ours.items()} | {f"tensorflow_{k}": v for k, v in theirs.items()}))
        ratios.append(ratio("cold start of MobileNetV2 int8, seconds", ours["total_s"], 0.5, {}))
        ratios.append(ratio("peak RSS MB, runtime-only process classifying with MobileNetV2 int8",
                            ours["peak_rss_mb"], 150, {"tensorflow_process_mb": theirs["peak_rss_mb"]}))

        # 7. Export cost.
        ratios.append(ratio("export MobileNetV2 to 2 formats x 4 quantizations with validation, seconds",
                            models["export_s"], 90, {"files": len(files)}))

        # 8. Stream throughput in video mode (decode thread) over the sequential loop and over the bound
        # 1 / max(decode, classify); one engine thread, so decoding has the other core.
        video = write_video(work / "stream.avi", frames, 300)
        with Classifier.from_path(int8_tflite, num_threads=1) as one_thread:
            st = stream_throughput(one_thread, video, repeats=7)
        detail = {k: round(v, 3) if isinstance(v, float) else v for k, v in st.items()} | {"engine_threads": 1}
        ratios.append(ratio("stream video mode / sequential read+classify loop (FPS), MobileNetV2 int8, 640x480 MJPG",
                            st["over_sequential"], 1.2, detail, higher_is_better=True))
        ratios.append(ratio("stream video mode / bound 1 / max(decode, classify) (FPS)",
                            st["over_bound"], 0.9, {}, higher_is_better=True))

    stamp = dt.date.today().isoformat()
    result = {"date": stamp, "machine": {"python": platform.python_version(), "processor": platform.machine(),
                                          "cores": os.cpu_count()}, "threads": args.threads, "runs": args.runs,
              "ratios": ratios, "notes": notes}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / f"{stamp}.md").write_text(render(result))
    print(render(result))


# What limits a ratio when it misses its target (from profiling on the 2-core x86-64 machine).
LIMITS = {
    "runtime overhead": "preprocessing is ~0.24 ms (two resize passes for an anti-aliased 640x480 -> 224x224, "
    "the colour swap; a uint8 model gets the resized array itself), Python and top-5 ~30 us; OpenCV's and the "
    "engine's thread pools compete on 2 cores (the cv2.setNumThreads(1) variant is in the details). The ratio also "
    "grows as the int8 engine gets faster.",
    "quantization speed-up (int8 / fp32), tflite": "XNNPACK's int8 kernels on this CPU: the export is the standard "
    "full-integer TFLiteConverter path; the only graph part of ours, the baked normalization, is one MUL+ADD "
    "(Keras' Normalization layer lowered to SUB+DIV cost ~0.8 ms in int8 and was replaced).",
    "edgecls int8 end to end / Keras": "bounded by the LiteRT int8 latency above (and Keras' own predict time, "
    "71-113 ms across runs here).",
    "edgecls / MediaPipe": "noisy on this shared machine: 0.51-0.73 across runs of the same code.",
}


def render(result: dict) -> str:
    """The markdown results page for one run."""
    lines = [f"# Benchmark results {result['date']}", "",
             f"{result['machine']['cores']} cores, {result['machine']['processor']}, Python "
             f"{result['machine']['python']}, {result['threads']} threads, medians of {result['runs']} interleaved runs.",
             "", "| # | ratio | value | target | met |", "|---|---|---|---|---|"]
    for i, r in enumerate(result["ratios"], 1):
        sign = "≥" if r.get("direction") == ">=" else "≤"
        lines.append(f"| {i} | {r['name']} | {r['value']:.3f} | {sign} {r['target']:.3g} | {'yes' if r['met'] else 'NO'} |")
    lines += ["", "Details (ms unless stated):", ""]
    for r in result["ratios"]:
        if r["detail"]:
            lines.append(f"- {r['name']}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                          for k, v in r["detail"].items()))
    missed = [(r["name"], text) for r in result["ratios"] if not r["met"]
              for key, text in LIMITS.items() if r["name"].startswith(key)]
    if missed:
        lines += ["", "What limits the missed targets:", ""] + [f"- {name}: {text}" for name, text in missed]
    lines += [f"- {n}" for n in result.get("notes", [])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
