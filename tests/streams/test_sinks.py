"""``edgecls stream`` sinks: annotated video (--out), window (--show), and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from builders import read_video

from edgecls.cli import main
from edgecls.sinks.window import gui_problem

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_out_writes_every_frame_with_its_label(capsys, tmp_path, int8_model, digit_video):
    path, _ = digit_video
    out = tmp_path / "annotated.mp4"
    assert main(["stream", str(int8_model), str(path), "--out", str(out), "--every", "2"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    written, source = read_video(out), read_video(path)
    assert len(written) == 20 and written[0].shape == source[0].shape
    # the label box darkens the top-left corner and its text brightens part of it; the rest is the frame
    corner = written[0][:12, :20].astype(int)
    assert corner.min() < 40 and corner.max() > 150
    assert np.abs(written[0][40:].astype(int) - source[0][40:].astype(int)).mean() < 12
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"]  # no temporary file left

    assert main(["stream", str(int8_model), str(path), "--out", str(out)]) == 1
    assert "already exists (pass overwrite=True to overwrite) (command line: --force)" in capsys.readouterr().err
    assert main(["-q", "stream", str(int8_model), str(path), "--out", str(out), "--force", "--max-frames", "5"]) == 0
    assert len(read_video(out)) == 5
    assert main(["stream", str(int8_model), str(path), "--out", str(tmp_path / "x.gif")]) == 1
    assert "unsupported video suffix" in capsys.readouterr().err


def test_show_explains_how_to_get_a_window(capsys, int8_model, digit_video):
    path, _ = digit_video
    problem = gui_problem()
    if problem is None:
        pytest.skip("this machine can open windows; the error path needs a headless OpenCV or no display")
    assert main(["stream", str(int8_model), str(path), "--show"]) == 1
    assert f"error: window display: {problem}" in capsys.readouterr().err


def test_gui_detection():
    headless = "  GUI:                           NONE\n    VTK support: NO\n"
    qt = "  GUI:                           QT5\n    QT: YES\n"
    assert "pip install opencv-python" in gui_problem(headless, {}, "linux")
    assert "no display" in gui_problem(qt, {}, "linux")
    assert gui_problem(qt, {"DISPLAY": ":0"}, "linux") is None
    assert gui_problem(qt, {}, "darwin") is None


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, digits):
    """3000 frames: more than the CLI can print before the test reads past its first five lines."""
    images, _ = digits
    path = tmp_path_factory.mktemp("long") / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 64))
    for i in range(3000):
        writer.write(cv2.resize(images[i % 1000][:, :, ::-1], (64, 64), interpolation=cv2.INTER_NEAREST))
    writer.release()
    return path


def test_ctrl_c_stops_cleanly_and_finishes_the_video(tmp_path, int8_model, long_video):
    out = tmp_path / "partial.mp4"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "edgecls", "stream", str(int8_model), str(long_video),
                                "--json", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    lines = [process.stdout.readline() for _ in range(5)]
    assert all(line.startswith('{"frame"') for line in lines)
    # The stream cannot end before the signal: until communicate() reads, the CLI blocks on its stdout
    # pipe (64 KiB on Linux) after a few hundred of these lines, far short of 3000.
    assert min(map(len, lines)) * 3000 > 4 * 65536
    process.send_signal(signal.SIGINT)
    try:
        rest, err = process.communicate(timeout=60)  # a hanging thread would time out here
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    summary = json.loads(rest.strip().splitlines()[-1])["summary"]
    assert process.returncode == 130, err
    assert summary["ended"] == "interrupted" and 5 <= summary["classified"] < 3000
    # a complete, readable file up to the interrupt (the last result may have been cut before --out got it)
    assert summary["classified"] - 1 <= len(read_video(out)) <= summary["classified"]
    assert [p.name for p in tmp_path.iterdir()] == ["partial.mp4"]
