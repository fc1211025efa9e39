"""Mutated .tflite and .onnx files: loading and classifying never crashes the Python process.

Each case runs in its own subprocess, so a native crash (a signal) fails the test instead of
taking pytest down. Allowed outcomes: a result, or an EdgeclsError.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

CASES = 12  # per format; mutations are seeded, so a failure names a reproducible case

PROBE = """
import json, sys
import numpy as np
from edgecls.runtime import Classifier, EdgeclsError
try:
    with Classifier.from_path(sys.argv[1]) as clf:
        top = clf.classify(np.full((40, 30, 3), 128, np.uint8)).top
    print(json.dumps({"outcome": "result", "label": top.label if top else None}))
except EdgeclsError as exc:
    print(json.dumps({"outcome": type(exc).__name__, "message": str(exc)}))
"""


def mutate(data: bytes, seed: int) -> bytes:
    """Seeded damage: flipped bytes, a cut, a zeroed run, or a copied block, somewhere in the file."""
    rng = np.random.default_rng(seed)
    buf = bytearray(data)
    kind = seed % 4
    if kind == 0:
        for i in rng.integers(0, len(buf), size=int(rng.integers(1, 32))):
            buf[i] ^= int(rng.integers(1, 256))
    elif kind == 1:
        buf = buf[: int(rng.integers(8, len(buf)))]
    elif kind == 2:
        start, size = int(rng.integers(0, len(buf) - 64)), int(rng.integers(4, 64))
        buf[start:start + size] = bytes(size)
    else:
        start, size = int(rng.integers(0, len(buf) - 256)), int(rng.integers(16, 256))
        dest = int(rng.integers(0, len(buf) - size))
        buf[dest:dest + size] = buf[start:start + size]
    return bytes(buf)


@pytest.mark.parametrize("seed", range(CASES))
@pytest.mark.parametrize("name", ["tflite_int8", "onnx_fp32"])
def test_mutated_model_does_not_crash(tmp_path, seed_exports, name, seed):
    _, paths, _ = seed_exports
    source = paths[name]
    damaged = tmp_path / f"mutated_{seed}{source.suffix}"
    damaged.write_bytes(mutate(source.read_bytes(), seed))
    proc = subprocess.run([sys.executable, "-c", PROBE, str(damaged)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"case {name}/{seed} crashed the process (code {proc.returncode}): {proc.stderr[-1500:]}"
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["outcome"] in ("result", "ModelLoadError", "CardError", "UnsupportedFormatError"), outcome
    if outcome["outcome"] != "result":
        assert str(damaged) in outcome["message"]
