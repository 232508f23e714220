"""Farrington's model sequence on the batched GLM fits: fit with trend, reweight by
Anscombe residuals, test the trend, refit without it where it is not kept — as R's
``algo.farrington.fitGLM.flexible`` and ``farringtonFlexible`` do it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from detectors.glm import (
    DOUBLE_EPS,
    BoolArray,
    FactorDesign,
    FloatArray,
    QuasiPoissonFit,
    fit_quasipoisson,
    hat_values,
)


@dataclass(frozen=True)
class ModelFits:
    """Farrington's final model per (series, time point): the prediction and what it used.

    Attributes
    ----------
    eta : ndarray (R,)
        Linear predictor at the current point, offset included.
    se_eta : ndarray (R,)
        Its standard error, ``sqrt(dispersion · x₀ᵀ (XᵀWX)⁻¹ x₀)`` with the raw dispersion.
    phi : ndarray (R,)
        ``max(1, dispersion)`` of the final model.
    kept_trend : ndarray (R,) of bool
        The final model has the time trend.
    ok : ndarray (R,) of bool
        A model was fitted (R's result is not NA).
    """

    eta: FloatArray
    se_eta: FloatArray
    phi: FloatArray
    kept_trend: BoolArray
    ok: BoolArray


def fit_farrington_models(
    trend_design: FactorDesign,
    flat_design: FactorDesign,
    new_trend: FloatArray,
    new_flat: FloatArray,
    y: FloatArray,
    prior: FloatArray,
    offset: FloatArray | None,
    offset_now: FloatArray,
    *,
    trend: bool,
    reweight: bool,
    weights_threshold: float,
    p_threshold_trend: float,
) -> ModelFits:
    """Fit, reweight, test the trend and refit, for every row of ``y``, as R does.

    Parameters
    ----------
    trend_design, flat_design : FactorDesign
        Design with (column 1 = time) and without the time trend.
    new_trend, new_flat : ndarray (p,)
        Design row of the current time point.
    y, prior, offset : ndarray (R, n)
        Reference counts (0 where missing), prior weights (0 where missing), log offsets.
    offset_now : ndarray (R,)
        Offset at the current point.
    trend : bool
        Try the trend model first (R does only when ``trend`` and ``b ≥ 3`` can keep it).

    Returns
    -------
    ModelFits

    Notes
    -----
    The trend model is kept when it converged, the t-test p-value of its time
    coefficient is below ``p_threshold_trend`` and ``exp(η̂₀)`` does not exceed the
    largest reference count; every other row is fitted again without the trend. A fit
    fails (no result, R's NA) when its first, unweighted GLM does not converge.

    References
    ----------
    R ``surveillance:::algo.farrington.glm`` and
    ``surveillance:::algo.farrington.fitGLM.flexible`` (1.20.3).
    """
    n_rows = y.shape[0]
    eta = np.full(n_rows, np.nan)
    se_eta = np.full(n_rows, np.nan)
    phi = np.full(n_rows, np.nan)
    kept = np.zeros(n_rows, dtype=bool)
    ok = np.zeros(n_rows, dtype=bool)
    off = np.zeros_like(y) if offset is None else offset
    rest = np.arange(n_rows)
    if trend:
        fit = _fit_reweighted(trend_design, y, prior, off, reweight, weights_threshold)
        with np.errstate(invalid="ignore", divide="ignore"):
            t_value = fit.coef[:, 1] / np.sqrt(fit.dispersion * fit.cov[:, 1, 1])
            p_value = 2.0 * special.stdtr(fit.df_residual, -np.abs(t_value))
        eta_t = np.einsum("rp,p->r", fit.coef, new_trend) + offset_now
        largest = np.max(np.where(prior > 0, y, -np.inf), axis=1)
        with np.errstate(over="ignore"):
            no_extrapolation = np.maximum(np.exp(eta_t), DOUBLE_EPS) <= largest
        keep = fit.good & (p_value < p_threshold_trend) & no_extrapolation
        eta[keep] = eta_t[keep]
        se_eta[keep] = fit.se(new_trend)[keep]
        phi[keep] = fit.phi[keep]
        kept[keep] = ok[keep] = True
        rest = np.flatnonzero(~keep)
    if rest.size:
        fit = _fit_reweighted(
            flat_design, y[rest], prior[rest], off[rest], reweight, weights_threshold
        )
        good = rest[fit.good]
        eta[good] = (np.einsum("rp,p->r", fit.coef, new_flat) + offset_now[rest])[fit.good]
        se_eta[good] = fit.se(new_flat)[fit.good]
        phi[good] = fit.phi[fit.good]
        ok[good] = True
    return ModelFits(eta=eta, se_eta=se_eta, phi=phi, kept_trend=kept, ok=ok)


@dataclass(frozen=True)
class _Final:
    """One model per row; ``dispersion`` is what R's later ``summary``/``predict`` see."""

    coef: FloatArray
    cov: FloatArray
    dispersion: FloatArray
    df_residual: FloatArray
    phi: FloatArray
    good: BoolArray

    def se(self, new: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore"):
            quad = np.einsum("p,rpq,q->r", new, self.cov, new)
            return np.asarray(np.sqrt(self.dispersion * quad), dtype=np.float64)


def _fit_reweighted(
    design: FactorDesign,
    y: FloatArray,
    prior: FloatArray,
    offset: FloatArray,
    reweight: bool,
    threshold: float,
) -> _Final:
    """One ``fitGLM.flexible`` call: fit; if converged, reweight by Anscombe residuals, refit."""
    first = fit_quasipoisson(design, y, prior, offset)
    good = first.converged.copy()
    phi = np.maximum(first.dispersion, 1.0)
    if not reweight:
        return _Final(
            first.coef, first.cov_unscaled, first.dispersion, first.df_residual, phi, good
        )
    rows = np.flatnonzero(good)
    omega = anscombe_weights(first, design, y[rows], prior[rows], phi[rows], threshold, rows)
    usable = np.isfinite(omega).all(axis=1)
    rows, omega = rows[usable], omega[usable]
    good[:] = False
    p = design.n_columns
    coef = np.full((y.shape[0], p), np.nan)
    cov = np.full((y.shape[0], p, p), np.nan)
    dispersion = np.full(y.shape[0], np.nan)
    df_residual = np.full(y.shape[0], np.nan)
    phi = np.full(y.shape[0], np.nan)
    if rows.size:
        second = fit_quasipoisson(design, y[rows], omega, offset[rows])
        # R does not check the convergence of the reweighted fit, only that glm ran.
        good[rows] = ~second.failed
        coef[rows], cov[rows] = second.coef, second.cov_unscaled
        phi[rows] = np.maximum(second.dispersion, 1.0)
        df_residual[rows] = second.df_residual
        # R's fitGLM.flexible then overwrites the model's working weights with omega, so
        # the t-test of the trend and se.fit of the prediction (summary.glm, predict.glm)
        # use sum(omega (y - mu)²/mu²)/df instead of the dispersion phi came from.
        resid2 = np.where(omega > 0, (y[rows] - second.mu) ** 2 / second.mu**2, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            dispersion[rows] = np.where(
                second.df_residual > 0, (omega * resid2).sum(axis=1) / second.df_residual, np.nan
            )
    return _Final(coef, cov, dispersion, df_residual, phi, good)


def anscombe_weights(
    fit: QuasiPoissonFit,
    design: FactorDesign,
    y: FloatArray,
    prior: FloatArray,
    phi: FloatArray,
    threshold: float,
    rows: NDArray[np.intp],
) -> FloatArray:
    """Farrington's weights from Anscombe residuals of ``fit`` (rows ``rows`` of it).

    Notes
    -----
    ``s_i = 3/2 (y_i^{2/3} μ_i^{-1/6} - μ_i^{1/2}) / sqrt(φ (1 - h_i))``;
    ``ω_i = γ s_i⁻²`` if ``s_i > threshold`` else ``γ``, with
    ``γ = n / Σ_i (s_i⁻² if s_i > threshold else 1)``; missing counts keep weight 0.

    References
    ----------
    R ``surveillance:::anscombe.residuals`` and
    ``surveillance:::algo.farrington.assign.weights`` (1.20.3).
    """
    mu = fit.mu[rows]
    part = QuasiPoissonFit(
        coef=fit.coef[rows],
        mu=mu,
        working_weights=fit.working_weights[rows],
        cov_unscaled=fit.cov_unscaled[rows],
        dispersion=fit.dispersion[rows],
        df_residual=fit.df_residual[rows],
        converged=fit.converged[rows],
        failed=fit.failed[rows],
    )
    h = hat_values(part, design)
    with np.errstate(invalid="ignore", divide="ignore"):
        # y^(2/3) mu^(-1/6) through cube roots: the same value, several times faster than pow
        cube_y = np.cbrt(y)
        s = 1.5 * (cube_y * cube_y / np.sqrt(np.cbrt(mu)) - np.sqrt(mu))
        s = s / np.sqrt(phi[:, None] * (1.0 - h))
        present = prior > 0
        big = present & (s > threshold)
        safe = np.where(big, s, 1.0)
        ratio = 1.0 / (safe * safe)  # s⁻² where big, else 1 (pow with -2 is very slow)
        gamma = present.sum(axis=1) / np.where(present, ratio, 0.0).sum(axis=1)
        omega = np.where(present, gamma[:, None] * ratio, 0.0)
    # A residual that is NaN makes R's weights NA and its glm stop: no result.
    omega[(present & np.isnan(s)).any(axis=1)] = np.nan
    return np.asarray(omega, dtype=np.float64)
