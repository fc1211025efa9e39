"""Today's slice of the conversion matrix (``python -m benchmarks.conversion_matrix --rows ci``): ConvNeXtTiny,
one other Keras Applications family and one seed save format, rotating daily so every row runs
within two weeks; the whole matrix runs from ``benchmarks/`` and its page is committed.

Each row is a briefly trained digits classifier exported by the real CLI to TFLite and ONNX in
fp32 and int8. fp32 files must match Keras (top-1 agreement 1.0, max |Δ| < 1e-4); int8 files must meet
the matrix's budget (``--max-drop 1.0``), climbing the quantization ladder where full int8 does not.
Slow: CI runs it with ``pytest -m slow``.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_todays_matrix_slice_converts_and_agrees(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.conversion_matrix", "--rows", "ci", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=3000, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    (page,) = tmp_path.glob("conversion-matrix-*.json")
    rows = json.loads(page.read_text())["rows"]
    assert len(rows) == 3 and rows[0]["row"] == "ConvNeXtTiny"
    assert (tmp_path / page.name.replace(".json", ".md")).read_text().count("| --max-drop 1.0 |") == 3
    for row in rows:
        assert "error" not in row and row["exit_code"] == 0, row
        assert row["keras_accuracy"] > 0.3, row  # a real, if briefly trained, classifier
        files = {(f["format"], f["quantization"]): f for f in row["files"]}
        assert set(files) == {(f, q) for f in ("tflite", "onnx") for q in ("fp32", "int8")}, row["row"]
        for (fmt, quant), f in files.items():
            if quant == "fp32":
                assert f["passed"] and f["top1_agreement"] == 1.0 and f["max_abs_diff"] < 1e-4, (row["row"], fmt, f)
            else:
                assert f["passed"] and f["accuracy_drop"] <= 0.01 + 1e-9, (row["row"], fmt, f)
