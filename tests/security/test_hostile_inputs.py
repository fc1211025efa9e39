"""Hostile images, folders, outputs and option values (issue 14): a specific error (the CLI's one
``error:`` line and exit 1), no traceback, no signal, no hang, peak RSS under 500 MB in a fresh process."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from hostile import card_text, jpeg, jpeg_with_junk_before_its_size, onnx_model, run_cli, tiff_bomb

MAX_RSS_MB = 500


def jpeg_with_scans(count: int) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``count`` scans."""
    data = jpeg(progressive=True)
    last = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    scans = data.count(b"\xff\xda")
    return data[:end] + data[last:end] * (count - scans) + data[end:]


@pytest.mark.parametrize("name, write, message", [
    ("jpeg-junk-byte.jpg", lambda p: p.write_bytes(jpeg_with_junk_before_its_size()), "declares a 20000×20000"),
    ("huge.tiff", lambda p: p.write_bytes(tiff_bomb()), "cannot decode image"),
    ("scans.jpg", lambda p: p.write_bytes(jpeg_with_scans(5000)), "JPEG with 5,000 scans"),
    ("sparse.png", lambda p: os.truncate(p.touch() or p, 3 << 30), "over the limit of 268,435,456"),
])
def test_an_image_bomb_is_refused_before_it_is_decoded(tmp_path, color_model, name, write, message):
    path = tmp_path / name
    write(path)
    run = run_cli(["predict", str(color_model), str(path)], tmp_path)
    assert (run.exit_code, run.signal) == (1, None), (run.exit_code, run.signal, run.stderr[-1500:])
    assert run.stderr.startswith(f"error: {path}: ") and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and run.peak_mb < MAX_RSS_MB, run.peak_mb


def test_the_header_check_reads_past_junk_and_counts_scans():
    from edgecls.runtime.imageheader import header_size, jpeg_scans

    assert header_size(jpeg_with_junk_before_its_size(300, 200)) == (300, 200)
    assert jpeg_scans(jpeg_with_scans(120)) == 120


def test_a_stream_over_a_folder_skips_a_bomb_through_the_same_gate(tmp_path, color_model):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 32, 3), 60 * i, np.uint8))
    (folder / "1_bomb.tiff").write_bytes(tiff_bomb())
    run = run_cli(["stream", str(color_model), str(folder), "--json"], tmp_path)
    assert (run.exit_code, run.signal) == (0, None), run.stderr[-1500:]
    frames = [json.loads(line) for line in run.stdout.splitlines() if '"frame"' in line or '"index"' in line]
    assert len(frames) == 3 and "1_bomb.tiff" in run.stderr and "Traceback" not in run.stderr
    assert run.peak_mb < MAX_RSS_MB


def test_folders_nested_too_deep_are_an_error_not_a_recursion_error(tmp_path, color_model):
    deep = tmp_path / "deep"
    leaf = deep.joinpath(*["d"] * 200)
    leaf.mkdir(parents=True)
    cv2.imwrite(str(leaf / "x.png"), np.zeros((8, 8, 3), np.uint8))
    for command in (["predict", str(color_model), str(deep)], ["stream", str(color_model), str(deep)]):
        run = run_cli(command, tmp_path)
        assert (run.exit_code, run.signal) == (1, None), (command, run.stdout[-500:], run.stderr[-1500:])
        assert "nested more than 64 levels" in run.stderr and "Traceback" not in run.stderr


def test_stream_out_does_not_write_through_a_planted_link(tmp_path, color_model):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((32, 32, 3), 80 * i, np.uint8))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out.avi"
    for name in (".out.edgecls-tmp.avi", ".out.avi.tmp", ".edgecls-tmp.avi"):  # names a writer might pick
        (tmp_path / name).symlink_to(victim)
    run = run_cli(["stream", str(color_model), str(frames), "--out", str(out)], tmp_path)
    assert run.exit_code == 0, run.stderr
    assert victim.read_text() == "keep me"
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == 3
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink() and p.name.startswith(".")]


def test_labels_and_paths_print_without_escapes_or_markup(tmp_path):
    labels = ["\x1b[31mred", "[/]", "a[b]c", "\x07bell"]
    card = json.loads(card_text(4))
    card["labels"] = labels
    model = onnx_model(tmp_path / "m.onnx", card=json.dumps(card))
    folder = tmp_path / "val[" / "]data"  # its path reads "val[/]data": a closing tag to rich
    for label in labels:
        if "/" in label:
            continue  # no folder can be named so; the per-class table still lists the label
        (folder / label).mkdir(parents=True)
        cv2.imwrite(str(folder / label / "x.png"), np.full((8, 8, 3), 100, np.uint8))
    for command in (["eval", str(model), str(folder)], ["predict", str(model), str(folder)], ["info", str(model)]):
        run = run_cli(command, tmp_path)
        assert run.exit_code == 0 and "Traceback" not in run.stderr, (command, run.stderr[-1500:])
        assert "\x1b" not in run.stdout + run.stderr and "\x07" not in run.stdout + run.stderr, command
    assert "\\x1b[31mred" in run.stdout and "[/]" in run.stdout


def test_scores_that_are_nan_print_as_json_null(tmp_path):
    import onnx

    model = onnx_model(tmp_path / "m.onnx", card=card_text())
    proto = onnx.load(str(model))
    for init in proto.graph.initializer:
        if init.name == "w":
            init.raw_data = np.full((3, 4), np.nan, np.float32).tobytes()
    onnx.save(proto, str(model))
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.full((8, 8, 3), 100, np.uint8))
    run = run_cli(["predict", str(model), str(image), "--json"], tmp_path)
    assert run.exit_code == 0, run.stderr

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    row = json.loads(run.stdout.splitlines()[0], parse_constant=refuse)
    assert all(c["score"] is None for c in row["categories"])


@pytest.mark.parametrize("args, message", [
    (["stream", "{model}", "{frames}", "--smooth", str(10**20)], "at most 10000 frames"),
    (["predict", "{model}", "{frames}", "--threads", "3000"], "num_threads is 3000; at most"),
    (["predict", "{model}", "{frames}", "--threads", str(10**20)], "at most"),
    (["stream", "{model}", "{frames}", "--mqtt", "localhost:1883/" + "t" * 70_000], "MQTT allows 65,535"),
])
def test_extreme_option_values_are_one_error_line(tmp_path, color_model, args, message):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), np.zeros((8, 8, 3), np.uint8))
    run = run_cli([a.format(model=color_model, frames=frames) for a in args], tmp_path)
    assert (run.exit_code, run.signal) == (1, None), run.stderr[-1500:]
    assert run.stderr.startswith("error:") and message in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("topic, message", [("a\x00b", "NUL"), ("a\udcffb", "not valid UTF-8")])
def test_mqtt_topics_mqtt_forbids_are_refused(topic, message):
    """(argv cannot carry a NUL: the Python API can, and a topic decoded from bytes that are not UTF-8.)"""
    from edgecls.sinks.base import SinkError
    from edgecls.sinks.mqtt import MqttTarget

    with pytest.raises(SinkError, match=message):
        MqttTarget.parse(f"localhost:1883/{topic}")


def test_an_export_labels_file_that_is_not_utf8_is_an_export_error(tmp_path):
    from edgecls.converters.errors import ExportError
    from edgecls.converters.provenance import resolve_labels

    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"cat\n\xff\xfedog\n")
    with pytest.raises(ExportError, match=r"labels\.txt: labels file is not UTF-8 text \(byte 4"):
        resolve_labels(labels, [], 2, [])
