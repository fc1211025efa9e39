"""``edgecls eval`` and ``edgecls bench``: metrics, schemas and errors (no timing assertions)."""

import csv
import io
import json
import statistics

import numpy as np
import pytest

from edgecls.bench.stats import LatencyStats
from edgecls.bench.table import CSV_COLUMNS
from edgecls.cli import main


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def _file(report, fmt, quant):
    return next(f for f in report.files if (f.format, f.quantization) == (fmt, quant))


def test_latency_stats_match_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 7.0, 6.0, 9.0, 8.0]
    stats = LatencyStats.of(samples)
    assert (stats.count, stats.min, stats.max) == (10, 1.0, 10.0)
    assert stats.mean == pytest.approx(5.5) and stats.std == pytest.approx(np.std(samples))
    assert stats.p50 == pytest.approx(np.percentile(samples, 50)) == pytest.approx(5.5)
    assert stats.p90 == pytest.approx(np.percentile(samples, 90))
    assert stats.p99 == pytest.approx(np.percentile(samples, 99))
    with pytest.raises(ValueError, match="no latency samples"):
        LatencyStats.of([])


def test_eval_matches_export_validation(capsys, seed_export, digits_folders):
    _, val = digits_folders
    files = [_file(seed_export, "tflite", "fp32"), _file(seed_export, "onnx", "int8")]
    code, out, _ = run(capsys, "eval", *(f.path for f in files), val, "--json", "--errors")
    results = json.loads(out)
    assert code == 0 and len(results) == 2
    for f, r in zip(files, results, strict=True):
        assert r["top1"] == pytest.approx(f.validation.accuracy)
        assert r["top1"] <= r["top5"] <= 1.0
        assert r["images"] == 397 and sum(map(sum, r["confusion"])) == 397
        assert len(r["errors"]) == round((1 - r["top1"]) * 397)
        assert r["errors"] and all(e["label"] != e["predicted"] for e in r["errors"])
        recalls = [c["recall"] for c in r["per_class"]]
        assert min(recalls) > 0.5 and len(recalls) == 10


def test_eval_table_and_errors_listing(capsys, seed_export, digits_folders):
    _, val = digits_folders
    code, out, _ = run(capsys, "eval", _file(seed_export, "tflite", "int8").path, val, "--errors")
    assert code == 0 and "confusion matrix" in out and "predicted as" in out


def test_eval_class_mismatch_is_an_error(capsys, seed_export, tmp_path, digits_folders):
    import shutil

    _, val = digits_folders
    data = tmp_path / "data"
    shutil.copytree(val / "3", data / "cat")
    code, _, err = run(capsys, "eval", _file(seed_export, "onnx", "fp32").path, data)
    assert code == 1 and "class folders cat are not among the model's labels" in err
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(next((val / "3").glob("*.png")), flat / "x.png")
    code, _, err = run(capsys, "eval", _file(seed_export, "onnx", "fp32").path, flat)
    assert code == 1 and "needs one sub-folder per class" in err
    code, _, err = run(capsys, "eval", _file(seed_export, "onnx", "fp32").path)
    assert code == 2 and "give at least one MODEL and a DATA_DIR" in err


def test_bench_json_and_csv(capsys, seed_export, color_model, tmp_path):
    models = [_file(seed_export, "tflite", "int8").path, color_model]
    csv_path = tmp_path / "bench.csv"
    code, out, _ = run(capsys, "bench", *models, "--runs", "8", "--warmup", "2", "--json", "--csv", csv_path)
    data = json.loads(out)
    assert code == 0 and len(data["results"]) == 2 and len(data["table"]) == 2
    for result in data["results"]:
        assert set(result["stages"]) == {"preprocess", "inference", "postprocess", "end_to_end"}
        for stats in result["stages"].values():
            assert stats["count"] == 8 and stats["min"] <= stats["p50"] <= stats["p99"] <= stats["max"]
        assert set(result["cold_start"]) == {"import_s", "load_s", "first_result_s", "total_s"}
        assert result["peak_rss_mb"] > 0 and result["throughput_fps"] > 0
        assert result["input"].startswith("640x480")
    assert data["table"][0]["speedup"] == 1.0
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == 2


def test_bench_threads_and_image(capsys, seed_export, digits_folders):
    _, val = digits_folders
    image = next((val / "1").glob("*.png"))
    code, out, _ = run(capsys, "bench", _file(seed_export, "onnx", "fp32").path, "--image", image,
                       "--threads", "1,2", "--runs", "3", "--no-cold-start", "--json")
    data = json.loads(out)
    assert code == 0 and [r["threads"] for r in data["results"]] == [1, 2]
    assert data["results"][0]["input"] == str(image) and data["results"][0]["cold_start"] == {}
    code, _, err = run(capsys, "bench", _file(seed_export, "onnx", "fp32").path, "--threads", "two")
    assert code == 2 and "is not a comma list of integers" in err


