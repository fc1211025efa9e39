"""What the reliability tests try, counted from one run: bad inputs, injected faults, soak figures.

Runs the reliability test files with pytest (junit XML), counts the cases per area, then runs the
soak probe of ``tests/project/test_no_leaks_over_long_runs.py`` on the seed CNN from ``edgecls demo`` (int8 .tflite and
.onnx) for its figures, and writes ``benchmarks/results/reliability-<date>.md`` (quoted in the
docs' "Reliability and security" page).

    python -m benchmarks.reliability
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks.suite.publish import RESULTS, publish
from benchmarks.suite.timing import run_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# area, test file, test-name pattern (None: every test in the file)
AREAS = [
    ("bad images: files, bytes, arrays, bombs, truncation, EXIF", "runtime/test_images.py", None),
    ("bad model files, cards, external data, truncated models", "runtime/test_model_load_errors.py", None),
    ("bad Keras files and export inputs, unwritable folders", "converters/test_export_inputs.py", None),
    ("bad classify and load options", "runtime/test_classifier.py", r"bad_classify_options|option_errors"),
    ("folders with unreadable images (predict, eval)", "cli/test_cli.py", r"bad_images"),
    ("the CLI: exit 1 and one `error:` line per bad input", "cli/test_cli.py", r"one_line"),
    ("exports killed by SIGTERM / SIGINT", "converters/test_interrupted_export.py", None),
    ("hostile model files: card and shape bombs, malformed graphs, engine failures", "security/test_hostile_models.py", None),
    ("model files that hold code, refused in safe mode (Lambda, op layers, SavedModel ops)", "converters/test_safe_mode.py", None),
    ("the service failing safe: bounded unauthenticated bodies, 5xx without paths, card names",
     "serve/test_serve.py", r"card_names|form_key|unauthenticated|goes_away|engine_failure"),
    ("hostile images, folders, outputs and option values", "security/test_hostile_inputs.py", None),
    ("fuzz: mutated .tflite, .onnx, cards and image headers in one resumable worker", "security/test_fuzz_models.py", None),
    ("property tests, 300 generated inputs each (hypothesis)", "runtime/test_any_input_gives_a_result_or_an_error.py", None),
    ("8 threads sharing one Classifier", "runtime/test_classifier.py", r"concurrent"),
    ("soak: 20,000 classifications + 5,000-frame stream + 2,000 live pushes", "project/test_no_leaks_over_long_runs.py", None),
]


def run_tests(xml: Path) -> list[tuple[str, str, str]]:
    files = sorted({f"tests/{area[1]}" for area in AREAS})
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *files],
                   cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    cases = []
    for case in ET.parse(xml).iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcome = "skipped" if case.find("skipped") is not None else "failed" if failed else "passed"
        cases.append((case.get("classname", "").rsplit(".", 1)[-1] + ".py", case.get("name", ""), outcome))
    return cases


def _probe(code: str, work: Path) -> dict:
    """Run ``code`` in a fresh process on each demo model; its last stdout line is JSON."""
    return {name: run_json([sys.executable, "-c", code, str(work / "demo" / "exported" / name)])
            for name in ("model_int8.tflite", "model_int8.onnx")}


def soak_figures(work: Path) -> dict:
    subprocess.run([sys.executable, "-m", "edgecls", "-q", "demo", "--out", str(work / "demo")], check=True,
                   stdout=subprocess.DEVNULL)
    return _probe((HERE / "suite" / "soak.py").read_text(), work)


SHARED = """
import json, sys, threading, time
import numpy as np
from edgecls.runtime import Classifier
frames = [np.random.default_rng(i).integers(0, 256, (240, 320, 3), dtype=np.uint8) for i in range(8)]
out = {}
with Classifier.from_path(sys.argv[1]) as clf:
    for i in range(50):
        clf.classify(frames[i % 8])
    for threads in (1, 8):
        per = 1600 // threads
        def work(offset):
            for i in range(per):
                clf.classify(frames[(i + offset) % 8])
        pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        start = time.perf_counter()
        for t in pool: t.start()
        for t in pool: t.join()
        out[threads] = 1600 / (time.perf_counter() - start)
print(json.dumps(out))
"""


def shared_throughput(work: Path) -> dict:
    """Images per second through one Classifier from 1 thread and from 8 (LiteRT serializes inference
    per model; ONNX Runtime runs concurrently)."""
    return _probe(SHARED, work)


def render(rows: list[tuple[str, int, int]], soak: dict, stamp: str, shared: dict) -> str:
    lines = [f"# Reliability {stamp}", "", "`python -m benchmarks.reliability`: cases per area from one test run.", "",
             "| area | cases | passed |", "|---|---|---|"]
    lines += [f"| {area} | {total} | {passed} |" for area, total, passed in rows]
    lines += ["", "Soak (one process, after a warm-up): RSS, open file descriptors and threads before and after.", "",
              "| model | RSS MB before → after | fds | threads |", "|---|---|---|---|"]
    for name, f in soak.items():
        b, a = f["before"], f["after"]
        lines.append(f"| {name} | {b['rss_mb']:.1f} → {a['rss_mb']:.1f} (+{a['rss_mb'] - b['rss_mb']:.1f}) | "
                     f"{b['fds']} → {a['fds']} | {b['threads']} → {a['threads']} |")
    lines += ["", "One Classifier shared by threads, 320x240 frames, images per second (all cores to the engine):", "",
              "| model | 1 thread | 8 threads |", "|---|---|---|"]
    lines += [f"| {name} | {f['1']:.0f} | {f['8']:.0f} |" for name, f in shared.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="Results folder.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = run_tests(work / "junit.xml")
        rows = []
        for area, file, pattern in AREAS:
            mine = [c for c in cases if c[0] == file and (pattern is None or re.search(pattern, c[1]))]
            rows.append((area, len(mine), sum(c[2] == "passed" for c in mine)))
        soak = soak_figures(work)
        shared = shared_throughput(work)
    stamp = dt.date.today().isoformat()
    page = render(rows, soak, stamp, shared)
    publish(args.out, f"reliability-{stamp}", {"date": stamp, "areas": [dict(zip(("area", "tests", "passed"), r,
                                                                                  strict=True)) for r in rows],
                                              "soak": soak, "shared": shared}, page)
    if any(total != passed for _, total, passed in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
