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
    pytest.param(signal.SIGINT, "validating", marks=pytest.mark.slow),
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


@pytest.mark.slow
def test_an_export_killed_with_sigkill_leaves_a_folder_the_next_export_removes(tmp_path, seed_h5, digits_folders):
    """kill -9 runs no clean-up (issue 28, finding 8): its scratch folder, TensorFlow's autograph files
    inside it, stays behind, and the next export removes it."""
    train, val = digits_folders
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "edgecls", "-v", "export", str(seed_h5), "--quantize", "fp32,int8",
               "--calib", str(train), "--calib-size", "50", "--val", str(val)]
    process = subprocess.Popen([*command, "-o", str(tmp_path / "killed")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        _read_until(process.stderr, "step: converting to tflite int8")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    left = [p for p in scratch.iterdir() if p.name.startswith("edgecls-export-")]
    assert len(left) == 1 and any(left[0].rglob("__autograph_generated_file*.py")), list(scratch.rglob("*"))
    assert not [p for p in scratch.iterdir() if p.name.startswith("__autograph_generated_file")]
    done = subprocess.run([*command[:6], "--formats", "tflite", "-o", str(tmp_path / "next")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p.name for p in scratch.iterdir() if p.name != ".ses"] == []  # its own removed too


def test_the_clean_up_removes_only_folders_no_running_export_holds(tmp_path, monkeypatch):
    import tempfile

    from edgecls.converters.workspace import LOCK_NAME, PREFIX, export_workspace, remove_stale_workspaces

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f"{PREFIX}dead"
    dead.mkdir()
    (dead / LOCK_NAME).write_text("")  # its export is gone: nobody holds the lock
    other = tmp_path / "edgecls-export"  # not an export folder's name: left alone
    other.mkdir()
    with export_workspace() as live:
        assert not dead.exists() and live.exists()  # removed as this export started
        assert remove_stale_workspaces(tmp_path) == [] and live.exists()  # a running export keeps its own
        assert tempfile.gettempdir() == str(live / "tmp")
    assert not live.exists() and other.exists() and tempfile.gettempdir() == str(tmp_path)