def test_bench_batch_data_duration_and_plot(capsys, seed_export, digits_folders, tmp_path):
    _, val = digits_folders
    model = _file(seed_export, "tflite", "int8")
    plot = tmp_path / "bench.png"
    code, out, _ = run(capsys, "bench", model.path, "--duration", "0.2", "--batch", "4", "--data", val,
                       "--no-cold-start", "--json", "--plot", plot)
    data = json.loads(out)
    result, row = data["results"][0], data["table"][0]
    assert code == 0
    assert result["stages"]["end_to_end"]["count"] >= 1
    assert result["batch"] == 4 and result["batch_throughput_fps"] > 0 and row["batch_fps"] > 0
    assert result["accuracy"] == pytest.approx(model.validation.accuracy) == row["accuracy"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run(capsys, "bench", model.path, "--runs", "3", "--batch", "2", "--data", val, "--no-cold-start")
    assert code == 0 and "accuracy" in out and "FPS x2" in out


def test_bench_cold_start_reports_process_memory(capsys, color_model):
    code, out, _ = run(capsys, "bench", color_model, "--runs", "3", "--json")
    result = json.loads(out)["results"][0]
    assert code == 0 and result["cold_start"]["total_s"] >= result["cold_start"]["load_s"] > 0
    assert "peak_rss_mb" not in result["cold_start"] and result["peak_rss_mb"] > 10


def test_bench_rounds_interleave_models_and_report_spread(capsys, seed_export, color_model):
    models = [_file(seed_export, "tflite", "int8").path, color_model]
    code, out, _ = run(capsys, "bench", *models, "--runs", "20", "--rounds", "4", "--no-cold-start", "--json")
    data = json.loads(out)
    assert code == 0
    first, second = data["results"]
    for result in (first, second):
        assert len(result["round_p50_ms"]) == 4 and result["stages"]["end_to_end"]["count"] == 80
        spread = result["spread"]
        assert spread["min"] <= spread["median"] <= spread["max"]
        assert spread["range_pct"] == pytest.approx((spread["max"] - spread["min"]) / spread["median"] * 100, abs=0.01)
        assert spread["stable"] == (spread["range_pct"] <= 10)
    assert first["round_ratios"] == [1.0] * 4  # the first model is the reference of every round
    assert second["round_ratios"] == pytest.approx(
        [b / a for a, b in zip(first["round_p50_ms"], second["round_p50_ms"], strict=True)])
    assert data["table"][1]["ratio_spread"]["median"] == pytest.approx(statistics.median(second["round_ratios"]))


def test_bench_sustained_reports_each_window(capsys, color_model):
    code, out, _ = run(capsys, "bench", color_model, "--sustained", "2s", "--window", "0.5s", "--no-cold-start",
                       "--json")
    (result,) = json.loads(out)["results"]
    windows = result["windows"]
    assert code == 0 and 4 <= len(windows) <= 5  # four whole windows, perhaps a last sliver
    assert [w["end_s"] for w in windows] == sorted(w["end_s"] for w in windows) and windows[-1]["end_s"] >= 2.0
    assert sum(w["frames"] for w in windows) == result["stages"]["end_to_end"]["count"]
    assert all(0 < w["p50_ms"] <= w["p99_ms"] for w in windows)
    code, _, err = run(capsys, "bench", color_model, "--sustained", "1s", "--rounds", "2")
    assert code == 1 and "give either rounds or sustained" in err
    code, _, err = run(capsys, "bench", color_model, "--sustained", "ten minutes")
    assert code == 2 and "expected a duration like 90s, 10m or 1h" in err


def test_bench_profile_lists_the_slowest_onnx_operators_and_refuses_litert(capsys, seed_export):
    onnx_fp32 = _file(seed_export, "onnx", "fp32").path
    code, out, _ = run(capsys, "bench", onnx_fp32, "--runs", "30", "--profile", "--no-cold-start", "--json")
    (result,) = json.loads(out)["results"]
    ops = result["operators"]
    assert code == 0 and 5 <= len(ops) <= 10  # the seed CNN has more than 5 nodes; at most the 10 slowest
    assert all(op["calls"] == 30 for op in ops)  # one kernel run per inference
    assert [op["total_ms"] for op in ops] == sorted((op["total_ms"] for op in ops), reverse=True)
    assert "Conv" in {op["op_type"] for op in ops} and 0 < sum(op["share"] for op in ops) <= 1.0 + 1e-9
    tflite = _file(seed_export, "tflite", "fp32").path
    code, out, err = run(capsys, "bench", tflite, "--runs", "5", "--profile", "--no-cold-start")
    assert code == 1 and out == "" and "LiteRT's Python API has no per-operator profiler" in err
