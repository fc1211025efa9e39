"""A seeded fuzz run over what reaches a device from the field: mutated ``.tflite`` and ``.onnx``
files, mutated model cards, and images with mutated headers, all together.

The cases are written first; one worker process then runs them in order, noting each case's
number in a progress file before it starts. A case that kills the worker (a native crash) or
outlives its time limit (a hang) is recorded against that case and the run resumes after it in a
fresh worker. Allowed outcomes: a result, or an :class:`EdgeclsError` that names the file. A
traceback, a crash or a hang fails the test, naming the reproducible case.
"""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
from hostile import run_measured, with_card_text

SEED = 14
PER_KIND = {"tflite": 40, "onnx": 40, "card": 40, "image": 80}
CASE_SECONDS = 20
MAX_RSS_MB = 500

WORKER = r"""
import json, signal, sys, traceback
from pathlib import Path
import numpy as np
from edgecls.runtime import Classifier, EdgeclsError

cases, progress, good = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
start, limit = int(sys.argv[4]), int(sys.argv[5])
files = sorted(cases.iterdir())
frame = np.full((40, 30, 3), 128, np.uint8)
signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("case timed out")))
with Classifier.from_path(good) as checker:
    for number in range(start, len(files)):
        path = files[number]
        progress.write_text(str(number))
        signal.alarm(limit)
        try:
            if path.suffix in (".tflite", ".onnx"):
                with Classifier.from_path(path) as clf:
                    clf.classify(frame)
                    outcome = "result" if clf.has_card else "result, card ignored"
            else:
                checker.classify(path)
                outcome = "result"
            message = ""
        except EdgeclsError as exc:
            outcome, message = type(exc).__name__, str(exc)
        except TimeoutError:
            outcome, message = "hang", ""
        except BaseException as exc:
            outcome, message = "traceback", traceback.format_exc()[-1500:]
        finally:
            signal.alarm(0)
        print(json.dumps({"case": number, "file": path.name, "outcome": outcome, "message": message}), flush=True)
"""


def mutate(data: bytes, rng: np.random.Generator, region: int | None = None) -> bytes:
    """Seeded damage within the first ``region`` bytes (all of them by default): flipped bytes, a
    cut, a zeroed run, a copied block, or an extreme integer written over four bytes."""
    buf = bytearray(data)
    span = min(len(buf), region or len(buf))
    kind = int(rng.integers(0, 5))
    if kind == 0:
        for i in rng.integers(0, span, size=int(rng.integers(1, 16))):
            buf[i] ^= int(rng.integers(1, 256))
    elif kind == 1:
        buf = buf[: int(rng.integers(8, len(buf)))]
    elif kind == 2:
        start, size = int(rng.integers(0, max(1, span - 16))), int(rng.integers(2, 16))
        buf[start:start + size] = bytes(size)
    elif kind == 3:
        size = int(rng.integers(4, 64))
        src, dest = (int(rng.integers(0, max(1, span - size))) for _ in range(2))
        buf[dest:dest + size] = buf[src:src + size]
    else:
        at = int(rng.integers(0, max(1, span - 4)))
        buf[at:at + 4] = int(rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 65535])).to_bytes(4, "little")
    return bytes(buf)


CARD_VALUES = [0, -1, 1e308, float("nan"), 2**63, "", "x" * 300, [], {}, None, True, [1] * 50, {"a": {"b": {}}}]


def mutate_card(card: dict, rng: np.random.Generator) -> str:
    """A card with one to three fields (at any depth) replaced by extreme or mistyped values, or its
    JSON text damaged."""
    card = json.loads(json.dumps(card))
    if rng.random() < 0.2:
        return mutate(json.dumps(card).encode(), rng).decode("utf-8", "replace")
    for _ in range(int(rng.integers(1, 4))):
        node, key = card, None
        while isinstance(node, dict) and node and (key is None or rng.random() < 0.6):
            key = rng.choice(sorted(node))
            if not isinstance(node[key], dict):
                break
            node = node[key] if rng.random() < 0.6 else node
        if isinstance(node, dict) and key in node:
            node[key] = CARD_VALUES[int(rng.integers(0, len(CARD_VALUES)))]
    return json.dumps(card)


