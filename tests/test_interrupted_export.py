"""Killing an export (SIGTERM or Ctrl-C) at several points leaves complete files or none, and no temp files."""

import os
import signal
import subprocess
import sys
import time

import pytest

from edgecls.runtime import Classifier

MODELS = ("seed_fp32.tflite", "seed_int8.tflite", "seed_fp32.onnx", "seed_int8.onnx")


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig, when", [
    (signal.SIGTERM, "during start-up"),
    (signal.SIGTERM, "after the first file"),
    (signal.SIGINT, "while converting"),
    (signal.SIGINT, "after the first file"),
], ids=["SIGTERM-start-up", "SIGTERM-after-first-file", "SIGINT-converting", "SIGINT-after-first-file"])
def test_killed_export_leaves_complete_files_or_none(tmp_path, seed_h5, digits_folders, sig, when):
    train, val = digits_folders
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "edgecls", "export", str(seed_h5), "-o", str(out), "--quantize", "fp32,int8",
         "--calib", str(train), "--calib-size", "50", "--val", str(val)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if when == "during start-up":
        time.sleep(1.0)
    elif when == "while converting":
        assert _wait_for(lambda: any(scratch.glob("edgecls-export-*")), 120), "the export never started"
        time.sleep(0.5)
    else:
        assert _wait_for(lambda: any((out / m).exists() for m in MODELS), 180), "no file was written"
    stopped_early = process.poll() is None
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    names = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if process.returncode == 0:  # the signal came as the export was finishing: then it is all there
        assert names == sorted([*MODELS, "report.json"]), (names, err[-2000:])
    elif stopped_early:
        assert process.returncode in (130, 128 + signal.SIGTERM, -sig), err[-2000:]
    # Only complete, validated files under the final names; no temporary file or folder anywhere.
    leftovers = [name for name in names if name not in MODELS]
    assert leftovers in ([], ["report.json"]), leftovers
    for name in MODELS:
        if (out / name).exists():
            with Classifier.from_path(out / name) as clf:
                assert clf.card.provenance.validation  # the card was written with the file, not after
    assert list(scratch.iterdir()) == []
