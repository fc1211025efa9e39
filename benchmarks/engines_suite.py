"""Which engine is fastest on this device, and does ``edgecls bench --pick`` find it: MobileNetV2-224 (weights=None,
BatchNorm statistics from real photos, its classifier trained on random crops of six scikit-image photos so its
scores have margins), exported to TFLite and
ONNX in fp32 and int8, run by LiteRT, ONNX Runtime and OpenVINO, 2 engine threads.

1. Engines: each round a fresh runtime-only process loads every file on every engine that reads it and times
   the raw engine call on one prepared input, the variants in turn in blocks of 25 calls; medians per round.
2. Our share of a frame: in the same processes, ``classify`` of a 640×480 frame (16 frames rotating, so each is
   cold in the cache as a camera's would be) against the raw engine call, LiteRT on the int8 ``.tflite``.
3. OpenVINO's compiled-model cache: a fresh process loading the int8 ``.onnx`` with an empty cache folder,
   then with the folder it filled.
4. ``edgecls bench --pick`` run twice on the export folder: is the first run's choice within the
   round-to-round spread of the second run's fastest candidate?

    python -m benchmarks.engines_suite [--rounds 7] [--calls 200] [--out benchmarks/results]
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.suite.publish import RESULTS, publish, spread_range
from benchmarks.suite.timing import module, probe_cli, root_env, run_json
from edgecls.bench.measure import spread_of

THREADS = 2
ENGINES = {".tflite": ("litert", "openvino"), ".onnx": ("onnxruntime", "openvino")}
BLOCK = 25
"""Calls of one variant in a row: engines switched call by call measured each other's spinning threads."""


def probe(spec: dict) -> dict:
    """In a fresh process: raw engine ms of every file × engine, interleaved; or one cold OpenVINO load."""
    if spec.get("cache"):
        return _cache_probe(spec)
    from edgecls.bench.measure import camera_frames
    from edgecls.runtime import Classifier

    variants = {}
    for path in sorted(Path(spec["folder"]).glob("*_*.*")):
        for engine in ENGINES.get(path.suffix, ()):
            clf = Classifier.from_path(path, backend=engine, num_threads=THREADS)
            variants[f"{path.name} {engine}"] = (clf, clf.preprocess(np.zeros((224, 224, 3), np.uint8))[None])
    frames = camera_frames((640, 480), count=16)
    e2e = next(clf for name, (clf, _) in variants.items() if name.endswith("int8.tflite litert"))
    for clf, x in variants.values():
        for _ in range(20):
            clf.backend.run(x)
    times: dict[str, list[float]] = {name: [] for name in (*variants, "classify 640x480")}
    calls = [(name, lambda clf=clf, x=x: clf.backend.run(x)) for name, (clf, x) in variants.items()]
    calls.append(("classify 640x480", lambda: e2e.classify(frames[len(times["classify 640x480"]) % len(frames)])))
    for _ in range(spec["calls"] // BLOCK):  # blocks in turn: an engine's idle threads spin a while after a call
        for name, call in calls:
            for _ in range(BLOCK):
                t0 = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - t0) * 1e3)
    for clf, _ in variants.values():
        clf.close()
    return {name: statistics.median(ms) for name, ms in times.items()}


def _cache_probe(spec: dict) -> dict:
    t0 = time.perf_counter()
    from edgecls.runtime import Classifier

    t1 = time.perf_counter()
    clf = Classifier.from_path(spec["model"], backend="openvino", num_threads=THREADS, cache_dir=spec["cache"])
    t2 = time.perf_counter()
    clf.classify(np.zeros((480, 640, 3), np.uint8))
    return {"import_s": t1 - t0, "load_s": t2 - t1, "first_s": time.perf_counter() - t2}


def mobilenet_export(work: Path) -> tuple[Path, Path]:
    """The trained MobileNetV2-224 exported (fp32, int8; both formats), and a folder of 60 photo crops."""
    import keras

    from benchmarks.batch_suite import PHOTOS, photo, random_crop
    from edgecls import realdata
    from edgecls.converters import export

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = [], []
    for label, name in enumerate(PHOTOS):
        for _ in range(160):
            x.append(cv2.resize(random_crop(photo(name), rng, 0.4), (224, 224), interpolation=cv2.INTER_AREA))
            y.append(label)
    x, y = np.stack(x)[:, :, :, ::-1], np.array(y)  # RGB
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=len(PHOTOS))
    inputs = x.astype("float32") / 127.5 - 1
    realdata.warm_batchnorm(model, inputs[::4])
    # the backbone as initialised (BatchNorm from the photos); the classifier trained on its pooled features
    features = keras.Model(model.input, model.layers[-2].output).predict(inputs, verbose=0)
    head = keras.Sequential([keras.Input(features.shape[1:]), keras.layers.Dense(len(PHOTOS), activation="softmax")])
    head.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(features / features.std(), y, epochs=60, batch_size=64, verbose=0, shuffle=True)
    kernel, bias = head.layers[-1].get_weights()
    model.get_layer("predictions").set_weights([kernel / features.std(), bias])
    data = work / "crops"  # flat: the pick checks agreement with the fp32 file
    data.mkdir()
    for i in range(0, len(x), 16):
        cv2.imwrite(str(data / f"{PHOTOS[y[i]]}-{i:04d}.png"), x[i][:, :, ::-1])
    model.save(work / "mobilenetv2.keras")
    calibration = x[3::15][:64].copy()
    del model, inputs, features, x
    report = export(work / "mobilenetv2.keras", work / "exported", quantize=["fp32", "int8"], calibration=calibration,
                    labels=list(PHOTOS), pixels="symmetric", name="mobilenetv2", force=True, min_agreement=0.0)
    return Path(report.files[0].path).parent, data