def write_cases(folder, seed_exports, color_model) -> int:
    """Write every case (named so that sorting keeps their order); returns how many."""
    _, paths, _ = seed_exports
    rng = np.random.default_rng(SEED)
    tflite, onnx_model = paths["tflite_int8"].read_bytes(), paths["onnx_fp32"].read_bytes()
    from edgecls.runtime import Classifier

    with Classifier.from_path(color_model) as clf:
        card = clf.card.to_dict()  # the colour model's own card, as the base to damage
    images = {ext: cv2.imencode(ext, np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8))[1]
              .tobytes() for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff", ".gif" if cv2.haveImageWriter(".gif")
                                    else ".ppm")}
    n = 0
    for i in range(PER_KIND["tflite"]):
        (folder / f"{n:04d}_tflite_{i}.tflite").write_bytes(mutate(tflite, rng))
        n += 1
    for i in range(PER_KIND["onnx"]):
        (folder / f"{n:04d}_onnx_{i}.onnx").write_bytes(mutate(onnx_model, rng))
        n += 1
    for i in range(PER_KIND["card"]):
        text = mutate_card(card, rng)
        with_card_text(color_model, folder / f"{n:04d}_card_{i}.onnx", text)
        n += 1
    kinds = sorted(images)
    for i in range(PER_KIND["image"]):
        ext = kinds[i % len(kinds)]
        (folder / f"{n:04d}_image_{i}{ext}").write_bytes(mutate(images[ext], rng, region=64))
        n += 1
    return n


def test_fuzz_models_cards_and_images_end_in_a_result_or_an_edgecls_error(tmp_path, seed_exports, color_model):
    cases = tmp_path / "cases"
    cases.mkdir()
    total = write_cases(cases, seed_exports, color_model)
    progress = tmp_path / "progress"
    outcomes, failures, start, peak = {}, [], 0, 0.0
    while start < total:
        run = run_measured([sys.executable, "-c", WORKER, str(cases), str(progress), str(color_model), str(start),
                            str(CASE_SECONDS)], tmp_path, timeout=CASE_SECONDS * (total - start) + 120)
        peak = max(peak, run.peak_mb)
        for line in run.stdout.splitlines():
            row = json.loads(line)
            outcomes[row["case"]] = row
        if run.exit_code == 0:
            break
        crashed = int(progress.read_text())  # the case that took the worker down
        outcomes[crashed] = {"case": crashed, "outcome": f"crash (exit {run.exit_code}, signal {run.signal})",
                             "file": sorted(p.name for p in cases.iterdir())[crashed], "message": run.stderr[-800:]}
        start = crashed + 1
    kinds: dict[str, set] = {}
    for row in outcomes.values():
        kinds.setdefault(row["file"].split("_")[1], set()).add(row["outcome"])
        if row["outcome"] not in ("result", "result, card ignored", "ModelLoadError", "CardError", "ImageError", "UnsupportedFormatError",
                                  "InferenceError"):
            failures.append(row)
        elif not row["outcome"].startswith("result") and row["file"] not in row["message"]:
            failures.append(row | {"why": "the error does not name the file"})
    summary = {k: sorted(v) for k, v in kinds.items()}
    print(f"fuzz: {total} cases, {len(failures)} failures, worker peak {peak:.0f} MB, outcomes {summary}")
    assert len(outcomes) == total, f"{total - len(outcomes)} cases produced no outcome"
    assert not failures, json.dumps(failures[:5], indent=1)
    # every kind of damage both passes and is caught: a card either still serves or is ignored with a note
    assert all(len(v) > 1 and any(o.startswith("result") for o in v) for v in kinds.values()), summary
    assert {"result", "result, card ignored"} <= kinds["card"], summary
    assert peak < MAX_RSS_MB
