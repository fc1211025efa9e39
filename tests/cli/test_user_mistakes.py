"""What a new user trips over (issue 15): each bug as a test that failed before its fix."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgecls.runtime import Classifier, OptionError, SourceError


def test_a_labels_string_is_a_file_never_a_sequence_of_letters(color_model, tmp_path):
    # "abcd" has as many letters as the colour model has classes: it used to become its labels
    with pytest.raises(OptionError, match="'abcd' is not a labels file"):
        Classifier.from_path(color_model, labels="abcd")
    labels = tmp_path / "labels.txt"
    labels.write_text("crimson\n\nlime\nnavy\nslate\n")
    with Classifier.from_path(color_model, labels=labels) as clf:
        assert clf.labels == ("crimson", "lime", "navy", "slate")
    with Classifier.from_path(color_model, labels=str(labels)) as clf:
        assert clf.labels == ("crimson", "lime", "navy", "slate")
    with Classifier.from_path(color_model, labels=["a", "b", "c", "d"]) as clf:
        assert clf.labels == ("a", "b", "c", "d")
    with pytest.raises(OptionError, match="must all be strings"):
        Classifier.from_path(color_model, labels=[1, 2, 3, 4])


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize("command", ["predict", "eval", "stream"])
def test_a_folder_without_images_is_the_same_error_everywhere(color_model, tmp_path, command):
    empty = tmp_path / "empty"
    (empty / "red").mkdir(parents=True)
    (empty / "red" / "notes.txt").write_text("no images here")
    proc = _cli([command, str(color_model), str(empty)], tmp_path)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and "no images found (looked for .bmp" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_camera_index_given_as_text_is_a_camera(color_model):
    """The library takes "0" as camera 0, as the CLI does; there is no camera here, so it cannot open it
    (before: "0: no such video file or folder")."""
    with Classifier.from_path(color_model) as clf, pytest.raises(SourceError, match="0: cannot open camera"):
        clf.stream("0")


def test_info_prints_what_the_card_knows(seed_export, tmp_path):
    int8 = next(f.path for f in seed_export.files if f.path.name == "seed_int8.tflite")
    out = _cli(["info", str(int8)], tmp_path).stdout
    assert "uint8, quantized: scale" in out and "zero point" in out
    assert "preprocessing: 32x32 RGB NHWC, resize stretch, normalization baked into the graph" in out
    assert "made from seed.h5 (sha256" in out and "tflite int8" in out
    assert "calibration: classes 10, images 300" in out and "validation: accuracy 0.9" in out and "top1_agreement" in out


def test_a_closed_output_pipe_ends_quietly_with_141(color_model, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(600):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((8, 8, 3), i % 256, np.uint8))
    proc = subprocess.Popen([sys.executable, "-m", "edgecls", "predict", str(color_model), str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    first = proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    code = proc.wait(timeout=120)
    stderr = proc.stderr.read().decode()
    assert first.startswith(str(folder).encode()) and code == 141 and stderr == "", (code, stderr[-1500:])


def test_predict_eval_and_stream_take_labels_mean_and_std(tmp_path):
    from hostile import onnx_model

    model = onnx_model(tmp_path / "cardless.onnx")  # no card: labels class_0.., [0, 1] pixels assumed
    labels = tmp_path / "labels.txt"
    labels.write_text("north\neast\nsouth\nwest\n")
    folder = tmp_path / "frames"
    (folder / "north").mkdir(parents=True)
    cv2.imwrite(str(folder / "north" / "0.png"), np.full((8, 8, 3), 90, np.uint8))
    common = ["--labels", str(labels), "--mean", "0", "--std", "1"]
    predict = _cli(["predict", str(model), str(folder), *common], tmp_path)
    assert predict.returncode == 0 and any(w in predict.stdout for w in ("north=", "east=", "south=", "west=")), \
        predict.stderr
    evaluate = _cli(["eval", str(model), str(folder), *common, "--json"], tmp_path)
    assert evaluate.returncode == 0 and '"north"' in evaluate.stdout, evaluate.stderr
    stream = _cli(["stream", str(model), str(folder / "north"), *common], tmp_path)
    assert stream.returncode == 0 and "frame      0  at " in stream.stdout and " took " in stream.stdout, stream.stderr


def test_a_threshold_that_leaves_no_class_says_so(color_model, tmp_path):
    cv2.imwrite(str(tmp_path / "x.png"), np.full((8, 8, 3), 100, np.uint8))
    proc = _cli(["predict", str(color_model), str(tmp_path / "x.png"), "--threshold", "0.99"], tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("(no class above the threshold)"), proc.stdout


def test_export_formats_and_quantizations_given_as_one_string():
    pytest.importorskip("tensorflow")
    from edgecls.converters.pipeline import ExportOptions

    options = ExportOptions(formats="tflite", quantize="fp32, int8")
    assert (options.formats, options.quantize) == (("tflite",), ("fp32", "int8"))


CHECK_FIRST = """
import sys
from edgecls.converters import export
from edgecls.runtime.errors import EdgeclsError
try:
    export(sys.argv[1], sys.argv[2], formats=["tflite"], quantize=sys.argv[3].split(","))
