"""``edgecls bench --pick DIR``: every file × installed engine × thread count measured, candidates outside their
accuracy budget discarded, the fastest of the rest written to ``DIR/deploy.json``; and that record used by
``predict``, ``serve``, ``batch``, ``info`` and ``Classifier.from_path(DIR)``. No timing is asserted: which
candidate is fastest is this machine's business; that the pick is the fastest *measured* one, within budget,
is what holds everywhere (``benchmarks/engines_suite.py`` checks the choice against a second run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from serving import server

from edgecls.cli import main
from edgecls.runtime import Classifier
from edgecls.runtime.errors import ModelLoadError

pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def picked(tmp_path_factory, seed_export, digits_folders):
    """A copy of the seed CNN's export folder (8 files), picked for with every candidate held to full agreement
    with the fp32 file: (folder, deploy.json as printed)."""
    folder = tmp_path_factory.mktemp("pick") / "exported"
    shutil.copytree(Path(seed_export.files[0].path).parent, folder)
    _, val = digits_folders
    return folder, val


def _pick(capsys, folder: Path, val: Path, *more: str) -> dict:
    code = main(["bench", "--pick", str(folder), "--data", str(val), "--rounds", "2", "--runs", "5", "--warmup", "2",
                 "--json", *more])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return json.loads(out)


def test_pick_times_every_candidate_within_budget_and_writes_the_fastest(capsys, picked):
    from edgecls.runtime.backends import installed, registered

    folder, val = picked
    deploy = _pick(capsys, folder, val, "--threads", "1,2", "--min-agreement", "1.0")
    assert json.loads((folder / "deploy.json").read_text()) == deploy
    files = sorted(p.name for p in folder.iterdir() if p.suffix in (".tflite", ".onnx"))
    engines = {suffix: [s.name for s in registered() if suffix in s.suffixes and installed(s)]
               for suffix in (".tflite", ".onnx")}
    assert "openvino" in engines[".tflite"] and "openvino" in engines[".onnx"]
    expected = {(f, e, t) for f in files for e in engines[Path(f).suffix] for t in (1, 2)}
    candidates = deploy["candidates"]
    assert {(c["file"], c["backend"], c["threads"]) for c in candidates} == expected
    for c in candidates:  # held to agreement 1.0 with the fp32 file: discarded exactly when under it
        assert (c["discarded"] is not None) == (c["agreement"] < 1.0), c
        assert (c["p50_ms"] is None) == (c["discarded"] is not None) and (c["accuracy"] is not None)
    timed = [c for c in candidates if c["discarded"] is None]
    fastest = min(timed, key=lambda c: c["p50_ms"])
    assert (deploy["file"], deploy["backend"], deploy["threads"]) == (fastest["file"], fastest["backend"],
                                                                     fastest["threads"])
    assert deploy["p50_ms"] == fastest["p50_ms"] and fastest["agreement"] == 1.0
    assert deploy["machine"]["cores"] >= 1 and "openvino" in deploy["machine"]["engines"]


def test_the_folder_runs_what_deploy_json_names(capsys, picked, tmp_path):
    folder, val = picked
    deploy = json.loads((folder / "deploy.json").read_text())
    image = next(val.rglob("*.png"))
    with Classifier.from_path(folder) as clf:
        assert clf.path == folder / deploy["file"] and clf.backend.name == deploy["backend"]
        assert clf.backend.num_threads == deploy["threads"]
        assert any("deploy.json: running " + deploy["file"] in note for note in clf.notes)
        expected = [(c.label, round(c.score, 4)) for c in clf.classify(image).categories]
    with Classifier.from_path(folder, num_threads=1) as clf:  # what the caller gives wins
        assert clf.backend.num_threads == 1
    assert main(["predict", str(folder), str(image), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [(c["label"], round(c["score"], 4)) for c in json.loads(out)["categories"]] == expected
    assert "deploy.json: running " + deploy["file"] in err
    assert main(["info", str(folder)]) == 0
    assert f"deploy.json: {deploy['file']} on {deploy['backend']}" in capsys.readouterr().out
    assert main(["batch", str(folder), str(image), "-o", str(tmp_path / "rows"), "--json"]) == 0
    capsys.readouterr()
    row = pq.read_table(tmp_path / "rows").to_pylist()[0]
    assert row["label"] == expected[0][0] and row["model_sha256"] == deploy["sha256"]
    with server(str(folder), "--workers", "1") as client:
        model = client.get("/v1/models").json()["models"][0]
        assert model["file"] == str(folder / deploy["file"]) and model["backend"] == deploy["backend"]
        answer = client.post("/v1/classify", files={"image": image.read_bytes()}).json()
        assert answer["categories"][0]["label"] == expected[0][0]


@pytest.mark.parametrize("record, message", [
    ({"file": "../seed_int8.tflite", "backend": "litert", "threads": 1}, "must name a file in its own folder"),
    ({"file": "/etc/passwd", "backend": "litert", "threads": 1}, "must name a file in its own folder"),
    ({"file": "seed_int8.tflite", "backend": "evil", "threads": 1}, "is not an engine of this edgecls"),
    ({"file": "seed_int8.tflite", "backend": "litert", "threads": 10**6}, "'threads' must be 1 to"),
    ({"file": "seed_int8.tflite", "backend": "litert", "threads": 1, "device": "tpu"}, "'device' must be one of"),
    ({"file": "seed_int8.tflite", "backend": "litert", "threads": 1, "version": 9}, "not a version-1 deploy.json"),
    ({"file": "seed_int8.tflite", "backend": "litert", "threads": 1, "p50_ms": "fast"}, "'p50_ms' must be a number"),
    ({"file": "seed_int8.tflite", "backend": "litert", "threads": 1, "p50_ms": 10**400}, "'p50_ms' must be a number"),
    ({"file": "seed_int8.tflite", "backend": "litert", "threads": 1, "picked": 5}, "'picked' must be text"),
    ({"file": "seed_int8.tflite", "backend": "litert", "threads": 1, "machine": []}, "'machine' must be an object"),
    ("[" * 100_000, "not valid JSON"),
])
def test_a_deploy_json_that_names_what_it_may_not_is_refused_naming_it(tmp_path, int8_model, record, message):
    folder = tmp_path / "exported"
    folder.mkdir()
    shutil.copy(int8_model, folder / "seed_int8.tflite")
    text = record if isinstance(record, str) else json.dumps({"version": 1, **record})
    (folder / "deploy.json").write_text(text)
    with pytest.raises(ModelLoadError, match=message) as caught:
        Classifier.from_path(folder)
    assert str(folder / "deploy.json") in str(caught.value)


def test_a_folder_without_deploy_json_says_how_to_make_one(tmp_path, capsys):
    with pytest.raises(ModelLoadError, match="edgecls bench --pick"):
        Classifier.from_path(tmp_path)
    assert main(["predict", str(tmp_path), "x.png"]) == 1
    assert "without a deploy.json" in capsys.readouterr().err
    assert main(["bench", "--pick", str(tmp_path)]) == 2  # --data is needed
    assert "--pick needs --data" in capsys.readouterr().err
