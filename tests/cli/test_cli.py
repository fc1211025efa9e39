"""The command line through its entry point: exit codes, --json output, error lines."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls import __version__
from edgecls.cli import main


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def color_images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, bgr in (("red", (0, 0, 255)), ("blue", (255, 0, 0))):
        image = np.zeros((20, 20, 3), np.uint8)
        image[:] = bgr
        cv2.imwrite(str(folder / f"{name}.png"), image)
    return folder


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out


def test_predict_text_and_json(capsys, color_model, color_images):
    code, out, _ = run(capsys, "predict", color_model, color_images, "--top-k", "1")
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split(": ")[1].split("=")[0] for line in lines] == ["blue", "red"]
    code, out, _ = run(capsys, "predict", color_model, color_images / "red.png", "--json", "--top-k", "2")
    record = json.loads(out)
    assert code == 0 and record["image"].endswith("red.png")
    assert record["categories"][0]["label"] == "red" and len(record["categories"]) == 2


def test_info_json(capsys, color_model):
    code, out, _ = run(capsys, "info", color_model, "--json")
    data = json.loads(out)
    assert code == 0 and data["backend"] == "onnxruntime" and data["has_card"] is True
    assert data["card"]["labels"] == ["red", "green", "blue", "gray"]
    assert data["input"]["shape"][1:] == [8, 8, 3]


@pytest.mark.parametrize(
    "args, message",
    [
        (lambda d, m: ["predict", d / "missing.onnx", d / "x.png"], "no such model file"),
        (lambda d, m: ["info", d / "model.pb"], "unsupported model format .pb"),
        (lambda d, m: ["predict", m, d / "notes.png"], "not a decodable image"),
        (lambda d, m: ["predict", d / "empty.tflite", d / "red.png"], "model file is empty"),
        (lambda d, m: ["info", d / "junk.onnx"], "cannot load ONNX model"),
        (lambda d, m: ["predict", m, d / "bomb.png"], "over the limit of 100,000,000 pixels"),
        (lambda d, m: ["predict", m, d / "cut.jpg"], "truncated JPEG"),
        (lambda d, m: ["predict", m, d / "red.png", "--top-k", "0"], "max_results must be"),
        (lambda d, m: ["predict", m, d / "red.png", "--threshold", "2"], "score_threshold must be"),
        (lambda d, m: ["predict", m, d / "red.png", "--backend", "tensorrt"], "unknown backend 'tensorrt'"),
        (lambda d, m: ["eval", m, d / "no-such-folder"], "no-such-folder"),
    ],
)
def test_errors_exit_1_with_one_line(capsys, tmp_path, color_model, args, message):
    import struct
    import zlib

    (tmp_path / "model.pb").write_bytes(b"x")
    (tmp_path / "notes.png").write_text("just text")
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "junk.onnx").write_bytes(np.random.default_rng(1).bytes(2048))
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)  # a header declaring 400 megapixels
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                                        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    red = np.zeros((16, 16, 3), np.uint8)
    red[:, :, 2] = 255
    cv2.imwrite(str(tmp_path / "red.png"), red)
    jpeg = cv2.imencode(".jpg", red)[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    code, _, err = run(capsys, *args(tmp_path, color_model))
    assert code == 1
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_unknown_flag_is_usage_error(capsys, color_model):
    code, _, err = run(capsys, "predict", color_model, "x.png", "--bogus")
    assert code == 2 and "No such option" in err


def test_export_cli_json_and_force(capsys, seed_h5, tmp_path):
    args = ["export", seed_h5, "-o", tmp_path, "--formats", "onnx", "--json"]
    code, out, _ = run(capsys, *args)
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["files"][0]["path"].endswith("seed_fp32.onnx")
    code, _, err = run(capsys, *args)
    assert code == 1 and "already exists; pass force=True to overwrite (3 files) (command line: --force)" in err
    code, out, _ = run(capsys, *args, "--force")
    assert code == 0
    code, _, err = run(capsys, "export", seed_h5, "-o", tmp_path / "q", "--quantize", "int8")
    assert code == 1 and "int8 needs calibration images" in err


def test_export_cli_fails_below_min_agreement(capsys, tmp_path):
    """A random-weight model on synthetic images has near-tied scores, so int8 flips some top-1s."""
    import builders

    builders.seeded(3)
    model = builders.seed_cnn()
    model.save(tmp_path / "random.keras")
    code, _, err = run(capsys, "export", tmp_path / "random.keras", "--formats", "tflite", "--quantize", "int8",
                         "--calib", _synthetic_folder(tmp_path), "--min-agreement", "1.0", "--max-rung", "int8", "--labels",
                         _labels(tmp_path))
    report = json.loads((tmp_path / "random_report.json").read_text())
    assert code == 1 and "below the minimum" in err
    assert (tmp_path / "random_int8.tflite").exists() and report["files"][0]["passed"] is False


def _synthetic_folder(tmp_path):
    from edgecls.converters.data import synthetic_images
    from edgecls.runtime.card import InputSpec

    folder = tmp_path / "calib"
    folder.mkdir()
    for i, image in enumerate(synthetic_images(40, InputSpec(32, 32))):
        cv2.imwrite(str(folder / f"{i}.png"), image)
    return folder


def _labels(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(str(i) for i in range(10)))
    return path


def test_entry_points_run():
    proc = subprocess.run([sys.executable, "-m", "edgecls", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout
    script = shutil.which("edgecls")
    assert script, "the edgecls console script is not installed"
    proc = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "export" in proc.stdout and "predict" in proc.stdout


def test_verbose_shows_traceback_and_quiet_hides_notes(capsys, tmp_path, seed_h5):
    proc = subprocess.run([sys.executable, "-m", "edgecls", "-v", "info", str(tmp_path / "missing.onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "no such model file" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgecls", "info", str(tmp_path / "missing.onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    code, out, _ = run(capsys, "export", seed_h5, "-o", tmp_path / "loud", "--formats", "onnx")
    assert code == 0 and "note:" in out
    code, out, _ = run(capsys, "-q", "export", seed_h5, "-o", tmp_path / "quiet", "--formats", "onnx")
    assert code == 0 and "note:" not in out and "seed_fp32.onnx" in out
    code, _, err = run(capsys, "-q", "-v", "info", tmp_path / "x.onnx")
    assert code == 2 and "mutually exclusive" in err


def test_every_command_has_help_with_examples(capsys):
    from edgecls.cli import cli

    for name in cli.commands:
        code, out, _ = run(capsys, name, "--help")
        assert code == 0 and "Example" in out, name


@pytest.fixture()
def folder_with_bad_images(tmp_path, digits_folders):
    """Six readable digits in class folders 3 and 4, plus an empty file and a truncated JPEG."""
    import shutil

    import cv2

    _, val = digits_folders
    for label in ("3", "4"):
        (tmp_path / label).mkdir()
        for image in sorted((val / label).glob("*.png"))[:3]:
            shutil.copy(image, tmp_path / label / image.name)
    (tmp_path / "3" / "empty.png").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", cv2.imread(str(next((val / "4").glob("*.png")))))[1].tobytes()
    (tmp_path / "4" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    return tmp_path


def test_predict_reports_bad_images_and_goes_on(capsys, int8_model, folder_with_bad_images):
    import json

    from edgecls.cli import main

    code = main(["predict", str(int8_model), str(folder_with_bad_images), "--json"])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert code == 1
    assert sum("categories" in line for line in lines) == 6
    assert sorted(Path(line["image"]).name for line in lines if "error" in line) == ["cut.jpg", "empty.png"]
    assert "file is empty" in captured.err and "truncated JPEG" in captured.err
    assert "2 of 8 images could not be read" in captured.err

    code = main(["predict", str(int8_model), str(folder_with_bad_images), "--strict"])
    captured = capsys.readouterr()
    assert code == 1 and captured.err.count("error:") == 1 and len(captured.out.strip().splitlines()) == 3


def test_eval_skips_bad_images_and_lists_them(capsys, int8_model, folder_with_bad_images):
    import json

    from edgecls.cli import main

    code = main(["eval", str(int8_model), str(folder_with_bad_images), "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)[0]
    assert code == 0 and result["images"] == 6 and result["top1"] >= 5 / 6
    assert sorted(Path(u["image"]).name for u in result["unreadable"]) == ["cut.jpg", "empty.png"]
    assert captured.err.count("skipped:") == 2
    assert main(["eval", str(int8_model), str(folder_with_bad_images), "--strict"]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "eval", "stream", "bench"])
def test_threads_below_one_is_the_same_usage_error_for_every_command(capsys, tmp_path, color_model, command):
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    args = {"predict": [color_model, tmp_path / "x.png"], "eval": [color_model, tmp_path],
            "stream": [color_model, tmp_path], "bench": [color_model]}[command]
    code, _, err = run(capsys, command, *args, "--threads", "0")
    assert code == 2 and "--threads" in err and ("x>=1" in err or "at least 1" in err), err
