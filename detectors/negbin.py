"""Batched maximum-likelihood negative-binomial (NB2) regression: many series, one design.

IRLS for the coefficients alternating with Newton steps for the dispersion, as R's
``MASS::glm.nb`` does; each series stops iterating when it converges, so a series gets the
same fit alone or in a batch. Checked against statsmodels in ``tests/detectors``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

Float = NDArray[np.float64]

LOG_THETA_RANGE = (math.log(1e-4), math.log(1e6))
"""Bounds on log(1/dispersion); the upper one is the Poisson limit (underdispersed data)."""
TAIL_LIMIT = 2000
"""Largest count for which the Newton steps use count tables instead of special functions."""
ETA_RANGE = (-30.0, 30.0)
"""Bounds on the linear predictor, against overflow."""
SEPARATED = math.log(1e-8)
"""A fitted mean below this (log scale) at an observed point means the fit is running off to
minus infinity (a weekday or season with no cases in a sparse series): stop, not converged."""


@dataclass(frozen=True)
class NegBinFit:
    """Maximum-likelihood NB2 fits of many series on one design matrix.

    Attributes
    ----------
    coef : ndarray (n_series, n_params)
        Regression coefficients (log link).
    dispersion : ndarray (n_series,)
        NB2 dispersion alpha (Var = mu + alpha mu^2; statsmodels' ``alpha``, 1/theta of
        ``MASS::glm.nb``).
    information : ndarray (n_series, n_params, n_params)
        Fisher information X'WX of the coefficients at the estimate, W = mu/(1 + alpha mu).
    converged : ndarray of bool (n_series,)
    iterations : ndarray of int (n_series,)
    """

    coef: Float
    dispersion: Float
    information: Float
    converged: NDArray[np.bool_]
    iterations: NDArray[np.int64]


def fit_negbin(
    counts: Float,
    design: Float,
    *,
    offset: Float | None = None,
    tol: float = 1e-8,
    max_iter: int = 50,
) -> NegBinFit:
    """Fit NB2 log-linear models to many series sharing one design matrix, all at once.

    Parameters
    ----------
    counts : ndarray (n_series, n_obs)
        Counts; NaN values are left out of the fit. Each series needs a positive count.
    design : ndarray (n_obs, n_params)
        Model matrix shared by all series.
    offset : ndarray (n_series, n_obs), optional
        Known part of the linear predictor (e.g. log population).
    tol : float
        Convergence: coefficient change <= tol (1 + |coef|) and a dispersion change that
        moves the largest variance by a relative <= tol.
    max_iter : int
        Iterations before giving up (the series is then flagged not converged; well-posed
        fits take 6-25). A series whose fitted mean at an observed point falls below 1e-8
        (separation: a weekday or season without cases) stops early, not converged.

    Returns
    -------
    NegBinFit

    Notes
    -----
    Each iteration takes, for every unconverged series, one IRLS (Fisher scoring) step for
    :math:`\\beta` at the current :math:`\\alpha` -- working weights
    :math:`w = \\mu/(1+\\alpha\\mu)`, working response :math:`z = \\eta - o + (y-\\mu)/\\mu`,
    :math:`\\beta \\leftarrow (X'WX)^{-1} X'Wz` -- then one Newton step for
    :math:`\\log\\theta = -\\log\\alpha` on the profile log-likelihood at the new
    :math:`\\mu`, with score
    :math:`\\sum [\\psi(y+\\theta) - \\psi(\\theta) - \\log(1+\\mu/\\theta)
    + (\\mu-y)/(\\theta+\\mu)]`. This is the block-coordinate ascent of ``MASS::glm.nb``
    with one step per block; its fixed point is the joint MLE, the estimate of statsmodels'
    ``NegativeBinomial(loglike_method="nb2")``. Underdispersed series reach the upper bound
    of :math:`\\theta` (:math:`\\alpha = 10^{-6}`, in effect the Poisson limit).

    The weighted cross-products are one stacked matrix product per series (not one product
    over all series), so a series' estimate does not depend on the others in the batch;
    converged series stop iterating.
    """
    n_series, n_obs = counts.shape
    n_params = design.shape[1]
    observed = np.isfinite(counts)
    y = np.where(observed, counts, 0.0)
    mask = observed.astype(np.float64)
    off = np.zeros_like(y) if offset is None else np.asarray(offset, dtype=np.float64)
    cross = (design[:, :, None] * design[:, None, :]).reshape(n_obs, n_params * n_params)
    design_t = np.ascontiguousarray(design.T)  # BLAS needs it contiguous
    tails, eligible = _count_tails(y, mask)

    # Starting values as glm.nb: mu = y (1/6 for zeros); theta from the marginal moments.
    eta = np.log(np.where(y > 0, y, 1.0 / 6.0))
    n_obs_i = mask.sum(axis=1)
    mean = y.sum(axis=1) / n_obs_i
    var = (mask * (y - mean[:, None]) ** 2).sum(axis=1) / n_obs_i
    excess = np.clip((var - mean) / np.maximum(mean, 1e-12) ** 2, 1e-2, 1e2)
    log_theta = -np.log(excess)
    coef = np.zeros((n_series, n_params))
    converged = np.zeros(n_series, dtype=bool)
    iterations = np.zeros(n_series, dtype=np.int64)

    active = np.arange(n_series)
    for _ in range(max_iter):
        if active.size == 0:
            break
        a = active
        mu = np.exp(eta[a])
        weights = mask[a] * mu / (1.0 + np.exp(-log_theta[a])[:, None] * mu)
        working = eta[a] - off[a] + (y[a] - mu) / mu
        info = _cross_products(weights, cross, n_params)
        rhs = np.matmul((weights * working)[:, None, :], design)[:, 0, :]
        new_coef = _solve(info, rhs)
        new_eta = np.clip(np.matmul(new_coef[:, None, :], design_t)[:, 0, :] + off[a], *ETA_RANGE)
        step = _theta_newton_step(
            y[a], mask[a], np.exp(new_eta), log_theta[a], tails[a], eligible[a]
        )
        new_log_theta = np.clip(log_theta[a] + step, *LOG_THETA_RANGE)
        change = np.abs(new_coef - coef[a]).max(axis=1)
        size = 1.0 + np.abs(new_coef).max(axis=1)
        # Dispersion settled when it moves the variance mu + alpha mu^2 by a relative <= tol:
        # near the Poisson limit log(theta) creeps on while nothing changes.
        mu_max = np.exp(new_eta.max(axis=1))
        old_disp, new_disp = np.exp(-log_theta[a]), np.exp(-new_log_theta)
        var_change = np.abs(new_disp - old_disp) * mu_max / (1.0 + new_disp * mu_max)
        done = (change <= tol * size) & (var_change <= tol)
        separated = ((new_eta < SEPARATED) & (mask[a] > 0)).any(axis=1)
        coef[a], eta[a], log_theta[a] = new_coef, new_eta, new_log_theta
        iterations[a] += 1
        converged[a] = done & ~separated
        active = a[~(done | separated)]

    mu = np.exp(eta)
    dispersion = np.exp(-log_theta)
    weights = mask * mu / (1.0 + dispersion[:, None] * mu)
    information = _cross_products(weights, cross, n_params)
    return NegBinFit(coef, dispersion, information, converged, iterations)


def _cross_products(weights: Float, cross: Float, n_params: int) -> Float:
    """X'WX for each series: (n_series, p, p), one stacked product per series."""
    flat = np.matmul(weights[:, None, :], cross)[:, 0, :]
    return flat.reshape(-1, n_params, n_params)


