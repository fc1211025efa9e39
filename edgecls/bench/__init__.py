"""Latency benchmarking of exported models with the runtime only (no TensorFlow)."""

from edgecls.bench.measure import BenchOptions, BenchResult, benchmark, benchmark_many
from edgecls.bench.stats import LatencyStats

__all__ = ["BenchOptions", "BenchResult", "LatencyStats", "benchmark", "benchmark_many"]
