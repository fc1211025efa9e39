"""edgecls batch --drift: the whole archive against the model's reference profile, merged exactly from
every worker's shards (the same report as ``edgecls drift`` over the same images), each image counted
once across resumes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls.cli import main

pq = pytest.importorskip("pyarrow.parquet")


def cli_json(capsys, *argv) -> tuple[int, dict]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert out.strip(), err[-2000:]
    return code, json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def folders(tmp_path_factory, digits):
    """a/ (150) and b/ (150): held-out digits at 0.3× their brightness, PNG (read as written)."""
    images, _ = digits
    root = tmp_path_factory.mktemp("dark")
    for name, part in (("a", images[1400:1550]), ("b", images[1550:1700])):
        (root / name).mkdir()
        for i, image in enumerate(part):
            cv2.imwrite(str(root / name / f"{i:03d}.png"), (image[:, :, ::-1] * 0.3).astype(np.uint8))
    return root / "a", root / "b"


def drift_of(capsys, model: Path, *folders: Path) -> dict:
    """``edgecls drift --json``: the same images in one process, one window."""
    code, report = cli_json(capsys, "drift", model, *folders, "--json")
    assert code == 0
    return report


def assert_same_report(batch: dict, single: dict) -> None:
    """The counts are integers merged exactly: the same PSI and shares per signal, the same states."""
    assert batch["images"] == single["images"] and batch["state"] == single["state"]
    assert set(batch["signals"]) == set(single["signals"])
    for name, s in single["signals"].items():
        b = batch["signals"][name]
        assert (b["psi"], b["state"], b["shares"]) == (s["psi"], s["state"], s["shares"]), name
        assert b["mean"] == pytest.approx(s["mean"], abs=2e-4), name


def test_batch_drift_merges_every_workers_shards_into_the_report_edgecls_drift_gives(capsys, tmp_path, int8_model,
                                                                                      folders):
    a, b = folders
    out = tmp_path / "out"
    code, summary = cli_json(capsys, "batch", int8_model, a, b, "-o", out, "--workers", "2", "--drift", "--json")
    assert code == 0 and summary["classified"] == 300
    drift = summary["drift"]
    assert drift["shards"] >= 4 and drift["shards_without"] == 0  # two workers, about four shards each
    assert drift["state"] == "alert" and drift["signals"]["brightness"]["state"] == "alert"
    assert "brightness fell" in drift["signals"]["brightness"]["reason"]
    assert json.loads((out / "_drift.json").read_text()) == drift
    assert_same_report(drift, drift_of(capsys, int8_model, a, b))
    assert pq.read_table(out).num_rows == 300  # the report beside the shards is not read as one
    assert main(["batch", str(int8_model), str(a), "-o", str(tmp_path / "text"), "--drift"]) == 0
    text = capsys.readouterr().out
    assert "drift: alert over 150 images against the reference of 397" in text and "brightness fell" in text


def test_each_image_is_counted_once_across_resumes(capsys, tmp_path, int8_model, folders):
    """A run over a/, resumed over a/ and b/: the report is of the 300 images, as one run's. A run that
    resumes one made without --drift reports the shards it cannot compare; a shard whose tally is not one
    (damaged or forged metadata) is one of those, never an error."""
    from edgecls.batch.drift import TALLY_KEY

    a, b = folders
    out = tmp_path / "out"
    assert cli_json(capsys, "batch", int8_model, a, "-o", out, "--workers", "2", "--drift", "--json")[0] == 0
    code, summary = cli_json(capsys, "batch", int8_model, a, b, "-o", out, "--workers", "2", "--drift", "--resume",
                             "--json")
    assert code == 0 and summary["skipped"] == 150 and summary["classified"] == 150
    assert summary["drift"]["shards_without"] == 0
    assert_same_report(summary["drift"], drift_of(capsys, int8_model, a, b))

    plain = tmp_path / "plain"
    assert cli_json(capsys, "batch", int8_model, a, "-o", plain, "--json")[1].get("drift") is None
    earlier = len(list(plain.glob("part-*.parquet")))
    code, summary = cli_json(capsys, "batch", int8_model, a, b, "-o", plain, "--drift", "--resume", "--json")
    drift = summary["drift"]
    assert drift["images"] == 150 and drift["shards_without"] == earlier > 0
    assert drift["shards"] == len(list(plain.glob("part-*.parquet"))) > earlier
    assert_same_report(drift, drift_of(capsys, int8_model, b))

    part = sorted(out.glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    pq.write_table(table.replace_schema_metadata({TALLY_KEY: b"[" * 100_000}), part)  # deeper than json reads
    code, again = cli_json(capsys, "batch", int8_model, a, b, "-o", out, "--drift", "--resume", "--json")
    assert code == 0 and again["classified"] == 0
    assert again["drift"]["shards_without"] == 1 and again["drift"]["images"] == 300 - table.num_rows


def test_drift_needs_a_reference_profile_and_says_so_before_writing(capsys, tmp_path, monkeypatch):
    from edgecls.batch import BatchOptions
    from edgecls.runtime.errors import OptionError
    from edgecls.runtime.testing import write_fake_model

    monkeypatch.setenv("EDGECLS_PLUGINS", "edgecls.runtime.testing")
    model = write_fake_model(tmp_path / "bands.fake", ["dark", "bright"], scores="brightness", size=(8, 8))
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "x.png"), np.zeros((8, 8, 3), np.uint8))
    assert main(["batch", str(model), str(images), "-o", str(tmp_path / "out"), "--drift"]) == 1
    assert "no reference profile" in capsys.readouterr().err and not (tmp_path / "out").exists()
    with pytest.raises(OptionError, match="drift takes MonitorOptions or True"):
        BatchOptions(drift="yes")


def test_a_tally_of_another_reference_or_not_a_tally_is_not_absorbed(int8_model):
    """The driver merges only tallies of its own reference and signals; anything else adds nothing."""
    from edgecls.batch.drift import worker_monitor
    from edgecls.runtime import Classifier

    with Classifier.from_path(int8_model, monitor=worker_monitor(True)) as clf:
        monitor = clf.monitor
        clf.scores_batch([np.full((32, 32, 3), v, np.uint8) for v in range(0, 250, 10)])
        tally = monitor.take()
        assert tally["images"] == 25 and monitor.take()["images"] == 0
        other = dict(tally, profile="0" * 16)
        negative = dict(tally, classes=[-1] * len(tally["classes"]))
        short = dict(tally, counts={k: v[:-1] for k, v in tally["counts"].items()})
        for bad in (other, negative, short, {}, [], {"counts": 1}, dict(tally, images="many")):
            assert monitor.absorb(bad) is False
        assert monitor.close() is None  # nothing was added
        assert monitor.absorb(json.loads(json.dumps(tally))) and monitor.absorb(tally)
        assert monitor.close().images == 50
