"""Interval estimates and tests used by every analysis (one implementation each).

- ``wilson``: Wilson score interval of a proportion (good at small n and near 0 or 1).
- ``mean_interval``: normal interval of a mean from its sum and sum of squares.
- ``net_interval``: interval of ``p(positive) − p(negative)`` from one multinomial sample
  (variance ``(p⁺ + p⁻ − (p⁺ − p⁻)²) / n``), clipped to [−1, 1].
- ``two_proportion``: two-sided z-test of ``k1/n1`` vs ``k2/n2`` with the pooled variance.
- ``cohens_h``: effect size of two proportions (``2·asin√p1 − 2·asin√p2``).
- ``benjamini_hochberg``: false-discovery-rate adjusted p-values (q-values).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()  # the standard library's: these few quantiles and tails need no scipy import


def z_for(alpha: float) -> float:
    return float(_NORMAL.inv_cdf(1 - alpha / 2))


def two_sided_p(z: float) -> float:
    """``P(|Z| ≥ |z|)`` for a standard normal ``Z`` (exact in the tails, via ``erfc``)."""
    return float(math.erfc(abs(z) / math.sqrt(2)))


def wilson(k: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    z = z_for(alpha)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(
    total: float, total_sq: float, n: int, alpha: float = 0.05
) -> tuple[float | None, float, float]:
    """``(mean, lower, upper)``; one value gives a zero-width interval, none gives ``None``."""
    if n <= 0:
        return None, float("nan"), float("nan")
    mean = total / n
    if n == 1:
        return mean, mean, mean
    var = max((total_sq - n * mean * mean) / (n - 1), 0.0)
    half = z_for(alpha) * math.sqrt(var / n)
    return mean, mean - half, mean + half


def net_interval(
    pos: int, neg: int, n: int, alpha: float = 0.05
) -> tuple[float | None, float, float]:
    if n <= 0:
        return None, float("nan"), float("nan")
    pp, pn = pos / n, neg / n
    d = pp - pn
    half = z_for(alpha) * math.sqrt(max(pp + pn - d * d, 0.0) / n)
    return d, max(-1.0, d - half), min(1.0, d + half)


def two_proportion(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """``(z, two-sided p)``; ``(0, 1)`` when either side is empty or nothing varies."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (k1 / n1 - k2 / n2) / se
    return z, two_sided_p(z)


def cohens_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(min(max(p1, 0.0), 1.0))) - 2 * math.asin(
        math.sqrt(min(max(p2, 0.0), 1.0))
    )


def benjamini_hochberg(pvalues: list[float]) -> list[float]:
    """q-values in input order (monotone step-up adjustment, capped at 1)."""
    m = len(pvalues)
    if m == 0:
        return []
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out.tolist()
