"""Comparison tables and machine-readable output for benchmark results."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from edgecls.bench.measure import BenchResult, spread_of

__all__ = ["comparison_rows", "to_csv", "CSV_COLUMNS"]

CSV_COLUMNS = ["model", "format", "quantization", "float_nodes", "threads", "size_mb", "accuracy", "p50_ms", "p99_ms",
               "fps", "batch", "batch_fps", "speedup", "preprocess_p50_ms", "inference_p50_ms", "postprocess_p50_ms",
               "cold_start_s", "peak_rss_mb", "backend", "device"]


def comparison_rows(results: Sequence[BenchResult]) -> list[dict]:
    """One row per result; speed-up is relative to the first row's end-to-end p50."""
    base = results[0].stages["end_to_end"].p50 if results else 1.0
    rows = []
    for r in results:
        e2e = r.stages["end_to_end"]
        rows.append({
            "model": r.model, "format": r.format, "quantization": r.quantization, "float_nodes": r.float_nodes,
            "threads": r.threads,
            "size_mb": round(r.size_bytes / 1e6, 3),
            "accuracy": r.accuracy,
            "p50_ms": round(e2e.p50, 4), "p99_ms": round(e2e.p99, 4), "fps": round(r.throughput_fps, 1),
            "batch": r.batch, "batch_fps": None if r.batch_throughput_fps is None else round(r.batch_throughput_fps, 1),
            "speedup": round(base / e2e.p50, 3),
            "preprocess_p50_ms": round(r.stages["preprocess"].p50, 4),
            "inference_p50_ms": round(r.stages["inference"].p50, 4),
            "postprocess_p50_ms": round(r.stages["postprocess"].p50, 4),
            "cold_start_s": round(r.cold_start["total_s"], 3) if r.cold_start else None,
            "peak_rss_mb": round(r.peak_rss_mb, 1), "backend": r.backend, "device": r.device,
            "spread": r.spread, "ratio_spread": spread_of(r.round_ratios),
        })
    return rows


def to_csv(rows: Sequence[dict]) -> str:
    """CSV text with :data:`CSV_COLUMNS` as header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
