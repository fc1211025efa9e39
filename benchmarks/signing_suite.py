"""Loading a signed model, side by side: with trusted keys (the signature checked: the file's SHA-256, the
ECDSA signature, a state folder's versions) against the same load without them, measured two ways:
``Classifier.from_path`` alone, and to the first answer (``from_path`` and one ``classify``: what a device
waits for after a start or a model update, the engine's own preparation included).

MobileNetV2-224 with 1,000 classes (weights=None, BatchNorm from real photos) exported fp32 to TFLite and
ONNX (14 MB each), signed with a fresh P-256 key. Each round is a fresh runtime-only process that loads the
file ``--per-round`` times per variant, the variants alternating load by load (after one warm-up load of
each: the process's first import of ``cryptography`` is not a load's cost); the ratios are per round, with
their spread. Run:

    python -m benchmarks.signing_suite [--rounds 5] [--per-round 15] [--out benchmarks/results]
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.suite.publish import RESULTS, publish, spread_range
from benchmarks.suite.timing import module, probe_cli, root_env, run_json
from edgecls import realdata
from edgecls.bench.measure import spread_of


def probe(spec: dict) -> dict:
    """In a fresh process: per variant, the median ms of ``Classifier.from_path`` and of it with one
    ``classify`` (the first answer)."""
    from edgecls.runtime import Classifier
    from edgecls.runtime.trust import Trust

    trust = Trust.of([spec["public"]], state_dir=spec["state"])
    variants = {"unchecked": (), "verified": trust}
    frame = np.zeros((224, 224, 3), np.uint8)
    for keys in variants.values():
        Classifier.from_path(spec["model"], num_threads=2, trusted_keys=keys).close()
    times: dict[str, list[float]] = {f"{name} {what}": [] for name in variants for what in ("load", "first")}
    for _ in range(spec["per_round"]):
        for name, keys in variants.items():
            t0 = time.perf_counter()
            clf = Classifier.from_path(spec["model"], num_threads=2, trusted_keys=keys)
            t1 = time.perf_counter()
            clf.classify(frame)
            t2 = time.perf_counter()
            times[f"{name} load"].append((t1 - t0) * 1e3)
            times[f"{name} first"].append((t2 - t0) * 1e3)
            clf.close()
    return {name: statistics.median(ms) for name, ms in times.items()}


def models(work: Path) -> dict[str, Path]:
    """MobileNetV2-224 fp32, exported to TFLite and ONNX (signed below)."""
    import keras

    from benchmarks.batch_suite import PHOTOS, photo, random_crop
    from edgecls.converters import export

    keras.utils.set_random_seed(0)
    frames = np.stack([cv2.resize(random_crop(photo(n), np.random.default_rng(i)), (224, 224))[:, :, ::-1]
                       for i, n in enumerate(PHOTOS * 8)])
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)
    realdata.warm_batchnorm(model, frames / 127.5 - 1)
    report = export(model, work / "mobilenetv2", formats=["tflite", "onnx"], quantize=["fp32"],
                    labels=[f"class {i}" for i in range(1000)], pixels="symmetric", name="mobilenetv2",
                    min_agreement=0.0, force=True)
    return {f"MobileNetV2-224 fp32 .{f.format}": f.path for f in report.files}


def measure(model: Path, public: Path, state: Path, rounds: int, per_round: int) -> dict:
    spec = {"model": str(model), "public": str(public), "state": str(state), "per_round": per_round}
    runs = [run_json(module("benchmarks.signing_suite", "--probe", json.dumps(spec)), env=root_env())
            for _ in range(rounds)]
    ratios = {what: [r[f"verified {what}"] / r[f"unchecked {what}"] for r in runs] for what in ("load", "first")}
    return {"size_mb": model.stat().st_size / 1e6,
            "ms": {name: statistics.median(r[name] for r in runs) for name in runs[0]},
            "ratio": {what: {"median": statistics.median(v), **spread_of(v)} for what, v in ratios.items()},
            "rounds": runs}


def page(results: dict) -> str:
    lines = ["Loading a signed model with its signature checked (`trusted_keys`, a state folder) against loading it "
             "unchecked: median ms of `Classifier.from_path` (load) and of it with the first `classify` (first "
             "answer), 2 engine threads; per-round ratios with min–max.", "",
             "| file | MB | load ms unchecked / verified | verified / unchecked load | first answer ms unchecked / "
             "verified | verified / unchecked first answer |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        ms, ratio = r["ms"], r["ratio"]
        lines.append(f"| {name} | {r['size_mb']:.1f} | {ms['unchecked load']:.1f} / {ms['verified load']:.1f} | "
                     f"{ratio['load']['median']:.3f}{spread_range(ratio['load'], 3)} | {ms['unchecked first']:.1f} / "
                     f"{ms['verified first']:.1f} | {ratio['first']['median']:.3f}{spread_range(ratio['first'], 3)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = probe_cli(__doc__, probe, RESULTS, rounds=(int, 5), per_round=(int, 15))
    if args is None:
        return
    from edgecls.runtime.signatures import generate_key_pair, sign_file

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        private, public = generate_key_pair(work / "keys")
        results = {}
        for name, path in models(work).items():
            sign_file(path, private)
            results[name] = measure(path, public, work / "state", args.rounds, args.per_round)
    stamp = dt.date.today().isoformat()
    publish(args.out, f"signing-{stamp}", {"date": stamp, "results": results}, page(results))


if __name__ == "__main__":
    main()
