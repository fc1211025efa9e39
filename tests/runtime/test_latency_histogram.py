"""LatencyHistogram: percentiles in constant memory within the stated error of numpy's exact ones."""

import math

import numpy as np
import pytest

from edgecls.runtime.latency import RELATIVE_ERROR, LatencyHistogram

QS = [0, 1, 10, 50, 90, 99, 99.9, 100]


@pytest.mark.parametrize("name", ["lognormal", "uniform", "bimodal", "heavy tail", "constant", "tiny"])
def test_percentiles_within_stated_error_of_exact(name):
    rng = np.random.default_rng(0)
    samples = {
        "lognormal": rng.lognormal(0.5, 0.6, 20_000),
        "uniform": rng.uniform(0.2, 40.0, 20_000),
        "bimodal": np.concatenate([rng.normal(2.0, 0.1, 15_000), rng.normal(30.0, 3.0, 5_000)]).clip(0.01),
        "heavy tail": rng.pareto(1.5, 20_000) + 0.5,
        "constant": np.full(1000, 3.25),
        "tiny": np.array([7.0]),
    }[name]
    hist = LatencyHistogram(samples)
    assert hist.count == len(samples) and hist.mean_ms == pytest.approx(samples.mean())
    for q in QS:
        exact = float(np.percentile(samples, q, method="inverted_cdf"))  # nearest rank
        assert abs(hist.percentile(q) - exact) <= RELATIVE_ERROR * exact + 1e-12, (q, hist.percentile(q), exact)


def test_error_bound_is_about_one_percent_and_memory_is_fixed():
    assert 0.009 < RELATIVE_ERROR < 0.01
    hist = LatencyHistogram()
    size = len(hist._counts)
    for i in range(100_000):
        hist.add(0.001 * (i % 5000) + 0.5)
    assert len(hist._counts) == size and hist.count == 100_000


def test_empty_and_bad_percentile():
    hist = LatencyHistogram()
    assert hist.percentile(50) is None and hist.mean_ms is None
    with pytest.raises(ValueError, match="percentile must be in"):
        hist.percentile(101)
    hist.add(-1.0)  # a clock step backwards counts as 0
    assert hist.percentile(50) == 0.0 and not math.isnan(hist.mean_ms)
