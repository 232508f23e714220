"""Farrington's upper bounds from the fitted models: delta method (R's default), negative
binomial quantile with the estimated mean plugged in (Noufaily), and the quantile of the
mean's upper limit ("muan"), with exact discrete quantiles (scipy's ``nbinom.ppf`` can
crash the interpreter on extreme sizes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import special

from detectors.farrington_models import ModelFits
from detectors.glm import FloatArray

PowerTransform = Literal["2/3", "1/2", "none"]


@dataclass(frozen=True)
class Bound:
    """Per (series, time point): upper bound, expected count, R's score and p-value."""

    upper: FloatArray
    expected: FloatArray
    score: FloatArray
    p_value: FloatArray


def threshold_delta(fits: ModelFits, y: FloatArray, alpha: float, power: PowerTransform) -> Bound:
    """Farrington's bound: normal quantile of the power-transformed count, by the delta rule.

    Notes
    -----
    ``μ₀ = exp(η̂₀)``, ``τ = φ + se(μ̂₀)²/μ₀``; power ``e`` ∈ {1, 1/2, 2/3} with
    ``σ = sqrt(μ₀ τ)``, ``sqrt(τ/4)``, ``sqrt(4/9 μ₀^{1/3} τ)``; ``U = (μ₀^e + z σ)^{1/e}``
    (the larger end of the interval); p-value ``P(N(μ₀^e, σ²) > y^e)``.

    References
    ----------
    R ``surveillance:::algo.farrington.threshold.farrington`` (1.20.3).
    """
    exponent = {"none": 1.0, "1/2": 0.5, "2/3": 2.0 / 3.0}[power]
    mu0 = np.maximum(np.exp(fits.eta), np.finfo(np.float64).eps)
    se_fit = fits.se_eta * mu0
    tau = fits.phi + se_fit**2 / mu0
    sd = {
        "none": lambda: np.sqrt(mu0 * tau),
        "1/2": lambda: np.sqrt(tau / 4.0),
        "2/3": lambda: np.sqrt(4.0 / 9.0 * mu0 ** (1.0 / 3.0) * tau),
    }[power]()
    z = special.ndtri(1.0 - alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        ends = [np.power(mu0**exponent + sign * z * sd, 1.0 / exponent) for sign in (-1, 1)]
        upper = np.fmax(ends[0], ends[1])
        p_value = special.ndtr((mu0**exponent - y**exponent) / sd)
        score = (y - mu0) / (upper - mu0)
    return Bound(upper, mu0, score, p_value)


def threshold_negbin(
    fits: ModelFits, y: FloatArray, alpha: float, power: PowerTransform, *, muan: bool = False
) -> Bound:
    """Noufaily's bound: negative binomial ``1 - alpha`` quantile (``power`` is unused).

    Notes
    -----
    Mean ``m = exp(η̂₀)`` (nbPlugin) or ``exp(η̂₀ + z_{1-α} se(η̂₀))`` (muan); size
    ``m/(φ - 1)``, probability ``1/φ``; Poisson(m) when ``φ = 1``. p-value
    ``P(Y ≥ y)``. No bound when ``m`` overflows.

    References
    ----------
    R ``surveillance:::algo.farrington.threshold.noufaily`` (1.20.3).
    """
    z = special.ndtri(1.0 - alpha)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mean = np.exp(fits.eta + z * fits.se_eta) if muan else np.exp(fits.eta)
        phi = fits.phi
        nb = phi > 1
        prob = np.where(nb, 1.0 / phi, 1.0)
        size = np.where(nb, mean / (phi - 1.0), np.inf)
        upper = np.where(
            nb, negbin_quantile(1.0 - alpha, size, prob), poisson_quantile(1.0 - alpha, mean)
        )
        # P(Y >= y): regularised incomplete beta / gamma functions (y >= 1), else 1.
        at_least = np.where(
            nb,
            special.betainc(np.maximum(y, 1.0), size, 1.0 - prob),
            special.gammainc(np.maximum(y, 1.0), mean),
        )
        p_value = np.where(y < 1, 1.0, at_least)
        finite = np.isfinite(mean)
        upper = np.where(finite, upper, np.nan)
        p_value = np.where(finite & ~np.isnan(y) & ~np.isnan(phi), p_value, np.nan)
        score = (y - fits.eta) / (upper - fits.eta)
    return Bound(upper, np.exp(fits.eta), score, p_value)


def threshold_muan(fits: ModelFits, y: FloatArray, alpha: float, power: PowerTransform) -> Bound:
    """Negative binomial bound at the upper confidence limit of the mean (see :func:`threshold_negbin`)."""
    return threshold_negbin(fits, y, alpha, power, muan=True)


THRESHOLDS = {"delta": threshold_delta, "nbPlugin": threshold_negbin, "muan": threshold_muan}

_EXACT_BELOW = 1e9
"""Means above this get the Cornish-Fisher quantile: exact to double precision there."""


def negbin_quantile(q: float, size: FloatArray, prob: FloatArray) -> FloatArray:
    """R's ``qnbinom(q, size, prob)``, elementwise: smallest k with ``P(Y ≤ k) ≥ q``."""
    mean = size * (1.0 - prob) / prob
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = (2.0 - prob) / np.sqrt(size * (1.0 - prob))
    return _discrete_quantile(
        q, lambda k, i: special.betainc(size[i], k + 1.0, prob[i]), mean, np.sqrt(mean / prob), skew
    )


def poisson_quantile(q: float, mean: FloatArray) -> FloatArray:
    """R's ``qpois(q, mean)``, elementwise: smallest k with ``P(Y ≤ k) ≥ q``."""
    sd = np.sqrt(mean)
    with np.errstate(divide="ignore"):
        skew = 1.0 / sd
    return _discrete_quantile(q, lambda k, i: special.gammaincc(k + 1.0, mean[i]), mean, sd, skew)


def _discrete_quantile(
    q: float,
    cdf: Callable[[FloatArray, NDArray[np.intp]], FloatArray],
    mean: FloatArray,
    sd: FloatArray,
    skew: FloatArray,
) -> FloatArray:
    """Search up from the Cornish-Fisher guess as R's ``qDiscrete_search`` (fuzz ``1 + 2ε``).

    scipy's ``nbinom.ppf`` aborts the interpreter on some extreme arguments (sizes near
    1e34 from an exploding muan mean), so the search runs here on the CDF ``cdf(k, rows)``.
    """
    target = q * (1.0 + 2.0 * np.finfo(np.float64).eps)
    z = special.ndtri(q)
    with np.errstate(invalid="ignore", over="ignore"):
        guess = np.maximum(np.rint(mean + sd * (z + skew * (z * z - 1.0) / 6.0)), 0.0)
    guess = np.where(mean == 0, 0.0, guess)
    out = np.full(np.shape(mean), np.nan)
    valid = np.isfinite(guess)
    out[valid] = guess[valid]
    idx = np.flatnonzero(valid & (mean < _EXACT_BELOW))
    if idx.size == 0:
        return out

    def reached(k: FloatArray) -> NDArray[np.bool_]:
        return np.asarray((k >= 0) & (cdf(np.maximum(k, 0.0), idx) >= target))

    lo, hi = guess[idx] - 1.0, guess[idx].copy()
    step = np.maximum(1.0, np.ceil(sd[idx]))
    while not (up := reached(hi)).all():  # widen upwards until hi reaches the target
        below = ~up
        lo[below], hi[below], step[below] = hi[below], hi[below] + step[below], step[below] * 2
    step = np.maximum(1.0, np.ceil(sd[idx]))
    while (down := reached(lo)).any():  # and downwards until lo is below it
        hi[down] = lo[down]
        lo[down] = np.maximum(lo[down] - step[down], -1.0)
        step[down] *= 2
    while (gap := hi - lo > 1).any():  # bisection: lo below the target, hi at or above
        mid = np.floor((lo + hi) / 2)
        ok = reached(mid)
        hi = np.where(gap & ok, mid, hi)
        lo = np.where(gap & ~ok, mid, lo)
    out[idx] = hi
    return out