except EdgeclsError as exc:
    print(type(exc).__name__, exc)
print("tensorflow loaded" if "tensorflow" in sys.modules else "tensorflow not loaded")
"""


@pytest.mark.parametrize("quantize, error", [("int8", "ExportError int8 needs calibration images"),
                                             ("fp32", "OutputExistsError")])
def test_export_checks_its_arguments_before_loading_tensorflow(seed_h5, tmp_path, quantize, error):
    (tmp_path / "seed_fp32.tflite").write_bytes(b"an earlier export")
    proc = subprocess.run([sys.executable, "-c", CHECK_FIRST, str(seed_h5), str(tmp_path), quantize],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(error) and lines[-1] == "tensorflow not loaded", proc.stdout + proc.stderr[-1500:]


@pytest.mark.parametrize("args, flag", [(["--top-k", "0"], "--top-k"), (["--threshold", "2"], "--threshold"),
                                        (["--backend", "tensorrt"], "--backend")])
def test_cli_errors_name_the_flag(color_model, tmp_path, args, flag):
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    proc = _cli(["predict", str(color_model), str(tmp_path / "x.png"), *args], tmp_path)
    assert proc.returncode == 1 and proc.stderr.rstrip().endswith(f"(command line: {flag})"), proc.stderr


def test_opencv_own_messages_stay_off_the_error_line(color_model, tmp_path):
    """A broken TIFF makes libtiff, through OpenCV, print "[ERROR] ... TIFF_Error" lines before ours."""
    from hostile import tiff_bomb

    data = tiff_bomb(400, 200)
    (tmp_path / "cut.tiff").write_bytes(data[: len(data) // 2])
    proc = _cli(["predict", str(color_model), str(tmp_path / "cut.tiff")], tmp_path)
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        f"error: {tmp_path / 'cut.tiff'}: not a decodable image (corrupt, truncated or not an image format)"], \
        proc.stderr
    verbose = _cli(["-v", "predict", str(color_model), str(tmp_path / "cut.tiff")], tmp_path)
    assert "TIFF" in verbose.stderr  # -v shows the engines' own output


_LIBRARY_SCRIPT = """
import logging, sys
import numpy as np
from edgecls.runtime import Classifier
if sys.argv[2] == "log":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s|%(message)s")
classifier = Classifier.from_path(sys.argv[1])
classifier.classify(np.zeros((32, 32, 3), np.uint8))
classifier.classify_batch([np.zeros((32, 32, 3), np.uint8)] * 3)  # a new batch size re-plans the graph
print("done", file=sys.stderr)
"""


def test_the_library_keeps_the_engines_native_output_off_the_terminal(int8_model, tmp_path):
    """LiteRT printed "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from C++ in a user's
    script; it now goes to the ``edgecls.engine`` logger, visible only when logging asks for INFO."""
    script = tmp_path / "mine.py"
    script.write_text(_LIBRARY_SCRIPT)
    quiet = subprocess.run([sys.executable, str(script), str(int8_model), "quiet"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == "done\n" and quiet.stdout == "", quiet.stderr
    shown = subprocess.run([sys.executable, str(script), str(int8_model), "log"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=120)
    assert shown.returncode == 0 and shown.stderr == "done\n", shown.stderr
    assert "edgecls.engine|INFO: Created TensorFlow Lite XNNPACK delegate" in shown.stdout, shown.stdout


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) * 1024 / 1e6


def test_json_names_and_units_agree_across_commands(capsys, int8_model, digits_folders):
    """One name per figure and one unit per suffix: stream frames carry ``index`` as Python does, eval's
    ``accuracy`` is the export report's, bench stages say they are in ms, and every MB is 10⁶ bytes."""
    from edgecls.cli import main

    _, val = digits_folders
    assert main(["stream", str(int8_model), str(val / "3"), "--max-frames", "3", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    frames, summary = lines[:-1], lines[-1]["summary"]
    assert [f["index"] for f in frames] == [f["frame"] for f in frames] == [0, 1, 2]
    assert summary["frames_read"] >= summary["classified"] == 3
    assert main(["eval", str(int8_model), str(val), "--json"]) == 0
    (evaluated,) = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == evaluated["top1"] > 0.9
    low = _vm_hwm_mb()
    assert main(["bench", str(int8_model), "--runs", "3", "--warmup", "0", "--no-cold-start", "--json"]) == 0
    high = _vm_hwm_mb()
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert {stage["unit"] for stage in result["stages"].values()} == {"ms"}
    assert low - 0.5 <= result["peak_rss_mb"] <= high + 0.5  # VmHWM in kB (KiB) read as 10⁶ bytes


def test_the_export_table_says_what_drop_is_measured_against(seed_export, capsys):
    from edgecls.commands.export import print_report

    print_report(seed_export)
    out = capsys.readouterr().out
    assert "Keras acc" in out and "drop vs Keras" in out and "negative: the file scored higher" in out
    for f in seed_export.files:
        v = f.to_dict()["validation"]
        assert v["accuracy_drop_pt"] == pytest.approx(100 * (v["keras_accuracy"] - v["accuracy"]), abs=1e-3)
        assert f"{v['keras_accuracy']:.4f}" in out


def test_bench_says_what_speed_up_and_fps_are(capsys, int8_model):
    from edgecls.cli import main

    assert main(["bench", str(int8_model), str(int8_model), "--runs", "3", "--warmup", "0", "--no-cold-start"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"speed-up: {int8_model.name}'s p50 / the row's p50" in out and "about 1000 / mean ms" in out


EXIT_TABLE = {0: "done", 1: "error:", 2: "Usage:", 130: "aborted", 141: "", 143: "terminated"}


def test_the_docs_exit_code_table_lists_each_code_once():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "docs" / "quickstart.md").read_text()
    table = readme.split("| exit | when | on stderr |", 1)[1].split("\n\n", 1)[0]
    codes = [int(row.split("|")[1]) for row in table.strip().splitlines()[1:]]
    assert codes == sorted(EXIT_TABLE)


def _bad_input(command, tmp_path, model):
    """An argument list that must end in exit 1 with one error line naming ``culprit``."""
    missing = tmp_path / "missing.tflite"
    if command == "demo":
        (tmp_path / "a-file").write_text("x")
        return ["demo", "--out", str(tmp_path / "a-file" / "sub")], tmp_path / "a-file" / "sub"
    if command == "export":
        return ["export", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "out")], tmp_path / "missing.h5"
    images = tmp_path / "images" / "red"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "1.png"), np.zeros((8, 8, 3), np.uint8))
    rest = {"predict": [str(images)], "eval": [str(images.parent)], "stream": [str(images)]}.get(command, [])
    return [command, str(missing), *rest], missing