def _solve(info: Float, rhs: Float) -> Float:
    """Solve info @ x = rhs per series; a (near-)singular system falls back to least squares."""
    try:
        return np.asarray(np.linalg.solve(info, rhs[..., None])[..., 0], dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.stack(
            [np.linalg.lstsq(m, r, rcond=None)[0] for m, r in zip(info, rhs, strict=True)]
        )


def _count_tails(y: Float, mask: Float) -> tuple[Float, NDArray[np.bool_]]:
    """For whole-number series: N[i, j] = number of observed counts of series i above j.

    With these, sum_s [psi(y_s + theta) - psi(theta)] = sum_j N_j / (theta + j) exactly
    (psi(x + 1) = psi(x) + 1/x), and likewise for trigamma: no special functions in the
    Newton steps and no cancellation at large theta. Series with fractional counts or counts
    above ``TAIL_LIMIT`` (where the table would outgrow the data) use the special functions.
    """
    top = np.where(mask > 0, y, 0.0).max(axis=1)
    eligible = (np.where(mask > 0, y % 1.0, 0.0) == 0.0).all(axis=1) & (top <= TAIL_LIMIT)
    width = int(top[eligible].max()) if eligible.any() else 0
    tails = np.zeros((y.shape[0], width))
    if width:
        values = np.where((mask > 0) & eligible[:, None], y, 0.0).astype(np.intp)
        rows = np.broadcast_to(np.arange(y.shape[0])[:, None], y.shape)
        table = np.zeros((y.shape[0], width + 1))
        np.add.at(table, (rows, values), 1.0)
        table[:, 0] = 0.0  # zeros and unobserved points contribute nothing
        # N_j = number of counts > j = sum of the table above j
        tails = table[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
    return tails, eligible


def _theta_newton_step(
    y: Float,
    mask: Float,
    mu: Float,
    log_theta: Float,
    tails: Float,
    eligible: NDArray[np.bool_],
) -> Float:
    """Newton step for log(theta) on the NB2 log-likelihood at fixed mu (one per series).

    Bounded to +-2 (a factor e^2) and, where the likelihood is not concave there, a plain
    move of 1 in the direction of the score, so the iteration cannot run away.
    """
    th = np.exp(log_theta)
    theta = th[:, None]
    digamma_diff, trigamma_diff = np.empty_like(th), np.empty_like(th)
    if eligible.any():
        # Sequential sums (cumsum), so the table's width (the batch's largest count) does not
        # change a series' result: trailing zeros add nothing.
        inv = 1.0 / (theta[eligible] + np.arange(tails.shape[1]))
        terms = tails[eligible] * inv
        digamma_diff[eligible] = terms.cumsum(axis=1)[:, -1] if terms.shape[1] else 0.0
        trigamma_diff[eligible] = -(terms * inv).cumsum(axis=1)[:, -1] if terms.shape[1] else 0.0
    other = ~eligible
    if other.any():
        yo, mo, to = y[other], mask[other], theta[other]
        digamma_diff[other] = (mo * (special.digamma(yo + to) - special.digamma(to))).sum(axis=1)
        trigamma_diff[other] = (mo * (_trigamma(yo + to) - _trigamma(to))).sum(axis=1)
    theta_mu = theta + mu
    score = digamma_diff + (mask * ((mu - y) / theta_mu - np.log1p(mu / theta))).sum(axis=1)
    curvature = trigamma_diff + (
        mask * (1.0 / theta - 2.0 / theta_mu + (y + theta) / theta_mu**2)
    ).sum(axis=1)
    gradient = th * score  # d loglik / d log(theta)
    hessian = th * th * curvature + gradient
    newton = -gradient / np.where(hessian < 0, hessian, -1.0)
    step = np.where(hessian < 0, newton, np.sign(gradient))
    return np.clip(step, -2.0, 2.0)


def _trigamma(x: Float) -> Float:
    """Trigamma for x > 0: recurrence up to x >= 6, then the asymptotic series (relative error < 1e-8).

    scipy's ``polygamma(1, x)`` is several times slower on the (series × days) arrays of the
    nightly fit; this only steers Newton steps, the fixed point does not depend on it.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    total = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        if not small.any():
            break
        total += np.where(small, 1.0 / (x * x), 0.0)
        x = np.where(small, x + 1.0, x)
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv + inv2 * (0.5 + inv * (1 / 6 - inv2 * (1 / 30 - inv2 * (1 / 42 - inv2 / 30))))
    return total + series