def engines(folder: Path, rounds: int, calls: int) -> dict:
    spec = {"folder": str(folder), "calls": calls}
    runs = [run_json(module("benchmarks.engines_suite", "--probe", json.dumps(spec)), env=root_env())
            for _ in range(rounds)]
    names = list(runs[0])
    return {"ms": {n: statistics.median(r[n] for r in runs) for n in names},
            "spread": {n: spread_of([r[n] for r in runs]) for n in names},
            "share": spread_of([r["classify 640x480"] / r["mobilenetv2_int8.tflite litert"] for r in runs]),
            "rounds": runs}


def cache(folder: Path, rounds: int) -> dict:
    model = str(folder / "mobilenetv2_int8.onnx")
    cold, warm = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder_:
            spec = {"cache": folder_, "model": model}
            cold.append(run_json(module("benchmarks.engines_suite", "--probe", json.dumps(spec)), env=root_env()))
            warm.append(run_json(module("benchmarks.engines_suite", "--probe", json.dumps(spec)), env=root_env()))
    return {"cold_load_s": statistics.median(r["load_s"] for r in cold),
            "cached_load_s": statistics.median(r["load_s"] for r in warm),
            "ratio": spread_of([w["load_s"] / c["load_s"] for c, w in zip(cold, warm, strict=True)])}


def pick_twice(folder: Path, data: Path) -> dict:
    """Two ``edgecls bench --pick`` runs; the first's choice measured again in the second."""
    def run() -> dict:
        out = subprocess.run([sys.executable, "-m", "edgecls", "bench", "--pick", str(folder), "--data", str(data),
                              "--json"], capture_output=True, text=True, timeout=1800, env=root_env())
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        return json.loads(out.stdout)

    first, second = run(), run()
    key = (first["file"], first["backend"], first["threads"])
    again = next(c for c in second["candidates"] if (c["file"], c["backend"], c["threads"]) == key)
    fastest = min((c for c in second["candidates"] if c["p50_ms"] is not None), key=lambda c: c["p50_ms"])
    within = again["p50_ms"] <= fastest["spread"]["max"] if fastest["spread"] else again is fastest
    return {"first": first, "second": second, "first_choice_in_second": again, "second_fastest": fastest,
            "within_spread": bool(within)}


def page(result: dict) -> str:
    e, c, p = result["engines"], result["cache"], result["pick"]
    rows = [("LiteRT (XNNPACK) on the `.tflite`", "tflite litert"), ("ONNX Runtime on the `.onnx`", "onnx onnxruntime"),
            ("OpenVINO on the `.onnx`", "onnx openvino"), ("OpenVINO on the `.tflite`", "tflite openvino")]
    lines = ["MobileNetV2-224 (trained on photo crops), 2 engine threads, raw engine call on one input; medians of "
             f"{len(e['rounds'])} fresh processes (min–max of the per-process medians).", "",
             "| engine | int8 ms | fp32 ms |", "|---|---|---|"]
    for label, key in rows:
        fmt, engine = key.split()
        cells = []
        for q in ("int8", "fp32"):
            name = f"mobilenetv2_{q}.{fmt} {engine}"
            cells.append(f"{e['ms'][name]:.2f}{spread_range(e['spread'][name], 2)}")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    share = e["share"]
    lines += ["", f"Our share of a frame: `classify` of a 640×480 frame (cold in the cache) / the raw engine call, "
                  f"LiteRT int8: {share['median']:.3f} ({share['min']:.3f}–{share['max']:.3f}); "
                  f"{e['ms']['classify 640x480']:.3f} ms against {e['ms']['mobilenetv2_int8.tflite litert']:.3f} ms.",
              "", f"OpenVINO load of the int8 `.onnx` in a fresh process: {c['cold_load_s'] * 1000:.0f} ms compiling, "
                  f"{c['cached_load_s'] * 1000:.0f} ms from its cache folder (ratio {c['ratio']['median']:.2f}, "
                  f"{c['ratio']['min']:.2f}–{c['ratio']['max']:.2f}).",
              "", f"`edgecls bench --pick` twice: first chose {p['first']['file']} on {p['first']['backend']}, "
                  f"{p['first']['threads']} threads ({p['first']['p50_ms']:.3f} ms); in the second run it measured "
                  f"{p['first_choice_in_second']['p50_ms']:.3f} ms against the fastest, "
                  f"{p['second_fastest']['file']} on {p['second_fastest']['backend']} "
                  f"{p['second_fastest']['threads']} threads, {p['second_fastest']['p50_ms']:.3f} ms (rounds "
                  f"{p['second_fastest']['spread']['min']:.3f}–{p['second_fastest']['spread']['max']:.3f}): "
                  f"{'within' if p['within_spread'] else 'OUTSIDE'} its spread."]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = probe_cli(__doc__, probe, RESULTS, rounds=(int, 7), calls=(int, 200))
    if args is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder, data = mobilenet_export(Path(tmp))
        result = {"engines": engines(folder, args.rounds, args.calls), "cache": cache(folder, 3),
                  "pick": pick_twice(folder, data)}
    stamp = dt.date.today().isoformat()
    publish(args.out, f"engines-{stamp}", {"date": stamp, "threads": THREADS, "result": result}, page(result))


if __name__ == "__main__":
    main()
