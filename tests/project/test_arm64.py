"""The runtime on emulated 64-bit Arm (Raspberry Pi 4 and 5 CPUs), against the same commands on x86.

``benchmarks/arm64/run.sh setup`` builds Debian 12 arm64 Python 3.11 with the aarch64 wheels of
numpy, OpenCV, LiteRT and ONNX Runtime (no TensorFlow) and QEMU 10 user mode; every command runs
there for each CPU and must give the same top-1 on every image, and scores within 1e-4 (float
models) or one output quantization step (int8) of the x86 results. Emulated timings are not Pi
timings, so none are compared or reported.
"""

import json
import subprocess
import sys
from pathlib import Path

import builders
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "arm64" / "run.sh"
CPUS = ("cortex-a72", "cortex-a76")  # Raspberry Pi 4, Raspberry Pi 5
KEYS = [("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")]

pytestmark = [pytest.mark.slow, pytest.mark.arm64, pytest.mark.filterwarnings("ignore::UserWarning")]


def _run(argv: list[str], timeout: int = 300) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv}\n{proc.stderr[-3000:]}"
    return proc.stdout


def native(*args: str) -> str:
    return _run([sys.executable, "-m", "edgecls", *args])


def emulated(cpu: str, *args: str) -> str:
    return _run(["bash", str(RUN), cpu, *args])


@pytest.fixture(scope="module")
def arm64_env():
    """Build (first time: downloads Debian arm64 packages, QEMU and aarch64 wheels) or refresh the environment."""
    _run(["bash", str(RUN), "setup"], timeout=900)


@pytest.fixture(scope="module")
def models(seed_export):
    files = {(f.format, f.quantization): str(f.path) for f in seed_export.files}
    return {key: files[key] for key in KEYS}


def _output_step(model: str, info: dict) -> float:
    """One quantization step of the scores: the TFLite output scale, or the scale of the ONNX QDQ
    DequantizeLinear that produces the output; 0 for float outputs."""
    if model.endswith(".tflite"):
        q = info["card"]["output"].get("quantization")
        return float(q["scale"]) if q else 0.0
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(model).graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and outputs & set(node.output):
            return float(constants[node.input[1]])
    return 0.0


@pytest.mark.parametrize("cpu", CPUS)
def test_runtime_on_emulated_arm64(arm64_env, cpu, models, digits_folders):
    _, val = digits_folders
    probe = json.loads(emulated(cpu, "-c", (
        "import importlib.util, json, platform, sys\n"
        "import edgecls.runtime, edgecls.cli\n"
        "print(json.dumps({'machine': platform.machine(), 'python': platform.python_version(),\n"
        "  'tensorflow_installed': importlib.util.find_spec('tensorflow') is not None,\n"
        "  'tensorflow_imported': 'tensorflow' in sys.modules}))")).strip().splitlines()[-1])
    assert probe["machine"] == "aarch64" and probe["python"].startswith("3.11")
    assert not probe["tensorflow_installed"] and not probe["tensorflow_imported"]

    for key, model in models.items():
        x86_info, arm_info = json.loads(native("info", model, "--json")), json.loads(emulated(cpu, "-m", "edgecls", "info", model, "--json"))
        for field in ("backend", "has_card", "input", "output", "card", "tflite_metadata"):
            assert arm_info[field] == x86_info[field], (key, field)

        x86, arm = (builders.predict_scores(native("predict", model, str(val), "--top-k", "10", "--json")),
                    builders.predict_scores(emulated(cpu, "-m", "edgecls", "predict", model, str(val), "--top-k", "10", "--json")))
        assert list(arm) == list(x86) and len(x86) == 397
        tolerance = 1e-4 if key[1] == "fp32" else _output_step(model, x86_info) * 1.001
        assert tolerance > 0
        for image, scores in x86.items():
            assert max(arm[image], key=arm[image].get) == max(scores, key=scores.get), (key, image)
            worst = max(abs(arm[image][label] - score) for label, score in scores.items())
            assert worst <= tolerance, (key, image, worst, tolerance)

    x86_eval = json.loads(native("eval", *models.values(), str(val), "--json"))
    arm_eval = json.loads(emulated(cpu, "-m", "edgecls", "eval", *models.values(), str(val), "--json"))
    for x, a in zip(x86_eval, arm_eval, strict=True):
        assert (a["model"], a["images"], a["top1"], a["confusion"]) == (x["model"], x["images"], x["top1"], x["confusion"])
        assert a["top1"] > 0.9
