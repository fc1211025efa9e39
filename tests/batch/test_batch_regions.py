"""edgecls batch with a ``boxes`` column: what a detector found in each image, classified box by box,
one row per box, resumable and captured like any other row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls import realdata
from edgecls.cli import main

pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def detections(tmp_path_factory, digits):
    """Four camera frames (720p and 1080p photos with held-out digits pasted at known boxes) as PNG files,
    and a CSV of what a detector found: a DeepStack answer saved as it came, a list of boxes with one
    wholly outside the frame, a row per box of one image, an image where the detector found nothing,
    and an image that is not there."""
    images, labels = digits
    frames = realdata.pasted_digits(images[1400:], labels[1400:], frames=2, per_frame=5)
    folder = tmp_path_factory.mktemp("detections")
    paths = []
    for n, (frame, _, _) in enumerate(frames):
        paths.append(folder / f"cam{n}.png")
        cv2.imwrite(str(paths[-1]), frame)
    boxes = [list(map(list, b)) for _, b, _ in frames]
    deepstack = {"success": True, "predictions": [
        {"label": "person", "confidence": 0.9, "x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1}
        for x0, y0, x1, y1 in boxes[0]]}
    width = frames[1][0].shape[1]
    rows = [("cam0.png", json.dumps(deepstack)),
            ("cam1.png", json.dumps([*boxes[1], [width + 10, 0, width + 50, 40]])),
            *((str(paths[2]), json.dumps(b)) for b in boxes[2]),  # absolute, one box a row
            ("cam3.png", ""), ("gone.png", "[[0, 0, 10, 10]]")]
    listing = folder / "detections.csv"
    with open(listing, "w", newline="") as f:
        import csv

        csv.writer(f).writerows([("path", "boxes"), *rows])
    expected = {str(paths[0]): boxes[0], str(paths[1]): [*boxes[1], [width + 10, 0, width + 50, 40]],
                str(paths[2]): boxes[2], str(paths[3]): []}
    return listing, expected


def _rows(out: Path) -> dict[tuple, dict]:
    rows = pq.read_table(out).to_pylist()
    keyed = {(r["path"], r["box"]): r for r in rows}
    assert len(keyed) == len(rows), "a box was written twice"
    return keyed


def _seed_int8(seed_export) -> Path:
    return next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "int8"))


def test_a_boxes_column_gives_a_row_per_box_with_what_classify_regions_answers(capsys, tmp_path, seed_export,
                                                                             detections):
    from edgecls.runtime import Classifier

    listing, expected = detections
    model = _seed_int8(seed_export)
    out = tmp_path / "out"
    code = main(["batch", str(model), str(listing), "-o", str(out), "--crop", "stretch", "--workers", "2", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = _rows(out)
    gone = os.path.abspath(listing.parent / "gone.png")
    assert code == 1 and summary["errors"] == 1 and summary["classified"] == summary["inputs"] == 5
    assert summary["rows"] == len(rows) == sum(max(1, len(b)) for b in expected.values()) + 1
    assert "no such image file" in rows[(gone, None)]["error"]  # an image that cannot be read: one row, its error
    assert rows[(str(listing.parent / "cam3.png"), None)]["skipped"] == "no boxes given"
    with Classifier.from_path(model) as clf:
        for path, boxes in expected.items():
            answers = clf.classify_regions(path, boxes, crop="stretch", max_results=5)
            for box, answer in enumerate(answers):
                row = rows[(path, box)]
                assert row["region"] == pytest.approx(boxes[box]) and row["error"] is None
                assert row["skipped"] == answer.skipped
                if answer.skipped is not None:
                    assert row["label"] is None and row["crop"] is None and "outside" in row["skipped"]
                    continue
                c = answer.crop
                assert row["crop"] == [c.left, c.top, c.right, c.bottom]
                assert row["labels"] == [x.label for x in answer.categories] and row["label"] == answer.top.label
                np.testing.assert_allclose(row["scores"], [x.score for x in answer.categories], atol=1e-6)
    assert {r["detected"] for k, r in rows.items() if k[0].endswith("cam0.png")} == {"person"}


def test_boxes_resume_per_image_and_a_parquet_list_gives_the_same_rows(capsys, tmp_path, seed_export, detections):
    """A shard lost to a kill is classified again by --resume, box rows and all, and nothing twice; a
    Parquet list with the boxes as a list column gives the CSV's rows; the policy is part of what a
    resumed run must share."""
    from edgecls.batch import BatchOptions, run
    from edgecls.runtime.errors import OptionError

    listing, expected = detections
    model = _seed_int8(seed_export)
    out = tmp_path / "out"
    run(model, [listing], out, BatchOptions(workers=2, shard_size=1, crop="square:1.2"))
    full = _rows(out)
    lost = max(out.glob("part-*.parquet"), key=lambda p: pq.read_metadata(p).num_rows)
    assert pq.read_metadata(lost).num_rows > 1
    lost.unlink()
    again = run(model, [listing], out, BatchOptions(workers=2, resume=True, crop="square:1.2,shift"))
    assert again.classified == 1 and again.skipped == 4
    resumed = _rows(out)
    assert resumed.keys() == full.keys()
    assert all(resumed[k]["scores"] == full[k]["scores"] for k in full)
    with pytest.raises(OptionError, match="crop"):
        run(model, [listing], out, BatchOptions(resume=True, crop="stretch"))

    import pyarrow as pa

    table = pa.table({"path": list(expected), "boxes": [
        [{"x_min": b[0], "y_min": b[1], "x_max": b[2], "y_max": b[3]} for b in boxes] for boxes in expected.values()]})
    pq.write_table(table, tmp_path / "detections.parquet")
    run(model, [tmp_path / "detections.parquet"], tmp_path / "parquet", BatchOptions(workers=1, crop="square:1.2"))
    from_parquet = _rows(tmp_path / "parquet")
    assert from_parquet.keys() == {k for k in full if not k[0].endswith("gone.png")}
    for key, row in from_parquet.items():
        assert (row["label"], row["crop"], row["skipped"]) == (full[key]["label"], full[key]["crop"], full[key]["skipped"])


def test_batch_captures_the_crop_of_a_hard_box_not_the_frame(capsys, tmp_path, seed_export, detections):
    listing, _ = detections
    model = _seed_int8(seed_export)
    out, hard = tmp_path / "out", tmp_path / "hard"
    argv = ["batch", str(model), str(listing), "-o", str(out), "--workers", "1", "--json", "--capture", str(hard),
            "--capture-below", "0.999"]
    main(argv)
    rows = _rows(out)
    wanted = {(k[0], tuple(r["crop"])) for k, r in rows.items() if r["score"] is not None and r["score"] < 0.999}
    sidecars = [json.loads(s.read_text()) for s in sorted(hard.glob("*/*.json"))]
    assert 0 < len(wanted) < len(rows)
    assert {(m["source"], tuple(m["crop"])) for m in sidecars} == wanted
    for sidecar in sorted(hard.glob("*/*.json")):
        meta = json.loads(sidecar.read_text())
        left, top, right, bottom = meta["crop"]
        saved = cv2.imread(str(sidecar.with_suffix(".jpg")))
        frame = cv2.imread(meta["source"])
        assert saved.shape == (bottom - top, right - left, 3)  # the crop, at the frame's resolution
        assert np.abs(saved.astype(int) - frame[top:bottom, left:right]).mean() < 8  # JPEG of those pixels
    capsys.readouterr()
    main([*argv, "--resume"])
    assert len(list(hard.glob("*/*.json"))) == len(wanted)  # nothing captured twice


def test_bad_boxes_in_a_list_are_named_before_anything_runs(capsys, tmp_path, seed_export, detections):
    listing, _ = detections
    model = _seed_int8(seed_export)
    bad = tmp_path / "bad.csv"
    for cell, words in [('"[[10, 10, 5, 20]]"', "row 1: region 0: a box needs x_max > x_min"),
                        ("not json", "row 1: the boxes are not JSON"),
                        ('"{""boxes"": 1}"', "row 1: region 0: a box dict has x_min")]:
        bad.write_text(f"path,boxes\n{listing.parent / 'cam0.png'},{cell}\n")
        assert main(["batch", str(model), str(bad), "-o", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert f"{bad} {words}" in err, err
    bad.write_text(f"path,boxes\n{listing.parent},\"[[0,0,5,5]]\"\n")
    assert main(["batch", str(model), str(bad), "-o", str(tmp_path / "o")]) == 1
    assert "boxes are the regions of one image" in capsys.readouterr().err
    assert main(["batch", str(model), str(listing), "-o", str(tmp_path / "o"), "--crop", "round"]) == 1
    assert "unknown crop mode 'round'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_ray_engine_gives_the_box_rows_of_the_local_engine(tmp_path, seed_export, detections):
    pytest.importorskip("ray.data")
    listing, _ = detections
    model = _seed_int8(seed_export)
    for engine in ("local", "ray"):
        done = subprocess.run([sys.executable, "-m", "edgecls", "batch", str(model), str(listing), "-o",
                               str(tmp_path / engine), "--engine", engine, "--workers", "2", "--crop", "letterbox"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    local, ray = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert local.keys() == ray.keys()
    for key, row in local.items():
        assert (row["label"], row["crop"], row["skipped"], row["error"]) == (
            ray[key]["label"], ray[key]["crop"], ray[key]["skipped"], ray[key]["error"])