@pytest.mark.parametrize("command", ["demo", "export", "info", "predict", "eval", "bench", "stream"])
def test_exit_codes_1_and_2_hold_for_every_command(tmp_path, color_model, command):
    args, culprit = _bad_input(command, tmp_path, color_model)
    error = _cli(args, tmp_path)
    assert error.returncode == 1 and error.stderr.splitlines() == [error.stderr.strip()], error.stderr
    assert error.stderr.startswith(f"error: {culprit}: "), error.stderr
    usage = _cli([command, "--no-such-flag"], tmp_path)
    assert usage.returncode == 2 and f"Usage: edgecls {command}" in usage.stderr
    assert "Error: No such option" in usage.stderr and "--no-such-flag" in usage.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c-130", "sigterm-143"])
def test_predict_interrupted_mid_folder_exits_128_plus_the_signal(tmp_path, color_model, sig):
    """The same codes as ``export`` and ``stream`` (tested with them). Synchronized on the output pipe:
    unread, it blocks ``predict`` after about 64 KiB of lines, far short of the folder."""
    folder = tmp_path / "many"
    folder.mkdir()
    image = np.zeros((8, 8, 3), np.uint8)
    for i in range(1500):
        cv2.imwrite(str(folder / f"{i:05d}.png"), image)
    process = subprocess.Popen([sys.executable, "-m", "edgecls", "predict", str(color_model), str(folder), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        first = process.stdout.readline()
        assert first.startswith('{"image"') and len(first) * 1500 > 4 * 65536
        process.send_signal(sig)
        rest, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + sig, err
    assert err.strip() == EXIT_TABLE[128 + sig] and len(rest.splitlines()) < 1499
