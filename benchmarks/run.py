"""The project's benchmark suite: eight groups of ratios, each measured side by side in one run.

Builds its reference model (MobileNetV2-224 from Keras Applications with weights=None and
BatchNorm statistics set from real images), exports it through the converters, and measures
every latency in fresh runtime-only processes, as a user deploys (no TensorFlow, no Keras model,
no engine but the probe's own; ``suite/child.py``). Each ratio pools the rounds of at least two
processes; each round interleaves the variants. The page reports the median of the per-round
ratios with their min/median/max; a ratio whose rounds range over more than 10 % is measured
again and flagged when it stays so (``suite/rounds.py``). Writes
``benchmarks/results/<date>.json`` and ``.md``; absolute times vary between machines, the ratios
much less.

    python -m benchmarks.run [--runs 600] [--rounds 5] [--processes 2] [--threads 2] [--skip-mediapipe]
    python -m benchmarks.run --compare A.json B.json    # two runs, ratio by ratio (goal: within 5 %)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.suite.probes import keras_rounds, mediapipe_rounds, runtime_cold_start, tensorflow_cold_start
from benchmarks.suite.publish import RESULTS, machine, publish
from benchmarks.suite.rounds import child_rounds, over_processes
from benchmarks.suite.streaming import write_video

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


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
    return {"keras_file": keras_file, "files": files, "export_s": export_s,
            "export_report": report.to_dict()}


def ensure_mediapipe() -> Path:
    python = ROOT / ".cache" / "mediapipe-venv" / "bin" / "python"
    if not python.exists():
        subprocess.run(["bash", str(ROOT / "tests" / "setup_mediapipe.sh")], check=True)
    return python


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=600, help="Timed calls per variant and process.")
    parser.add_argument("--rounds", type=int, default=5, help="Rounds per process (variants interleave each round).")
    parser.add_argument("--processes", type=int, default=2, help="Fresh processes per probe (at least 2).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-mediapipe", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", help="Results file name (default: the date).")
    parser.add_argument("--render", type=Path, help="Only re-render the markdown page of a results JSON file.")
    parser.add_argument("--compare", type=Path, nargs=2, metavar="JSON",
                        help="Compare two results files ratio by ratio (markdown to stdout).")
    args = parser.parse_args()
    if not (args.render or args.compare) and args.processes < 2:
        parser.error("--processes must be at least 2")
    return args


LITERT, ORT = "ai_edge_litert", "onnxruntime"


class _Run:
    """One run of the eight groups over the reference model's files, in ``work``."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        from edgecls.bench.measure import camera_frames

        self.args, self.work = args, work
        self.ratios: list[dict] = []
        self.notes: list[str] = []
        self.per_round = max(1, args.runs // args.rounds)
        self.models = reference_models(work, args.threads)
        self.files = {key: str(path) for key, path in self.models["files"].items()}
        self.int8_tflite = self.files[("tflite", "int8")]
        self.edgecls = {"kind": "classify", "model": self.int8_tflite}
        self.frames = camera_frames((640, 480))

    def probe(self, variants: dict, engine: str, calls: int | None = None, **extra) -> Callable[[], list[dict]]:
        spec = {"probe": "variants", "variants": variants, "threads": self.args.threads, "rounds": self.args.rounds,
                "per_round": calls or self.per_round} | extra
        return lambda: child_rounds(spec, engines=(engine,))

    def add(self, name: str, target: float, measured: dict, *, higher_is_better: bool = False, **extra) -> None:
        detail = {k: round(v, 4) for k, v in measured["figures"].items()} | extra
        self.ratios.append(ratio(name, measured["value"], target, detail, higher_is_better=higher_is_better)
                           | {k: measured[k] for k in ("spread", "rounds", "processes", "attempts")})

    def overhead(self) -> None:
        """1. End to end on a 640x480 frame over the raw engine call, with OpenCV's default thread pool
        (quoted) and single-threaded (it competes with the engine's pool on 2 cores)."""
        raw = {"kind": "raw", "model": self.int8_tflite}
        m, cv1 = (over_processes(self.probe({"edgecls": self.edgecls, "raw": raw}, LITERT, **cv),
                                 lambda r: r["edgecls"] / r["raw"], self.args.processes)
                  for cv in ({}, {"cv_threads": 1}))
        self.add("runtime overhead (end to end / raw invoke), MobileNetV2 int8 TFLite", 1.15, m,
                 ratio_with_cv2_setNumThreads_1=round(cv1["value"], 4))

    def quantization(self) -> None:
        """2. int8 over fp32 raw latency, per engine."""
        for fmt, target, engine in (("tflite", 0.5, LITERT), ("onnx", 0.65, ORT)):
            m = over_processes(self.probe({"fp32": {"kind": "raw", "model": self.files[(fmt, "fp32")]},
                                           "int8": {"kind": "raw", "model": self.files[(fmt, "int8")]}}, engine,
                                          block=20 if fmt == "onnx" else 1),
                               lambda r: r["int8"] / r["fp32"], self.args.processes)
            self.add(f"quantization speed-up (int8 / fp32), {fmt}", target, m)

    def keras(self) -> None:
        """3. edgecls int8 end to end over Keras predict on one image, in separate fresh processes
        (edgecls runtime-only, Keras in TensorFlow), alternating."""
        one = self.work / "one.npz"
        np.savez(one, one=(self.frames[0][None, 16:240, 16:240, ::-1] / 127.5 - 1).astype(np.float32))
        keras_calls = max(6, self.per_round // 5)
        ours = self.probe({"edgecls": self.edgecls}, LITERT)

        def with_keras() -> list[dict]:
            theirs = keras_rounds(self.models["keras_file"], one, self.args.rounds, keras_calls)
            return [a | b for a, b in zip(ours(), theirs, strict=True)]

        m = over_processes(with_keras, lambda r: r["edgecls"] / r["keras"], self.args.processes)
        self.add("edgecls int8 end to end / Keras model.predict (one image)", 1 / 30, m)

    def mediapipe(self) -> None:
        """4. Against MediaPipe Tasks ImageClassifier on the same .tflite and frames."""
        if self.args.skip_mediapipe:
            self.notes.append("MediaPipe comparison skipped (--skip-mediapipe)")
            return
        npz = self.work / "frames.npz"
        np.savez(npz, frames=np.stack([f[:, :, ::-1] for f in self.frames]))
        python, version = ensure_mediapipe(), {}
        ours = self.probe({"edgecls": self.edgecls}, LITERT)

        def with_mediapipe() -> list[dict]:
            theirs = mediapipe_rounds(python, Path(self.int8_tflite), npz, self.args.rounds, self.per_round)
            version["mediapipe"] = theirs["mediapipe"]
            return [a | b for a, b in zip(ours(), theirs["rounds"], strict=True)]

        m = over_processes(with_mediapipe, lambda r: r["edgecls"] / r["mediapipe"], self.args.processes)
        self.add("edgecls / MediaPipe ImageClassifier end to end (640x480, same int8 .tflite)", 0.7, m,
                 mediapipe_version=version["mediapipe"])

    def cold_start(self) -> None:
        """5. Cold start, and 6. memory of a runtime-only process: one round per pair of fresh processes."""
        def cold() -> list[dict]:
            a = runtime_cold_start(Path(self.int8_tflite), self.args.threads)
            b = tensorflow_cold_start(self.models["keras_file"])
            return [{f"edgecls_{k}": v for k, v in a.items()} | {f"tensorflow_{k}": v for k, v in b.items()}]

        m = over_processes(cold, lambda r: r["edgecls_total_s"] / r["tensorflow_total_s"], max(self.args.processes, 3))
        self.add("cold start (runtime import+load+first result / TensorFlow import+load_model+predict)", 0.15, m)
        rounds_of = {"rounds": m["rounds"], "processes": m["processes"], "attempts": m["attempts"]}
        for name, key, target in (("cold start of MobileNetV2 int8, seconds", "edgecls_total_s", 0.5),
                                  ("peak RSS MB, runtime-only process classifying with MobileNetV2 int8",
                                   "edgecls_peak_rss_mb", 150)):
            self.ratios.append(ratio(name, m["figures"][key], target, {}) | rounds_of)

    def export(self) -> None:
        """7. Export cost (one export per run; its spread is between runs, see --compare)."""
        self.ratios.append(ratio("export MobileNetV2 to 2 formats x 4 quantizations with validation, seconds",
                                 self.models["export_s"], 90, {"files": len(self.files)}))

    def stream(self) -> None:
        """8. Stream throughput in video mode (decode thread) over the sequential loop and over the bound
        1 / max(decode, classify); one engine thread, so decoding has the other core."""
        video = write_video(self.work / "stream.avi", self.frames, 300)
        spec = {"probe": "stream", "model": self.int8_tflite, "video": str(video), "rounds": max(self.args.rounds, 7)}
        for name, key, target in (
                ("stream video mode / sequential read+classify loop (FPS), MobileNetV2 int8, 640x480 MJPG",
                 "over_sequential", 1.2),
                ("stream video mode / bound 1 / max(decode, classify) (FPS)", "over_bound", 0.9)):
            m = over_processes(lambda: child_rounds(spec, engines=(LITERT,)), lambda r, k=key: r[k],
                               self.args.processes)
            self.add(name, target, m, higher_is_better=True, engine_threads=1)

    def all(self) -> None:
        for group in (self.overhead, self.quantization, self.keras, self.mediapipe, self.cold_start, self.export,
                      self.stream):
            group()


def main() -> None:
    args = _arguments()
    if args.render:
        args.render.with_suffix(".md").write_text(render(json.loads(args.render.read_text())))
        return
    if args.compare:
        print(compare(*(json.loads(p.read_text()) for p in args.compare), names=[p.name for p in args.compare]))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        run = _Run(args, Path(tmp))
        run.all()
    stamp = dt.date.today().isoformat()
    result = {"date": stamp, "machine": machine(), "threads": args.threads, "runs": args.runs,
              "rounds": args.rounds, "processes": args.processes, "ratios": run.ratios, "notes": run.notes}
    publish(args.out, args.name or stamp, result, render(result))


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


def _spread(r: dict) -> str:
    sp = r.get("spread")
    if not sp:
        return "one measurement"
    flag = "" if sp["stable"] else " **unstable**"
    return f"{sp['min']:.3f} / {sp['median']:.3f} / {sp['max']:.3f} ({sp['range_pct']:.1f} %){flag}"


def render(result: dict) -> str:
    """The markdown results page for one run."""
    lines = [f"# Benchmark results {result['date']}", "",
             f"{result['machine']['cores']} cores, {result['machine']['processor']}, Python "
             f"{result['machine']['python']}, {result['threads']} engine threads. Every latency is measured in fresh "
             f"runtime-only processes ({result.get('processes', 1)} per probe, {result.get('rounds', 5)} rounds each, "
             f"{result['runs']} timed calls per variant and process, variants alternating call by call, ONNX Runtime's "
             "every 20 calls); "
             "the value is the median of the per-round ratios, the spread their min / median / max and range "
             "in % of the median (over 10 %: measured again, and flagged if still so).",
             "", "| # | ratio | value | spread of the rounds | rounds (processes) | target | met |",
             "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(result["ratios"], 1):
        sign = "≥" if r.get("direction") == ">=" else "≤"
        runs = f"{r['rounds']} ({r['processes']})" if "rounds" in r else "1 (1)"
        lines.append(f"| {i} | {r['name']} | {r['value']:.3f} | {_spread(r)} | {runs} | {sign} {r['target']:.3g} "
                     f"| {'yes' if r['met'] else 'NO'} |")
    lines += ["", "Details (medians over the rounds; ms unless stated):", ""]
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


AGREE_PCT = 5.0
"""Two full runs should give every ratio within this many % of each other."""


def compare(a: dict, b: dict, names: list[str]) -> str:
    """Markdown: every ratio of two runs side by side, the difference in % of the first, and whether it
    is within ``AGREE_PCT``."""
    by_name = {r["name"]: r for r in b["ratios"]}
    lines = [f"| ratio | {names[0]} | {names[1]} | difference | within {AGREE_PCT:g} % |", "|---|---|---|---|---|"]
    outside = 0
    for r in a["ratios"]:
        other = by_name.get(r["name"])
        if other is None:
            lines.append(f"| {r['name']} | {r['value']:.3f} | missing | | |")
            continue
        diff = (other["value"] - r["value"]) / r["value"] * 100
        ok = abs(diff) <= AGREE_PCT
        outside += not ok
        lines.append(f"| {r['name']} | {r['value']:.3f} | {other['value']:.3f} | {diff:+.1f} % | {'yes' if ok else 'NO'} |")
    lines += ["", f"{len(a['ratios']) - outside} of {len(a['ratios'])} ratios within {AGREE_PCT:g} %."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
