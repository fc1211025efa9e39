"""edgecls batch: archives into Parquet on this machine's cores or Ray Data, each input exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from builders import blocked_env

from edgecls.cli import main

pq = pytest.importorskip("pyarrow.parquet")


def read_rows(out: Path) -> dict[str, dict]:
    """{key: row} of an output folder; fails on a key written twice."""
    rows = pq.read_table(out).to_pylist()
    keyed = {r["path"] if r["frame"] is None else f"{r['path']}#{r['frame']}": r for r in rows}
    assert len(keyed) == len(rows), "a key was written twice"
    return keyed


def predict_json(capsys, model: Path, folder: Path, top_k: int) -> dict[str, dict]:
    code = main(["predict", str(model), str(folder), "--json", "--top-k", str(top_k)])
    out, _ = capsys.readouterr()
    results = [json.loads(line) for line in out.splitlines()]
    return {os.path.abspath(r["image"]): r for r in results}, code


def cli_json(capsys, *argv) -> tuple[int, dict, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


@pytest.fixture(scope="module")
def archive(tmp_path_factory, digits_folders):
    """The 360 held-out digits in class folders, plus an empty file and a truncated JPEG."""
    _, val = digits_folders
    root = tmp_path_factory.mktemp("archive") / "val"
    shutil.copytree(val, root)
    (root / "3" / "empty.png").write_bytes(b"")
    jpeg = cv2.imencode(".jpg", cv2.imread(str(next((val / "4").glob("*.png")))))[1].tobytes()
    (root / "4" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    return root


def _models(seed_export):
    return {(f.format, f.quantization): f.path for f in seed_export.files}


def assert_same_as_predict(rows: dict[str, dict], predicted: dict[str, dict], top_k: int) -> None:
    assert set(rows) == set(predicted)
    for key, row in rows.items():
        p = predicted[key]
        if "error" in p:
            assert row["error"] == p["error"] and row["label"] is None
            continue
        assert row["error"] is None
        assert row["label"] == p["categories"][0]["label"]
        assert row["labels"] == [c["label"] for c in p["categories"]] and len(row["labels"]) == top_k
        np.testing.assert_allclose(row["scores"], [c["score"] for c in p["categories"]], atol=1e-5)


@pytest.mark.parametrize("kind", [("tflite", "int8"), ("onnx", "fp32")])
def test_local_batch_gives_what_predict_gives_for_every_image(capsys, tmp_path, seed_export, archive, kind):
    model = _models(seed_export)[kind]
    predicted, predict_code = predict_json(capsys, model, archive, 3)
    code, summary, _ = cli_json(capsys, "batch", model, archive, "-o", tmp_path / "out", "--top-k", 3,
                                  "--workers", 2, "--json")
    rows = read_rows(tmp_path / "out")
    assert code == predict_code == 1  # two unreadable inputs
    assert summary["inputs"] == summary["classified"] == summary["rows"] == len(rows) == len(predicted) > 300
    assert summary["errors"] == 2 and summary["workers"] == 2 and summary["images_per_s"] > 0
    assert_same_as_predict(rows, predicted, 3)
    errors = {Path(k).name: r["error"] for k, r in rows.items() if r["error"]}
    assert "empty.png: file is empty" in errors["empty.png"] and "truncated JPEG" in errors["cut.jpg"]
    sha = next(iter(rows.values()))["model_sha256"]
    import hashlib

    assert sha == hashlib.sha256(Path(model).read_bytes()).hexdigest()
    assert {r["model"] for r in rows.values()} == {summary["model"]}


@pytest.mark.slow
def test_ray_engine_gives_the_same_rows_as_the_local_engine(tmp_path, seed_export, archive):
    """A local Ray instance started and stopped by the command itself (a separate process: Ray stays out
    of the test process); with --capture, the items it keeps are the Ray rows under the threshold; with
    --drift, the same report as the local engine's."""
    pytest.importorskip("ray.data")
    model = _models(seed_export)[("tflite", "int8")]
    local = subprocess.run([sys.executable, "-m", "edgecls", "batch", str(model), str(archive), "-o",
                            str(tmp_path / "local"), "--json", "--drift"], capture_output=True, text=True, timeout=300)
    assert local.returncode == 1, local.stderr[-3000:]
    below = float(np.median([r["score"] for r in read_rows(tmp_path / "local").values() if r["error"] is None]))
    hard = tmp_path / "hard"
    ray = subprocess.run([sys.executable, "-m", "edgecls", "batch", str(model), str(archive), "-o",
                          str(tmp_path / "ray"), "--engine", "ray", "--workers", "2", "--json",
                          "--capture", str(hard), "--capture-below", str(below), "--drift"],
                         capture_output=True, text=True, timeout=600)
    assert ray.returncode == 1, ray.stderr[-3000:]
    summary = json.loads(ray.stdout.strip().splitlines()[-1])
    assert summary["engine"] == "ray" and summary["classified"] == len(list(archive.rglob("*.*"))) and summary["errors"] == 2
    assert summary["start_s"] > 0 and summary["workers"] == 2
    a, b = read_rows(tmp_path / "local"), read_rows(tmp_path / "ray")
    assert set(a) == set(b)
    for key in a:
        assert a[key]["label"] == b[key]["label"] and a[key]["error"] == b[key]["error"]
        if a[key]["scores"] is not None:
            np.testing.assert_allclose(a[key]["scores"], b[key]["scores"], atol=1e-6)
    assert "Traceback" not in ray.stderr
    local_drift = json.loads(local.stdout.strip().splitlines()[-1])["drift"]  # each actor's tallies, merged
    assert summary["drift"]["images"] == local_drift["images"] == len(a) - 2
    assert {k: (s["psi"], s["shares"]) for k, s in summary["drift"]["signals"].items()} == \
        {k: (s["psi"], s["shares"]) for k, s in local_drift["signals"].items()}
    expected = {key for key, r in b.items() if r["error"] is None and r["score"] < below}
    assert 0 < len(expected) < len(b) and summary["capture"]["written"] == len(expected)
    sources = [json.loads(s.read_text())["source"] for s in hard.glob("*/*.json")]
    assert sorted(sources) == sorted(expected)  # each once; the archive has no video, so a key is a path


