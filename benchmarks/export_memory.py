"""Peak memory of exporting a big model: DenseNet121 at 224×224, 50 calibration images, fp32 + int8.

A laptop with 8 GB must be able to export it. The model has ``weights=None`` with BatchNorm
statistics set from real images (the digits at 224); each configuration (both formats, TFLite
only, ONNX only) runs ``edgecls export`` in its own process, whose peak RSS comes from
``wait4``. ``--source DIR`` measures another checkout of edgecls (its ``edgecls/``, ``runtime/``
and ``converters/`` folders) with the same model and images, for before/after figures.

    python -m benchmarks.export_memory [--source OLD_CHECKOUT] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.suite.checkout import package_view
from benchmarks.suite.publish import publish
from benchmarks.suite.timing import module, root_env, run_measured

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {"both formats": "tflite,onnx", "TFLite only": "tflite", "ONNX only": "onnx"}
CALIB = 50


def build(work: Path) -> Path:
    """DenseNet121 (224, 10 classes) with BatchNorm statistics from real images, and a flat folder of
    50 calibration images (no class folders: an untrained model is not checked against labels)."""
    import cv2
    import keras

    from edgecls.realdata import digits_rgb, warm_batchnorm

    images, _ = digits_rgb(224)
    folder = work / "calib"
    folder.mkdir(parents=True)
    for i, image in enumerate(images[:CALIB]):
        cv2.imwrite(str(folder / f"{i:03d}.png"), image[:, :, ::-1])
    keras.utils.set_random_seed(0)
    model = keras.applications.DenseNet121(weights=None, input_shape=(224, 224, 3), classes=10)
    warm_batchnorm(model, (images[CALIB:CALIB + 32] / 255.0 - 0.45) / 0.225)
    path = work / "densenet121.keras"
    model.save(path)
    return path


def measure(model: Path, work: Path, formats: str, pythonpath: Path | None) -> dict:
    """Run one export in its own process; its peak RSS from wait4, its report's figures."""
    tag = f"{formats.replace(',', '-')}-{'before' if pythonpath else 'after'}"
    out = work / f"out-{tag}"
    argv = [sys.executable, "-m", "edgecls", "export", str(model), "-o", str(out), "--formats", formats,
            "--quantize", "fp32,int8", "--calib", str(work / "calib"), "--calib-size", str(CALIB), "--json"]
    env = dict(os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {}))
    stdout, stderr = work / f"{tag}.json", work / f"{tag}.err"
    # cwd: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH
    code, seconds, peak = run_measured(argv, stdout, stderr, cwd=work, env=env)
    result = {"formats": formats, "exit": code, "seconds": round(seconds, 1), "peak_rss_mb": round(peak)}
    try:
        report = json.loads(stdout.read_text())
        result["top1_agreement"] = {Path(f["path"]).name: round(f["validation"]["top1_agreement"], 4)
                                    for f in report["files"]}
        result["report_peak_rss_mb"] = report.get("peak_rss_mb")
    except ValueError:
        result["error"] = stderr.read_text(errors="replace").strip().splitlines()[-1:]
    return result


def _describe_source(source: Path) -> str:
    """``source`` with its git commit, when it is a checkout."""
    head = subprocess.run(["git", "-C", str(source), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return f"{source} ({head.stdout.strip()})" if head.returncode == 0 else str(source)


def render(page: dict) -> str:
    """The markdown page of a results JSON (``{"date", "before", "rows"}``)."""
    lines = [f"# Export memory, {page['date']}", "",
             "`python -m benchmarks.export_memory`: DenseNet121 (weights=None, BatchNorm statistics from real "
             f"images), 224×224, {CALIB} calibration images, `edgecls export --quantize fp32,int8`, one process "
             "per row, its peak RSS from `wait4` (the measuring parent stays small, so the child's own peak). "
             f"Before: {page.get('before') or '-'}; after: this checkout. Goal: ≤ 4 GB.", "",
             "| configuration | code | peak RSS MB | seconds | exit | top-1 agreement with Keras |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['version']} | {r['peak_rss_mb']} | {r['seconds']} | {r['exit']} "
              f"| {', '.join(f'{k} {v}' for k, v in r.get('top1_agreement', {}).items()) or r.get('error', '')} |"
              for r in page["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="another checkout of edgecls to measure as 'before'")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma list of: " + ", ".join(CONFIGS))
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--render", type=Path, help="only re-render the markdown page of a results JSON")
    args = parser.parse_args(argv)
    if args.render:
        args.render.with_suffix(".md").write_text(render(json.loads(args.render.read_text())))
        return 0
    if args.build:  # child process: keeps TensorFlow and the model out of the measuring parent
        print(build(args.build))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgecls-memory-") as tmp:
        work = Path(tmp)
        # Built in its own process: a child's ru_maxrss starts from its parent's peak at fork (Linux keeps it
        # across exec), so the measuring parent must stay small.
        built = subprocess.run(module("benchmarks.export_memory", "--build", str(work)), check=True,
                               capture_output=True, text=True, env=root_env())
        model = Path(built.stdout.strip().splitlines()[-1])
        variants = [("after", None)] + ([("before", package_view(args.source.resolve(), work))] if args.source else [])
        for name in [c.strip() for c in args.configs.split(",")]:
            for label, pythonpath in variants:
                row = {"config": name, "version": label, **measure(model, work, CONFIGS[name], pythonpath)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    stamp = dt.date.today().isoformat()
    before = _describe_source(args.source) if args.source else None
    data = {"date": stamp, "before": before, "rows": rows}
    publish(args.out, f"export-memory-{stamp}", data, render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
