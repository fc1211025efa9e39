"""The statistics of the drift monitor: PSI (the population stability index) of a window's counts
against a reference's shares, and the chi-squared test's p-value (no SciPy on a device)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["psi", "chi2_pvalue"]

_SMOOTH = 0.5
"""Each bin's share is smoothed by half an image, so an empty bin is not infinite."""


def psi(expected: np.ndarray, actual: np.ndarray, expected_images: int = 1000) -> float:
    """The population stability index of the counts ``actual`` against the shares ``expected`` (same bins) of
    ``expected_images`` reference images; both smoothed by half an image per bin."""
    bins = len(expected)
    total, n = float(actual.sum()), max(1, expected_images)
    e = (np.asarray(expected, float) * n + _SMOOTH) / (n + _SMOOTH * bins)
    a = (actual + _SMOOTH) / (total + _SMOOTH * bins)
    return float(((a - e) * np.log(a / e)).sum())


def chi2_pvalue(statistic: float, dof: int) -> float:
    """P(X ≥ statistic) for X chi-squared with ``dof`` degrees of freedom (the regularized upper gamma)."""
    if dof <= 0:
        return 1.0
    s, x = dof / 2.0, statistic / 2.0
    if x <= 0:
        return 1.0
    if x < s + 1:  # the series of the lower gamma
        term = total = 1.0 / s
        k = s
        while abs(term) > abs(total) * 1e-12:
            k += 1
            term *= x / k
            total += term
        return max(0.0, 1.0 - total * math.exp(-x + s * math.log(x) - math.lgamma(s)))
    b, c, d = x + 1 - s, 1e300, 1.0 / (x + 1 - s)  # Lentz's continued fraction of the upper gamma
    h = d
    for i in range(1, 500):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-12:
            break
    return min(1.0, math.exp(-x + s * math.log(x) - math.lgamma(s)) * h)