def test_inputs_lists_globs_and_video_frames(tmp_path, seed_export, digits_folders, digit_video):
    from edgecls.batch import BatchOptions, run
    from edgecls.runtime import Classifier

    model = _models(seed_export)[("tflite", "int8")]
    _, val = digits_folders
    threes = sorted((val / "3").glob("*.png"))
    (tmp_path / "list.txt").write_text("# a camera's exports\n" + "\n".join(
        os.path.relpath(p, tmp_path) for p in threes[:4]) + "\nmissing.png\n")
    (tmp_path / "list.csv").write_text("path,site\n" + "".join(f"{p},north\n" for p in threes[4:6]))
    video, _ = digit_video
    summary = run(model, [tmp_path / "list.txt", tmp_path / "list.csv", str(val / "7" / "*.png"), video],
                  tmp_path / "out", BatchOptions(every_seconds=0.2, workers=2))
    rows = read_rows(tmp_path / "out")
    sevens = len(list((val / "7").glob("*.png")))
    frames = [r for r in rows.values() if r["frame"] is not None]
    assert summary.inputs == len(rows) == 4 + 1 + 2 + sevens + len(frames)
    assert sorted(r["frame"] for r in frames) == list(range(0, 40, 5))  # 25 fps, one frame per 0.2 s
    assert all(r["time_s"] == pytest.approx(r["frame"] / 25) for r in frames)
    missing = rows[str(tmp_path / "missing.png")]
    assert summary.errors == 1 and "no such image file" in missing["error"]
    capture = cv2.VideoCapture(str(video))
    with Classifier.from_path(model) as clf:
        for index in range(40):
            ok, frame = capture.read()
            assert ok
            if index % 5 == 0:
                row = rows[f"{os.path.abspath(video)}#{index}"]
                assert row["label"] == clf.classify(frame).top.label
    capture.release()


