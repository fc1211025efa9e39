"""Signed models: only a file signed by a trusted key runs, never an older one than before, and OpenSSF's
``model_signing`` tool and edgecls read each other's signatures (real keys, real files, no mocks)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from edgecls.cli import main
from edgecls.runtime import Classifier
from edgecls.runtime.errors import DowngradeError, SignatureError
from edgecls.runtime.signatures import sign_file, signature_path
from edgecls.runtime.trust import STATE_FILE, Trust

pytest.importorskip("cryptography")


def _model_signing() -> str:
    """The ``model_signing`` command of this environment (a dev dependency, pinned)."""
    pytest.importorskip("model_signing")
    return str(Path(sys.executable).with_name("model_signing"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two key pairs, made by ``edgecls keygen`` (the second one encrypted with a passphrase)."""
    folder = tmp_path_factory.mktemp("keys")
    assert main(["keygen", str(folder)]) == 0
    os.environ["EDGECLS_TEST_PASSPHRASE"] = "correct horse"
    try:
        assert main(["keygen", str(folder), "--name", "other", "--passphrase-env", "EDGECLS_TEST_PASSPHRASE"]) == 0
    finally:
        del os.environ["EDGECLS_TEST_PASSPHRASE"]
    return {"private": folder / "edgecls.pem", "public": folder / "edgecls.pub.pem",
            "other": folder / "other.pem", "other_public": folder / "other.pub.pem"}


def _files(seed_export) -> dict[str, Path]:
    return {f"{f.format}-{f.quantization}": f.path for f in seed_export.files}


def _versioned(source: Path, folder: Path, version: int, name: str = "served.tflite") -> Path:
    """A copy of ``source`` named ``name`` in ``folder`` whose card says ``version`` (not signed yet)."""
    from edgecls.converters.metadata import embed_card_file

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copy(source, target)
    with Classifier.from_path(source) as clf:
        card = clf.card
    embed_card_file(target, replace(card, version=version))
    return target


def test_keygen_makes_a_private_key_only_its_owner_reads_and_never_overwrites(keys, capsys):
    assert keys["private"].stat().st_mode & 0o777 == 0o600
    assert keys["other"].stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED" in keys["other"].read_bytes() and b"ENCRYPTED" not in keys["private"].read_bytes()
    capsys.readouterr()
    assert main(["keygen", str(keys["private"].parent)]) == 1
    assert "exists; a key is never overwritten" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["tflite-int8", "onnx-fp32"])
