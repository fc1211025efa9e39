"""The README and the docs cannot rot: every shell command and Python example in them runs here.

The README's first shell block holds the two set-up commands. Its install-and-test line
is what CI runs (checked against ``.ci/run``, not re-run inside the tests); its
demo line runs without the ``pip install`` prefix (this environment already has
``.[all,dev]``). Every other ``bash`` block, of the README and then of each page in
``mkdocs.yml``'s order, runs line by line, and every ``python`` block runs as a script,
in one folder that the demo fills.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from builders import SEED

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
NAV = re.findall(r"^  - [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
PAGES = [README, *((ROOT / "docs" / page).read_text() for page in NAV)]
BLOCKS = [block for text in PAGES for block in re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)]


def _commands(block: str) -> list[str]:
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


SETUP = _commands(next(text for lang, text in BLOCKS if lang == "bash"))
SHELL = [cmd for lang, text in BLOCKS if lang == "bash" for cmd in _commands(text)][len(SETUP):]
PYTHON = [text for lang, text in BLOCKS if lang == "python"]


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``command`` in ``cwd``; the demo's training seeded from the suite's seed (``EDGECLS_TEST_SEED``)."""
    env = {**os.environ, "EDGECLS_DEMO_SEED": str(SEED)}
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


def test_readme_opens_with_install_and_demo_and_test_commands():
    assert len(SETUP) == 2
    demo, tests = SETUP
    assert demo.startswith("pip install") and demo.endswith("edgecls demo")
    assert tests.startswith("pip install") and tests.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, "CI must run the README's install-and-test command"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder where the README's demo command has run."""
    folder = tmp_path_factory.mktemp("readme")
    demo = SETUP[0].split("&&")[-1].strip()
    proc = _run(demo, folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "speed-up vs Keras" in proc.stdout and "Next, try:" in proc.stdout
    return folder


def test_demo_int8_tflite_accuracy(workspace):
    import json

    summary = json.loads((workspace / "edgecls-demo" / "demo.json").read_text())
    rows = {(r["format"], r["quantization"]): r for r in summary["rows"]}
    assert set(rows) == {("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")}
    # a trained model (chance is 0.1; what it reaches depends on the machine), and an int8 file that
    # classifies like it: the export's default check (agreement ≥ 0.98) bounds the difference by 2 points
    assert summary["keras_accuracy"] >= 0.85
    for row in rows.values():
        assert abs(summary["keras_accuracy"] - row["accuracy"]) <= 0.02, row
    assert summary["seconds"] < 600  # generous: the point is that it finishes, not how fast


@pytest.mark.parametrize("command", SHELL)
def test_shell_commands(workspace, command):
    proc = _run(command, workspace)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip(), command


def _digit_video(path: Path, folder: Path, frames: int = 20) -> list[str]:
    images = sorted(folder.rglob("*.png"))[:: max(1, len(list(folder.rglob("*.png"))) // frames)][:frames]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 128))
    for image in images:
        writer.write(cv2.resize(cv2.imread(str(image)), (128, 128), interpolation=cv2.INTER_NEAREST))
    writer.release()
    return [image.parent.name for image in images]


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_examples(workspace, index, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(PYTHON[index])
    video = tmp_path / "digits.avi"
    expected = _digit_video(video, workspace / "edgecls-demo" / "data" / "val")
    proc = subprocess.run([sys.executable, str(script), str(video)], cwd=workspace, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines
    if "sys.argv" not in PYTHON[index]:  # a self-contained example (its own asserts decide)
        return
    if "clf.stream(" in PYTHON[index]:  # the stream example: one line per frame, then the summary
        assert lines[-1].startswith("StreamSummary(") and "ended='end of source'" in lines[-1]
        lines = lines[:-1]
    if "classify_async" in PYTHON[index]:  # the live session: results for some frames, the rest dropped
        assert lines[-1].startswith("StreamSummary(frames_read=20,"), lines[-1]
        summary = dict(re.findall(r"(classified|dropped)=(\d+)", lines[-1]))
        results = [line.split() for line in lines[:-1]]
        assert len(results) == int(summary["classified"]) >= 1
        assert int(summary["classified"]) + int(summary["dropped"]) == 20
        assert sum(label == expected[int(i)] for label, i, *_ in results) >= 0.8 * len(results), lines
        return
    if "VideoCapture" in PYTHON[index] or "clf.stream(" in PYTHON[index]:  # one line per frame, mostly right
        assert len(lines) == len(expected)
        hits = sum(line.split()[0] == label for line, label in zip(lines, expected, strict=True))
        assert hits >= 0.8 * len(expected), lines


CAMERA_EXAMPLES = [i for i, code in enumerate(PYTHON)
                   if "sys.argv" in code and ("VideoCapture" in code or "clf.stream(" in code)]


@pytest.mark.parametrize("index", CAMERA_EXAMPLES)
def test_camera_examples_take_0_as_a_camera_and_say_when_it_does_not_open(workspace, index, tmp_path):
    """``python example.py 0`` means camera 0 (as ``edgecls stream MODEL 0`` does). This machine has no
    camera: the example must say it cannot open it and exit non-zero, not end silently with nothing
    classified (a string "0" used to reach OpenCV as a file name)."""
    assert not Path("/dev/video0").exists(), "this test expects a machine without a camera"
    script = tmp_path / "example.py"
    script.write_text(PYTHON[index])
    proc = subprocess.run([sys.executable, str(script), "0"], cwd=workspace, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "cannot open" in proc.stderr, (proc.returncode, proc.stdout, proc.stderr[-1500:])
    assert "camera" in proc.stderr or "cannot open 0" in proc.stderr