def test_resume_classifies_only_what_is_missing_and_refuses_another_model(capsys, tmp_path, seed_export,
                                                                          digits_folders):
    from edgecls.batch import BatchOptions, run
    from edgecls.batch.output import pyarrow_parquet
    from edgecls.runtime.errors import OptionError

    models = _models(seed_export)
    model = models[("tflite", "int8")]
    _, val = digits_folders
    out = tmp_path / "out"
    first = run(model, [val / "3"], out)
    code = main(["batch", str(model), str(val), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "holds the results of an earlier run" in err and "--resume" in err
    (out / ".tmp-x.parquet").write_bytes(b"PAR1 half")  # what a killed run leaves: a shard being written
    second = run(model, [val], out, BatchOptions(resume=True))
    rows = read_rows(out)
    total = sum(1 for _ in val.rglob("*.png"))
    assert second.skipped == first.classified > 0 and second.classified == total - first.classified
    assert second.rows == len(rows) == total
    assert not list(out.glob(".tmp-*"))
    with pytest.raises(OptionError, match="top_k 5, now 3"):
        run(model, [val], out, BatchOptions(resume=True, top_k=3))
    with pytest.raises(OptionError, match="model_sha256"):
        run(models[("onnx", "int8")], [val], out, BatchOptions(resume=True))
    assert pyarrow_parquet().read_table(out).num_rows == total  # refused runs wrote nothing


def test_bad_options_are_usage_errors_or_named(capsys, tmp_path, seed_export, digits_folders):
    model = _models(seed_export)[("tflite", "int8")]
    _, val = digits_folders
    assert main(["batch", str(model), str(val), "-o", str(tmp_path / "o"), "--ray-address", "x:1"]) == 2
    assert main(["batch", str(model), str(tmp_path / "nothing"), "-o", str(tmp_path / "o")]) == 1
    assert "no such image, folder, list file or video" in capsys.readouterr().err
    assert main(["batch", str(model), str(tmp_path / "*.jpg"), "-o", str(tmp_path / "o")]) == 1
    assert "matches no file" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["batch", str(model), str(val), "-o", str(tmp_path / "file")]) == 1
    assert "is a file" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "none.tflite"), str(val), "-o", str(tmp_path / "o")]) == 1
    assert "none.tflite" in capsys.readouterr().err


def test_the_ray_engine_refuses_an_onnx_model_with_its_weights_in_other_files(tmp_path, seed_export):
    pytest.importorskip("onnx")
    from hostile import external_data_model

    from edgecls.batch.ray_engine import model_bytes
    from edgecls.runtime.errors import EdgeclsError

    path = external_data_model(tmp_path, "weights.bin")
    with pytest.raises(EdgeclsError, match=r"keeps its weights in other files \(weights\.bin\)"):
        model_bytes(path)
    plain = _models(seed_export)[("onnx", "int8")]
    assert model_bytes(plain) == plain.read_bytes()