def test_our_signatures_and_model_signings_verify_each_other(kind, seed_export, keys, tmp_path, capsys):
    model = tmp_path / _files(seed_export)[kind].name
    shutil.copy(_files(seed_export)[kind], model)
    assert main(["sign", str(model), "--key", str(keys["private"])]) == 0
    tool = _model_signing()
    done = subprocess.run([tool, "verify", "key", str(model), "--signature", str(signature_path(model)),
                           "--public_key", str(keys["public"])], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Verification succeeded" in done.stdout + done.stderr, done.stderr
    capsys.readouterr()
    assert main(["verify", str(model), "--key", str(keys["public"]), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    with Classifier.from_path(model, trusted_keys=[keys["public"]]) as clf:
        assert answer["name"] == clf.card.name == "seed" and answer["version"] == clf.card.version
    from edgecls.runtime.signatures import load_public_keys

    assert answer["signed_by"] == load_public_keys([keys["public"]])[0].fingerprint
    # model_signing's own signature (its CLI, the same key) is accepted by edgecls
    signature_path(model).unlink()
    done = subprocess.run([tool, "sign", "key", str(model), "--private_key", str(keys["private"]), "--signature",
                           str(signature_path(model))], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert main(["verify", str(model), "--key", str(keys["public"])]) == 0
    assert "signed by" in capsys.readouterr().out


def _refusal(model: Path, public: Path) -> str:
    with pytest.raises(SignatureError) as caught:
        Classifier.from_path(model, trusted_keys=[public])
    return str(caught.value)


def _tampered(pristine: Path, model: Path, other: Path, keys: dict, tmp_path: Path) -> dict[str, Path]:
    """Copies of the signed ``pristine`` folder, each with one kind of tampering done to ``model`` (``other``:
    a second signed model there), by case name."""
    data = model.read_bytes()

    def case(name: str) -> Path:
        shutil.copytree(pristine, tmp_path / name.replace(" ", "-"))
        return tmp_path / name.replace(" ", "-") / model.name

    cases = {}
    for where in (0, len(data) // 2, len(data) - 1):  # one flipped byte anywhere: header, weights, the card
        edited = bytearray(data)
        edited[where] ^= 0x01
        cases[f"flip{where}"] = case(f"flip{where}")
        cases[f"flip{where}"].write_bytes(bytes(edited))
    cases["truncated"] = case("truncated")
    cases["truncated"].write_bytes(data[: len(data) // 2])
    cases["other key"] = case("other key")
    os.environ["EDGECLS_TEST_PASSPHRASE"] = "correct horse"
    try:
        assert main(["sign", str(cases["other key"]), "--key", str(keys["other"]), "--passphrase-env",
                     "EDGECLS_TEST_PASSPHRASE"]) == 0
    finally:
        del os.environ["EDGECLS_TEST_PASSPHRASE"]
    cases["other model"] = case("other model")
    shutil.copy(signature_path(cases["other model"].with_name(other.name)), signature_path(cases["other model"]))
    cases["missing"] = case("missing")
    signature_path(cases["missing"]).unlink()
    renamed = case("renamed")
    cases["renamed"] = renamed.rename(renamed.with_name("renamed.tflite"))
    signature_path(renamed).rename(signature_path(cases["renamed"]))
    cases["forged"] = case("forged")
    bundle = json.loads(signature_path(cases["forged"]).read_text())
    bundle["dsseEnvelope"]["payload"] = bundle["dsseEnvelope"]["payload"].replace("A", "B", 1)
    signature_path(cases["forged"]).write_text(json.dumps(bundle))
    return cases


def test_every_kind_of_tampering_is_refused_with_its_own_message(seed_export, keys, tmp_path, capsys):
    files = _files(seed_export)
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    for kind in ("tflite-int8", "tflite-fp32"):
        shutil.copy(files[kind], pristine / files[kind].name)
        sign_file(pristine / files[kind].name, keys["private"])
    model = pristine / files["tflite-int8"].name
    cases = _tampered(pristine, model, pristine / files["tflite-fp32"].name, keys, tmp_path)
    messages = {name: _refusal(path, keys["public"]) for name, path in cases.items()}
    expected = {"truncated": "truncated:", "other key": "signed by a key that is not trusted",
                "other model": "is the signature of another model", "missing": "not signed",
                "renamed": "renamed: it was signed as", "forged": "does not verify with the trusted key"}
    for name, message in messages.items():
        assert expected.get(name, "altered since it was signed") in message, (name, message)
        assert message.startswith(str(cases[name])), message  # names the file
    kinds = {message.split(": ", 1)[1].split(" (")[0].split(":")[0] for message in messages.values()}
    assert len(kinds) == 7, kinds  # seven causes, seven messages (the three flips say the same)
    assert main(["verify", str(cases["truncated"]), "--key", str(keys["public"])]) == 1
    assert "truncated" in capsys.readouterr().err
    with Classifier.from_path(model, trusted_keys=[keys["public"]]) as clf:  # the untouched file loads
        assert clf.card.name == "seed"


def test_an_older_version_is_refused_after_a_newer_one_also_after_a_restart(seed_export, keys, tmp_path, caplog):
    source = _files(seed_export)["tflite-int8"]
    state = tmp_path / "state"
    versions = {v: _versioned(source, tmp_path / f"v{v}", v) for v in (5, 7)}
    for path in versions.values():
        sign_file(path, keys["private"])
    trust = Trust.of([keys["public"]], state_dir=state)
    Classifier.from_path(versions[5], trusted_keys=trust).close()
    Classifier.from_path(versions[7], trusted_keys=trust).close()
    with pytest.raises(DowngradeError, match="version 5 of 'seed' is older than version 7"):
        Classifier.from_path(versions[5], trusted_keys=trust)
    assert json.loads((state / STATE_FILE).read_text())["seed"]["version"] == 7
    # a restart: a new process, the same state folder, keys from the environment
    env = {**os.environ, "EDGECLS_TRUSTED_KEYS": str(keys["public"]), "EDGECLS_STATE_DIR": str(state)}
    code = ("from edgecls.runtime import Classifier\nimport sys\n"
            "try:\n    Classifier.from_path(sys.argv[1])\nexcept Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n    sys.exit(3)\n")
    older = subprocess.run([sys.executable, "-c", code, str(versions[5])], capture_output=True, text=True, env=env,
                           timeout=300)
    assert older.returncode == 3 and older.stdout.startswith("DowngradeError"), older.stdout + older.stderr
    newer = subprocess.run([sys.executable, "-c", code, str(versions[7])], capture_output=True, text=True, env=env,
                           timeout=300)
    assert newer.returncode == 0, newer.stdout + newer.stderr
    with caplog.at_level("WARNING"):  # allowed on purpose: it loads, it is logged, the record stays at 7
        Classifier.from_path(versions[5], trusted_keys=replace(trust, allow_downgrade=True)).close()
    assert "loaded below version 7, as allowed" in caplog.text
    assert json.loads((state / STATE_FILE).read_text())["seed"]["version"] == 7
    assert main(["predict", str(versions[5]), str(source), "--trusted-key", str(keys["public"]), "--state",
                 str(state)]) == 1


def test_nothing_changes_without_keys_and_the_environment_turns_the_check_on(seed_export, keys, tmp_path,
                                                                              monkeypatch):
    unsigned = tmp_path / "unsigned.tflite"
    shutil.copy(_files(seed_export)["tflite-int8"], unsigned)
    monkeypatch.delenv("EDGECLS_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("EDGECLS_STATE_DIR", raising=False)
    with Classifier.from_path(unsigned) as clf:
        assert clf.classify(cv2_blank(clf)).top is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unsigned.tflite"]  # nothing written beside it
    monkeypatch.setenv("EDGECLS_TRUSTED_KEYS", str(keys["public"]))
    with pytest.raises(SignatureError, match="not signed"):
        Classifier.from_path(unsigned)
    with Classifier.from_path(unsigned, trusted_keys=()) as clf:  # an explicit "no keys" wins over the environment
        assert clf.card.name == "seed"


def cv2_blank(clf):
    import numpy as np

    return np.zeros((clf.card.input.height, clf.card.input.width, 3), np.uint8)


def test_a_refused_swap_keeps_the_old_model_serving_eight_clients(seed_export, keys, tmp_path, digits_folders):
    """Hot swaps to an unsigned, an altered and an older file are refused (403, 403, 409, each with its
    cause) and a newer signed file is taken, while 8 clients keep getting answers: no request fails."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("starlette")
    from serving import server

    source = _files(seed_export)["tflite-int8"]
    candidates = {v: _versioned(source, tmp_path / f"v{v}", v) for v in (1, 2, 3)}
    for path in candidates.values():
        sign_file(path, keys["private"])
    live = tmp_path / "live"
    live.mkdir()

    def put(model: Path, *, signature: bool = True, flip: bool = False) -> None:
        data = bytearray(model.read_bytes())
        if flip:
            data[len(data) // 3] ^= 0x01
        if signature:
            shutil.copy(signature_path(model), signature_path(live / model.name))
        else:
            signature_path(live / model.name).unlink(missing_ok=True)
        (live / ".next").write_bytes(bytes(data))
        os.replace(live / ".next", live / model.name)

    put(candidates[2])
    _, val = digits_folders
    images = [p.read_bytes() for p in sorted(val.rglob("*.png"))[:40]]
    answers: list[int] = []
    with server(f"digits={live / 'served.tflite'}", "--workers", "2", "--trusted-key", str(keys["public"]),
                "--state", str(tmp_path / "state")) as client:
        url = str(client.base_url)
        started = threading.Barrier(9)

        def load(offset: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as c:
                started.wait()
                for i in range(120):  # bounded: 8 clients × 120 requests
                    r = c.post("/v1/classify", content=images[(i + offset) % len(images)],
                               headers={"Content-Type": "image/png"})
                    answers.append(r.status_code)

        clients = [threading.Thread(target=load, args=(k,)) for k in range(8)]
        for t in clients:
            t.start()
        started.wait()
        refused = []
        for how in ({"signature": False}, {"flip": True}, {}):
            put(candidates[1] if not how else candidates[2], **how)
            refused.append(client.post("/v1/models/digits/reload"))
        put(candidates[3])
        taken = client.post("/v1/models/digits/reload")
        for t in clients:
            t.join()
        metrics = client.get("/metrics").text
    assert len(answers) == 960 and set(answers) == {200}
    assert [r.status_code for r in refused] == [403, 403, 409], [r.text for r in refused]
    assert "not signed" in refused[0].json()["error"] and "altered" in refused[1].json()["error"]
    assert "version 1 of 'seed' is older than version 2" in refused[2].json()["error"]
    assert taken.status_code == 200 and taken.json()["model"]["card"]["version"] == 3
    assert 'edgecls_model_reloads_total{model="digits",result="refused"} 3.0' in metrics


def test_export_signs_every_file_it_writes_with_the_version_in_each_card(seed_h5, digits_folders, keys, tmp_path,
                                                                         capsys):
    """``edgecls export --sign KEY --model-version N``: a signature beside each file (both formats), each
    verified by the trusted key, each card saying N; the report lists them; a bad key fails before work."""
    train, val = digits_folders
    out = tmp_path / "out"
    assert main(["export", str(seed_h5), "-o", str(out), "--quantize", "fp32,int8", "--calib", str(train), "--val",
                 str(val), "--sign", str(keys["private"]), "--model-version", "3", "--json"]) == 0
    out_text = capsys.readouterr().out
    report = json.loads(out_text[out_text.index("{"):])
    files = [Path(f["path"]) for f in report["files"]]
    assert {f.suffix for f in files} == {".tflite", ".onnx"} and len(files) == 4
    assert sorted(report["signatures"]) == sorted(str(signature_path(f)) for f in files)
    for path in files:
        with Classifier.from_path(path, trusted_keys=[keys["public"]]) as clf:
            assert clf.card.version == 3 and clf.card.name == "seed"
    assert main(["export", str(seed_h5), "-o", str(tmp_path / "bad"), "--sign", str(keys["public"])]) == 1
    assert "not a PEM private key" in capsys.readouterr().err


def test_batch_runs_only_a_signed_model_and_records_its_version(seed_export, keys, tmp_path, digits_folders, capsys):
    """``edgecls batch --trusted-key``: an unsigned model is refused before any worker starts (nothing
    written), a signed one runs on the worker processes (which check it again) and its version is recorded."""
    _, val = digits_folders
    folder = tmp_path / "model"
    model = _versioned(_files(seed_export)["tflite-int8"], folder, 4, "seed_int8.tflite")
    argv = ["batch", str(model), str(val / "3"), "--workers", "2", "--trusted-key", str(keys["public"]),
            "--state", str(tmp_path / "state")]
    assert main([*argv, "-o", str(tmp_path / "refused")]) == 1
    assert "not signed" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    sign_file(model, keys["private"])
    assert main([*argv, "-o", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["classified"] == len(list((val / "3").glob("*.png"))) and summary["errors"] == 0
    assert json.loads((tmp_path / "state" / STATE_FILE).read_text())["seed"]["version"] == 4
