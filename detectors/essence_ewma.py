"""ESSENCE's dual-weight EWMA statistics, as CDC's Rnssp ``ewma_loop`` computes them.

Vectorised across series; the recursion runs day by day from the first day, because the
smoothed values are clipped at the alert limit each day, which makes today's state depend on
every earlier day. Only the days asked for get test statistics, p-values and thresholds.
See :mod:`detectors.essence` for the method and its deviations from Rnssp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

MIN_BASELINE = 7
"""Rnssp's ``min_baseline`` in ``ewma_loop``: the first test day has 7 baseline days."""

_CHUNK = 128
"""Days whose baseline statistics are prepared at once (memory: n_series × _CHUNK)."""


@dataclass(frozen=True)
class EwmaStats:
    """EWMA results at the evaluated days (arrays are n_series × n_points)."""

    expected: NDArray[np.float64]
    """Baseline mean."""
    threshold: NDArray[np.float64]
    """p < red exactly when the day's count exceeds this (before rounding error)."""
    score: NDArray[np.float64]
    """Test statistic of the weight with the smaller p-value (ties: w2)."""
    p_value: NDArray[np.float64]
    valid: NDArray[np.bool_]
    """The day's count and all its baseline days are present."""


@dataclass(frozen=True)
class _Weight:
    """Constants of one smoothing weight, indexed by baseline length."""

    w: float
    ucl_alert: NDArray[np.float64]
    correction: NDArray[np.float64]
    min_sigma: NDArray[np.float64]
    constant: NDArray[np.float64]


def _weight_constants(w: float, b: int, g: int) -> _Weight:
    # Index = baseline length L (entries below MIN_BASELINE are unused).
    length = np.arange(b + 1, dtype=np.float64)
    length[:MIN_BASELINE] = MIN_BASELINE
    n_df = length - 1
    ucl_alert = np.round(special.stdtrit(n_df, 1 - 0.01), 5)
    ucl_warning = np.round(special.stdtrit(n_df, 1 - 0.05), 5)
    correction = np.sqrt(
        (w / (2 - w)) + (1 / length) - 2 * (1 - w) ** (g + 1) * ((1 - (1 - w) ** length) / length)
    )
    min_sigma = (w / ucl_warning) * (0.01 + 0.05 * (1 - w) ** 2)
    constant = (0.1289 - (0.2414 - 0.1826 * (1 - w) ** 4) * math.log(10 * 0.05)) * (w / ucl_warning)
    return _Weight(w, ucl_alert, correction, min_sigma, constant)


def _smooth(z: NDArray[np.float64], y: NDArray[np.float64], w: float) -> NDArray[np.float64]:
    # Same operation order as Rnssp (w * y + (1 - w) * z) so values agree to the last bit.
    new = w * y + (1 - w) * z
    new = np.where(np.isnan(z), y, new)  # the state starts at the first observed count
    return np.where(np.isnan(y), z, new)  # a missing day leaves the state unchanged


def _clip(
    z: NDArray[np.float64],
    stat: NDArray[np.float64],
    mu: NDArray[np.float64],
    sigma: NDArray[np.float64],
    ucl: float,
) -> NDArray[np.float64]:
    # Rnssp pulls an outlying smoothed value back to the alert limit so that one outbreak day
    # does not mask the days after it.
    return np.where(np.abs(stat) > ucl, mu + np.sign(stat) * ucl * sigma, z)


