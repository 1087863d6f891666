"""Exact sums of floats, so that a report reduced from shards is the same for any number
of shards, bit for bit (snn2hw.shard, snn2hw.traces)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["CorrStats", "corr_stats", "correlation", "exact_sum", "total"]

#: (n, and the exact partials of the sums of a, b, a², b², ab)
CorrStats = tuple[int, list[float], list[float], list[float], list[float], list[float]]


def exact_sum(values: ArrayLike) -> list[float]:
    """Floats whose exact sum is the exact sum of ``values`` (finite): the correctly
    rounded sum, then the correctly rounded remainder, until it is zero. The partials of
    several shards together give, by math.fsum, the correctly rounded total."""
    v = np.asarray(values, dtype=float).ravel().tolist()
    parts: list[float] = []
    for _ in range(80):                      # a float64 range is ~2100 bits: few rounds
        s = math.fsum(v + [-p for p in parts])
        if s == 0 or not math.isfinite(s):
            break
        parts.append(s)
    return parts


def total(parts: list[list[float]]) -> float:
    """The correctly rounded sum of several :func:`exact_sum` results."""
    return math.fsum(p for part in parts for p in part)


def corr_stats(a: np.ndarray, b: np.ndarray) -> CorrStats:
    """(n, and the exact sums of a, b, a², b², ab) of two equal-sized arrays."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    return (a.size, exact_sum(a), exact_sum(b), exact_sum(a * a), exact_sum(b * b),
            exact_sum(a * b))


def correlation(stats: list[CorrStats]) -> float:
    """Pearson correlation from the shards' :func:`corr_stats`; 1.0 for two equal
    constant arrays, 0.0 when one is constant and they differ."""
    n = sum(s[0] for s in stats)
    sa, sb, saa, sbb, sab = (sum((Fraction(p) for s in stats for p in s[k]), Fraction(0))
                             for k in range(1, 6))
    var_a, var_b = n * saa - sa * sa, n * sbb - sb * sb
    if var_a == 0 or var_b == 0:
        return 1.0 if var_a == var_b == 0 and sa == sb else 0.0
    r = float(n * sab - sa * sb) / math.sqrt(float(var_a) * float(var_b))
    return min(1.0, max(-1.0, r))