def test_local_engine_works_without_ray_and_the_ray_engine_names_its_extra(tmp_path, seed_export, digits_folders):
    """Ray, TensorFlow and Keras blocked in the command and in every worker it spawns (sitecustomize)."""
    model = _models(seed_export)[("tflite", "int8")]
    _, val = digits_folders
    env = blocked_env(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "edgecls", "batch", str(model), str(val / "1"), "-o",
                         str(tmp_path / "a"), "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads(ok.stdout)["classified"] == len(list((val / "1").glob("*.png"))) > 0
    ray = subprocess.run([sys.executable, "-m", "edgecls", "batch", str(model), str(val / "1"), "-o",
                          str(tmp_path / "b"), "--engine", "ray"], capture_output=True, text=True, env=env, timeout=300)
    assert ray.returncode == 1 and "pip install 'edgecls[ray]'" in ray.stderr and "Traceback" not in ray.stderr


def test_progress_is_a_bar_on_a_terminal_and_a_line_per_tenth_elsewhere():
    import io

    from edgecls.batch.progress import Progress

    bar = io.StringIO()
    progress = Progress(200, bar, tty=True)
    progress.update(100)
    progress.update(100)
    progress.close()
    shown = bar.getvalue()
    assert shown.startswith("\r[###############...............] 100/200 ") and "ETA 0:" in shown
    assert "\r[##############################] 200/200 " in shown and shown.endswith("\n")
    log = io.StringIO()
    progress = Progress(200, log, tty=False)
    for _ in range(40):
        progress.update(5)
    lines = log.getvalue().splitlines()
    assert [line.split("(")[1].split("%")[0] for line in lines] == [str(p) for p in range(10, 101, 10)]
    assert lines[-1].startswith("batch: 200 of 200 classified (100%)")


def test_a_shard_that_cannot_be_written_is_an_error_naming_it_and_leaves_nothing(tmp_path):
    from edgecls.batch.output import commit_table, schema
    from edgecls.runtime.errors import EdgeclsError

    gone = tmp_path / "removed-meanwhile"
    with pytest.raises(EdgeclsError, match=r"part-x\.parquet: cannot write results"):
        commit_table(gone, schema().empty_table(), "x")
    assert not gone.exists()


def test_batch_captures_the_hard_items_once_across_resumes(capsys, tmp_path, seed_export, archive, digits,
                                                           digit_video):
    """--capture: the rows under the threshold, exactly, as the items themselves (a JPEG byte for byte);
    a capture pass cut short is completed by --resume without writing any item twice."""
    from edgecls.batch.capture import MARKS
    from edgecls.batch.inputs import item_key as row_key

    model = _models(seed_export)[("tflite", "int8")]
    images, _ = digits
    folder = tmp_path / "in"
    shutil.copytree(archive, folder)
    blends = {}
    for i in range(1400, 1420):
        blend = cv2.resize(cv2.addWeighted(images[i], 0.5, images[i + 1], 0.5, 0)[:, :, ::-1], (64, 64))
        path = folder / f"blend{i}.jpg"
        path.write_bytes(cv2.imencode(".jpg", blend, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
        blends[str(path)] = path.read_bytes()
    out, hard = tmp_path / "out", tmp_path / "hard"
    argv = ["batch", model, folder, digit_video[0], "-o", out, "--every-seconds", "0.2", "--workers", "2",
            "--capture", hard, "--capture-below", "0.9", "--json"]
    code, summary, _ = cli_json(capsys, *argv)
    rows = read_rows(out)
    expected = {key for key, r in rows.items() if r["error"] is None and r["score"] < 0.9}
    assert code == 1 and summary["errors"] == 2  # the empty file and the cut JPEG: rows with errors, not captures
    assert expected & set(blends) and len(expected) < len(rows)

    def captured() -> dict[str, dict]:
        sidecars = sorted(hard.glob("*/*.json"))
        assert len(sidecars) == len(list(hard.glob("*/*.jpg")))
        found = {row_key(m["source"], m["frame"]): {**m, "jpg": s.with_suffix(".jpg")}
                 for s in sidecars for m in [json.loads(s.read_text())]}
        assert len(found) == len(sidecars), "an item was captured twice"
        return found

    found = captured()
    assert set(found) == expected and summary["capture"]["written"] == len(expected)
    for key, meta in found.items():
        row = rows[key]
        assert list(meta["scores"]) == row["labels"] and meta["label"] == row["label"] == meta["jpg"].parent.name
        np.testing.assert_allclose(list(meta["scores"].values()), row["scores"], atol=1e-6)
        if key in blends:
            assert meta["jpg"].read_bytes() == blends[key]  # a JPEG is kept as it came
    # a capture pass killed halfway: one shard without its mark, half of its captures not written yet
    part = next(p for p in sorted(out.glob("part-*.parquet"))
                if expected & {row_key(r["path"], r["frame"]) for r in pq.read_table(p).to_pylist()})
    (out / MARKS / part.stem).unlink()
    in_part = sorted(expected & {row_key(r["path"], r["frame"]) for r in pq.read_table(part).to_pylist()})
    for key in in_part[: (len(in_part) + 1) // 2]:
        found[key]["jpg"].unlink()
        found[key]["jpg"].with_suffix(".json").unlink()
    code, again, _ = cli_json(capsys, *argv, "--resume")
    assert again["classified"] == 0 and again["capture"]["written"] == (len(in_part) + 1) // 2
    assert set(captured()) == expected
    code, third, _ = cli_json(capsys, *argv, "--resume")
    assert third["capture"]["written"] == 0 and set(captured()) == expected


def test_batch_workers_open_a_fake_model_by_path_and_every_row_is_its_images_answer(capsys, tmp_path, monkeypatch):
    """The local engine's worker processes open the model by path: a fake model file (``EDGECLS_PLUGINS``
    reaches them) answering by brightness, so each row's label is known from its image whatever worker and
    batch classified it."""
    from edgecls.runtime.testing import write_fake_model

    monkeypatch.setenv("EDGECLS_PLUGINS", "edgecls.runtime.testing")
    model = write_fake_model(tmp_path / "bands.fake", ["dark", "mid", "bright"], scores="brightness", size=(8, 8))
    images, expected = tmp_path / "images", {}
    images.mkdir()
    bands = {10: "dark", 60: "dark", 100: "mid", 150: "mid", 200: "bright", 250: "bright"}  # thirds of 0-255
    for i in range(120):
        value = list(bands)[(i * 7) % len(bands)]
        path = images / f"{i:03d}.png"
        cv2.imwrite(str(path), np.full((10 + i % 7, 12, 3), value, np.uint8))
        expected[str(path)] = bands[value]
    code, summary, _ = cli_json(capsys, "batch", model, images, "-o", tmp_path / "out", "--workers", 2, "--json")
    rows = read_rows(tmp_path / "out")
    assert code == 0 and summary["classified"] == summary["rows"] == 120 and summary["workers"] == 2
    assert {key: row["label"] for key, row in rows.items()} == expected
