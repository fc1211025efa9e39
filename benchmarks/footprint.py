"""Install size and memory of the runtime-only environments against the converters' environment.

Creates fresh virtual environments (no pip inside, so only what the install brings is counted)
with ``.[tflite]``, ``.[onnx]`` and ``.[convert]``, sums the files in each ``site-packages``,
then measures the peak RSS (VmHWM) of a process that loads the seed CNN (int8, from
``edgecls demo``) and classifies 200 frames, in each runtime environment, against a
TensorFlow process that loads the same Keras model and predicts. Writes
``benchmarks/results/footprint-<date>.json|md``.

    python -m benchmarks.footprint [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.suite.publish import publish
from benchmarks.suite.timing import run_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


MB = 2**20
ALIASES = {"cv2": "opencv-python-headless", "google": "protobuf"}  # import names -> distributions

CLASSIFY = """
import json, sys
import numpy as np
from edgecls.runtime import Classifier
frames = [np.random.default_rng(i).integers(0, 256, (480, 640, 3), dtype=np.uint8) for i in range(8)]
with Classifier.from_path(sys.argv[1]) as clf:
    for i in range(200):
        clf.classify(frames[i % 8])
    backend = clf.backend.name
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"peak_rss_mb": hwm / 1024, "backend": backend, "tensorflow": "tensorflow" in sys.modules}))
"""

KERAS = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import keras
model = keras.models.load_model(sys.argv[1])
x = np.random.default_rng(0).random((1, *model.input_shape[1:]), dtype=np.float32)
for _ in range(20):
    model.predict(x, verbose=0)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"peak_rss_mb": hwm / 1024}))
"""


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def install(venv: Path, extra: str) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    f"{ROOT}[{extra}]"], check=True)


def sizes(site: Path) -> tuple[float, dict[str, float]]:
    """Total MB of ``site``, and MB per top-level entry (a package's .libs and .dist-info folded in)."""
    per: dict[str, float] = {}
    for entry in site.iterdir():
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()]
        name = entry.name.split("-")[0].removesuffix(".libs").removesuffix(".py").lower().replace("_", "-")
        name = ALIASES.get(name, name)
        per[name] = per.get(name, 0.0) + sum(p.stat().st_size for p in files) / MB
    return sum(per.values()), dict(sorted(per.items(), key=lambda kv: -kv[1]))


def arm64_sizes(extra: str, work: Path) -> tuple[float, dict[str, float]]:
    """Installed size of ``.[extra]``'s dependencies as aarch64 wheels for Python 3.11 (Raspberry Pi OS
    Bookworm 64-bit): downloaded and unpacked as pip would install them, plus edgecls itself."""
    import zipfile

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"][extra]
    platforms = [arg for v in (17, 24, 27, 28, 31, 34, 35, 36) for arg in ("--platform", f"manylinux_2_{v}_aarch64")]
    wheels, site = work / f"arm64-{extra}-wheels", work / f"arm64-{extra}-site"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
                    "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none", *platforms,
                    "--platform", "manylinux2014_aarch64", "--platform", "any", "-d", str(wheels), *requirements],
                   check=True, stderr=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    for wheel in wheels.glob("*.whl"):
        zipfile.ZipFile(wheel).extractall(site)
    return sizes(site)


def run_code(python: Path, code: str, *args: str) -> dict:
    """``code`` run by ``python`` (not from the checkout: -P); its last stdout line as JSON."""
    return run_json([str(python), "-P", "-c", code, *args])


def render(result: dict) -> str:
    lines = [f"# Footprint {result['date']}", "",
             f"{result['machine']}, Python {result['python']}; `python -m benchmarks.footprint`. Sizes are the "
             "files in a fresh virtual environment's site-packages (no pip), in MiB.", "",
             "| environment | installed MiB | largest parts | peak RSS classifying, MiB |", "|---|---|---|---|"]
    for env in result["environments"]:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in list(env["packages"].items())[:4])
        rss = "; ".join(f"{m} {v['peak_rss_mb']:.0f}" for m, v in env.get("rss", {}).items()) or "-"
        where = " on aarch64 (Raspberry Pi OS 64-bit), unpacked wheels" if env.get("platform") == "aarch64" else ""
        lines.append(f"| `pip install \"edgecls[{env['extra']}]\"`{where} | {env['mb']:.0f} | {parts} | {rss} |")
    lines += ["", f"Target: runtime-only under 150 MiB installed. TensorFlow process loading the Keras model and "
              f"predicting: peak RSS {result['tensorflow_rss_mb']:.0f} MiB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Build the environments here and keep them.")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "edgecls", "-q", "demo", "--out", str(work / "demo")], check=True,
                       stdout=subprocess.DEVNULL)
        models = {"int8 .tflite": work / "demo" / "exported" / "model_int8.tflite",
                  "int8 .onnx": work / "demo" / "exported" / "model_int8.onnx"}
        environments = []
        for extra, model_key in (("tflite", "int8 .tflite"), ("onnx", "int8 .onnx"), ("convert", None)):
            venv = work / f"venv-{extra}"
            if not (venv / "bin" / "python").exists():
                install(venv, extra)
            total, per = sizes(site_packages(venv))
            env = {"extra": extra, "mb": total, "packages": per}
            if model_key:
                env["rss"] = {model_key: run_code(venv / "bin" / "python", CLASSIFY, str(models[model_key]))}
            else:
                env["rss"] = {m: run_code(venv / "bin" / "python", CLASSIFY, str(p)) for m, p in models.items()}
                tf_rss = run_code(venv / "bin" / "python", KERAS, str(work / "demo" / "model.h5"))["peak_rss_mb"]
            environments.append(env)
        for extra in ("tflite", "onnx"):
            total, per = arm64_sizes(extra, work)
            environments.append({"extra": extra, "platform": "aarch64", "mb": total, "packages": per})
    stamp = dt.date.today().isoformat()
    result = {"date": stamp, "machine": platform.machine(), "python": platform.python_version(),
              "environments": environments, "tensorflow_rss_mb": tf_rss}
    publish(args.out, f"footprint-{stamp}", result, render(result))


if __name__ == "__main__":
    main()
