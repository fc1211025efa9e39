"""Killing an export (SIGTERM or Ctrl-C) at several points leaves complete files or none, and no temp files.

The test synchronizes on the step lines ``edgecls -v export`` prints off a terminal (no sleeps): each
signal is sent as a given step starts, so each case exercises its point every time and the files
expected on disk are known exactly.
"""

import os
import signal
import subprocess
import sys

import pytest

from edgecls.runtime import Classifier

MODELS = ("seed_fp32.tflite", "seed_int8.tflite", "seed_fp32.onnx", "seed_int8.onnx")
POINTS = {  # step line the signal follows -> the files complete by then
    "start-up": ("step: loading the Keras model", []),
    "converting": ("step: converting to tflite int8", ["seed_fp32.tflite"]),
    "validating": ("step: validating seed_fp32.onnx", ["seed_fp32.tflite", "seed_int8.tflite"]),
}


def _read_until(stream, prefix: str) -> str:
    """Read stderr lines until one starts with ``prefix``; everything read so far if the process ended first."""
    seen = []
    for line in iter(stream.readline, ""):
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the export ended before {prefix!r}:\n{''.join(seen[-30:])}")


@pytest.mark.parametrize("sig, point", [
    (signal.SIGTERM, "start-up"),
    (signal.SIGTERM, "validating"),
    (signal.SIGINT, "converting"),
    (signal.SIGINT, "validating"),
], ids=["SIGTERM-start-up", "SIGTERM-validating", "SIGINT-converting", "SIGINT-validating"])
def test_killed_export_leaves_complete_files_or_none(tmp_path, seed_h5, digits_folders, sig, point):
    train, val = digits_folders
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    marker, complete = POINTS[point]
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "edgecls", "-v", "export", str(seed_h5), "-o", str(out), "--quantize", "fp32,int8",
         "--calib", str(train), "--calib-size", "50", "--val", str(val)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _read_until(process.stderr, marker)
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + sig, err[-2000:]  # 130 for Ctrl-C, 143 for SIGTERM
    names = sorted(p.name for p in out.iterdir()) if out.exists() else []
    # Exactly the files completed before the signal, under their final names; no report, no temporary files.
    assert names == sorted(complete), names
    for name in names:
        with Classifier.from_path(out / name) as clf:
            assert clf.card.provenance.validation  # the card was written with the file, not after
    # ONNX Runtime keeps a session-id file, .ses (a timestamp and a UUID), in TMPDIR for as long as it
    # likes: an engine's state, not a partial output of ours.
    assert [p.name for p in scratch.iterdir() if p.name != ".ses"] == []