def _baseline_moments(
    y: NDArray[np.float64],
    shift: NDArray[np.float64],
    days: NDArray[np.intp],
    b: int,
    g: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Mean and standard deviation of each day's baseline ``[t-g-L, t-g)``, L = min(b, t-g).

    Sums come from prefix sums of the counts minus a per-series constant (the first observed
    count), so integer counts give exact sums and the variance is exact up to its last rounding.
    Windows holding a missing count get NaN.
    """
    end = days - g
    start = np.maximum(0, days - g - b)
    length = end - start
    base = int(start[0])
    block = y[:, base : int(end[-1])] - shift[:, None]
    missing = np.isnan(block)
    block = np.where(missing, 0.0, block)
    zeros = np.zeros((y.shape[0], 1))
    p1 = np.concatenate([zeros, np.cumsum(block, axis=1)], axis=1)
    p2 = np.concatenate([zeros, np.cumsum(block * block, axis=1)], axis=1)
    pn = np.concatenate([zeros, np.cumsum(missing, axis=1)], axis=1)
    lo, hi = start - base, end - base
    s1 = p1[:, hi] - p1[:, lo]
    s2 = p2[:, hi] - p2[:, lo]
    gaps = pn[:, hi] - pn[:, lo]
    size = length.astype(np.float64)
    mean = (s1 + size * shift[:, None]) / size
    var = np.maximum((size * s2 - s1 * s1) / (size * (size - 1)), 0.0)
    bad = gaps > 0
    mean[bad] = np.nan
    var[bad] = np.nan
    return mean, np.sqrt(var), length


def ewma_statistics(
    counts: NDArray[np.float64],
    points: NDArray[np.intp],
    *,
    b: int,
    g: int,
    w1: float,
    w2: float,
    red: float,
) -> EwmaStats:
    """Rnssp's ``ewma_loop`` for every series at the sorted days ``points`` (all ≥ 7 + g).

    Parameters
    ----------
    counts : ndarray, shape (n_series, n_times)
        Counts, NaN = missing.
    points : ndarray of int
        Sorted, unique time indices to evaluate, each ≥ ``MIN_BASELINE + g``.
    b, g, w1, w2 : int, int, float, float
        Rnssp's ``B``, ``g``, ``w1``, ``w2``.
    red : float
        Level for :attr:`EwmaStats.threshold`.

    Returns
    -------
    EwmaStats
        Arrays of shape (n_series, len(points)).

    Notes
    -----
    For day t with baseline ``y[t-g-L : t-g]``, L = min(B, t-g) ≥ 7, mean μ and sd s:
    ``z_k(t) = w_k y_t + (1-w_k) z_k(t-1)`` (``z_k(0) = y_0``),
    ``σ_k = max(w_k/q95 (0.01 + 0.05(1-w_k)²), s c_k + (0.1289 - (0.2414 - 0.1826(1-w_k)⁴)
    ln 0.5) w_k/q95)`` with ``c_k = sqrt(w_k/(2-w_k) + 1/L - 2(1-w_k)^(g+1)(1-(1-w_k)^L)/L)``,
    ``T_k = (z_k - μ)/σ_k``, ``p_k = 1 - F_t(T_k; L-1)``; the smaller p wins (ties: w2);
    ``z_k`` is reset to ``μ ± q99 σ_k`` when ``|T_k| > q99`` (q = t quantiles rounded to 5
    decimals). Threshold: ``min_k (μ + t_{1-red} σ_k - (1-w_k) z_k(t-1)) / w_k``.

    References
    ----------
    CDC Rnssp, ``R/alert_ewma.R`` (``ewma_loop``), commit 50b4761.
    """
    n = counts.shape[0]
    k = len(points)
    shape = (n, k)
    mu_at, stat1, stat2, prev1, prev2, sig1_at, sig2_at = (np.full(shape, np.nan) for _ in range(7))
    size_at = np.zeros(k, dtype=np.intp)
    valid = np.zeros(shape, dtype=bool)
    if k == 0:
        return EwmaStats(mu_at, mu_at.copy(), mu_at.copy(), mu_at.copy(), valid)
    first = MIN_BASELINE + g
    t_end = int(points[-1]) + 1
    y = counts[:, :t_end]
    weights = (_weight_constants(w1, b, g), _weight_constants(w2, b, g))
    observed = ~np.isnan(y)
    first_seen = np.argmax(observed, axis=1)
    shift = np.where(observed.any(axis=1), y[np.arange(n), first_seen], 0.0)
    slot = np.full(t_end, -1, dtype=np.intp)
    slot[points] = np.arange(k)
    z = [np.full(n, np.nan), np.full(n, np.nan)]
    # Chunks start on a fixed grid so a day's arithmetic never depends on which days are asked.
    for t0 in range(0, t_end, _CHUNK):
        t1 = min(t0 + _CHUNK, t_end)
        lo = max(t0, first)
        if lo < t1:
            days = np.arange(lo, t1)
            mean, sd, length = _baseline_moments(y, shift, days, b, g)
            sigmas = [
                np.maximum(c.min_sigma[length], sd * c.correction[length] + c.constant[length])
                for c in weights
            ]
        for t in range(t0, t1):
            yt = y[:, t]
            if t < first:
                z = [_smooth(zk, yt, c.w) for zk, c in zip(z, weights, strict=True)]
                continue
            j = t - lo
            mu = mean[:, j]
            size = int(length[j])
            before = z
            z = [_smooth(zk, yt, c.w) for zk, c in zip(z, weights, strict=True)]
            stats = [(zk - mu) / sig[:, j] for zk, sig in zip(z, sigmas, strict=True)]
            if slot[t] >= 0:
                col = slot[t]
                mu_at[:, col] = mu
                stat1[:, col], stat2[:, col] = stats
                prev1[:, col], prev2[:, col] = before
                sig1_at[:, col], sig2_at[:, col] = sigmas[0][:, j], sigmas[1][:, j]
                size_at[col] = size
                valid[:, col] = ~np.isnan(yt) & ~np.isnan(mu)
            z = [
                _clip(zk, st, mu, sig[:, j], float(c.ucl_alert[size]))
                for zk, st, sig, c in zip(z, stats, sigmas, weights, strict=True)
            ]
    n_df = (size_at - 1).astype(np.float64)
    # Rnssp computes 1 - pt(T), not pt(-T): keep its rounding (p is exactly 0 for huge T).
    p1 = 1 - special.stdtr(n_df, stat1)
    p2 = 1 - special.stdtr(n_df, stat2)
    first_wins = p1 < p2
    crit = special.stdtrit(n_df, 1 - red)
    limits = []
    for c, sig, prev in ((weights[0], sig1_at, prev1), (weights[1], sig2_at, prev2)):
        bound = (mu_at + crit * sig - (1 - c.w) * prev) / c.w
        limits.append(np.where(np.isnan(prev), mu_at + crit * sig, bound))
    return EwmaStats(
        expected=mu_at,
        threshold=np.minimum(limits[0], limits[1]),
        score=np.where(first_wins, stat1, stat2),
        p_value=np.where(first_wins, p1, p2),
        valid=valid,
    )
