"""Fresh-process probes: runtime and TensorFlow cold start, MediaPipe end to end, Keras predict."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.suite.timing import PYTHON, run_json

__all__ = ["runtime_cold_start", "tensorflow_cold_start", "mediapipe_rounds", "keras_rounds"]

_TF_COLD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import tensorflow as tf, keras, numpy as np
t1 = time.perf_counter()
model = keras.models.load_model(sys.argv[1], compile=False)
t2 = time.perf_counter()
x = np.zeros((1, *model.inputs[0].shape[1:]), np.float32)
model.predict(x, verbose=0)
t3 = time.perf_counter()
from edgecls.runtime.memory import peak_rss_mb
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_result_s": t3 - t2, "total_s": t3 - t0,
                  "peak_rss_mb": peak_rss_mb()}))
"""

_MEDIAPIPE = r"""
import json, statistics, sys, time
import numpy as np
import mediapipe as mp
from mediapipe.tasks import python as mpt
from mediapipe.tasks.python import vision
frames = np.load(sys.argv[2])["frames"]  # RGB
rounds, per_round = int(sys.argv[3]), int(sys.argv[4])
options = vision.ImageClassifierOptions(base_options=mpt.BaseOptions(model_asset_path=sys.argv[1]), max_results=5)
with vision.ImageClassifier.create_from_options(options) as classifier:
    images = [mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(f)) for f in frames]
    for i in range(20):
        classifier.classify(images[i % len(images)])
    out = []
    for _ in range(rounds):
        times = []
        for i in range(per_round):
            t = time.perf_counter()
            classifier.classify(images[i % len(images)])
            times.append((time.perf_counter() - t) * 1000)
        out.append({"mediapipe": statistics.median(times)})
print(json.dumps({"rounds": out, "mediapipe": mp.__version__}))
"""

_KERAS_PREDICT = r"""
import json, statistics, sys, time
import keras, numpy as np
model = keras.models.load_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])["one"]
rounds, per_round = int(sys.argv[3]), int(sys.argv[4])
for _ in range(3):
    model.predict(x, verbose=0)
out = []
for _ in range(rounds):
    times = []
    for i in range(per_round):
        t = time.perf_counter()
        model.predict(x, verbose=0)
        times.append((time.perf_counter() - t) * 1000)
    out.append({"keras": statistics.median(times)})
print(json.dumps({"rounds": out}))
"""


def runtime_cold_start(model: Path, threads: int) -> dict:
    """edgecls runtime in a fresh process (see edgecls.bench.measure.cold_start)."""
    from edgecls.bench.measure import BenchOptions, cold_start

    return cold_start(model, BenchOptions(threads=threads))


def tensorflow_cold_start(keras_file: Path) -> dict:
    """TensorFlow import + load_model + first predict in a fresh process."""
    return run_json([PYTHON, "-c", _TF_COLD, str(keras_file)], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def mediapipe_rounds(python: Path, model: Path, frames_npz: Path, rounds: int, per_round: int) -> dict:
    """MediaPipe Tasks ImageClassifier.classify: per round, the median ms on the same frames (RGB
    mp.Image prepared beforehand), in a fresh process of MediaPipe's own environment."""
    return run_json([str(python), "-c", _MEDIAPIPE, str(model), str(frames_npz), str(rounds), str(per_round)])


def keras_rounds(keras_file: Path, input_npz: Path, rounds: int, per_round: int) -> list[dict[str, float]]:
    """Keras ``model.predict`` on one image: per round, the median ms, in a fresh TensorFlow process."""
    return run_json([PYTHON, "-c", _KERAS_PREDICT, str(keras_file), str(input_npz), str(rounds), str(per_round)],
                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})["rounds"]
