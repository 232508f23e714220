"""Counts, expectations and log-likelihood ratios of every (window, zone) cylinder.

Arrays run over all prospective windows and all candidate zones at once: windows end on
the last day of the study period and last 1 … W days (row ``w`` is the window of
``w + 1`` days); zones are the rows of a :class:`geo.scan_zones.ZoneSet`, kept on the
last axis so that the sums along each centre's ordering run over contiguous memory.
Under both models a cylinder's expected count is the same in the observed data and in
every Monte Carlo replicate (the permutation keeps both margins, the Poisson replicates
keep N), so :class:`Expectation` is computed once and a replicate needs only its counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from geo.scan_zones import ZoneSet

__all__ = [
    "Expectation",
    "ScanModel",
    "expectation",
    "window_counts",
    "zone_counts",
]

ScanModel = Literal["permutation", "poisson"]
_Value = TypeVar("_Value", bound=np.generic)

_LOG1P_FLOOR = -1.0 + 2.0**-52
"""Keeps log1p finite when c = N, where its factor (N − c) is 0 anyway."""


def window_counts(cases: NDArray[np.int64], n_windows: int) -> NDArray[np.int64]:
    """Cases per location in the windows ending on the last day, shape (W, n).

    Row ``w`` holds each location's sum over the last ``w + 1`` days.
    """
    recent = cases[:, ::-1][:, :n_windows]
    return np.ascontiguousarray(np.cumsum(recent, axis=1).T)


def zone_counts(values: NDArray[_Value], zones: ZoneSet) -> NDArray[_Value]:
    """Sum per-location values over every zone: ``(..., n) -> (..., Z)``.

    One gather along the neighbour orderings and one running sum, restarted at each
    centre's first row by subtracting the previous centre's total there beforehand.
    """
    gathered = np.take(values, zones.members, axis=-1)
    firsts = zones.starts[:-1][np.diff(zones.starts) > 0]
    if firsts.size > 1:
        totals = np.add.reduceat(gathered, firsts, axis=-1)
        gathered[..., firsts[1:]] -= totals[..., :-1]
    np.cumsum(gathered, axis=-1, out=gathered)
    return gathered


@dataclass(frozen=True)
class Expectation:
    """What the observed data and every replicate share, for the zones of one ZoneSet.

    Attributes
    ----------
    total : int
        N, all cases in the study period.
    mu : ndarray, shape (W, Z)
        Expected cases in each cylinder.
    threshold : ndarray, shape (W, Z)
        A cylinder is a high-rate candidate when its count exceeds this: max(μ, 1), i.e.
        at least 2 cases and more than expected (infinite where μ = 0).
    """

    total: int
    mu: NDArray[np.float64]
    threshold: NDArray[np.float64]

    @cached_property
    def _constants(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        # c ln c + (N − c) ln(N − c) by c, and per cylinder ln((N − μ)/μ) and −N ln(N − μ)
        n = self.total
        c = np.arange(n + 1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            c_log_c = np.where(c > 0, c * np.log(c), 0.0)
            log_rest = np.log(n - self.mu)
            slope = np.where(self.mu > 0, log_rest - np.log(self.mu), 0.0)
        return c_log_c + c_log_c[::-1], slope, -n * log_rest

    def subset(self, rows: slice) -> Expectation:
        """The same expectation for a contiguous range of zones (rows)."""
        return Expectation(
            self.total,
            np.ascontiguousarray(self.mu[:, rows]),
            np.ascontiguousarray(self.threshold[:, rows]),
        )

    def llr(self, counts: NDArray[np.integer]) -> NDArray[np.float64]:
        """LLR of every cylinder for high rates, 0 where it is not a candidate.

        Parameters
        ----------
        counts : ndarray of int, shape (..., W, Z)
            Cases in each cylinder.

        Returns
        -------
        ndarray of float64, shape (..., W, Z)

        Notes
        -----
        Kulldorff's Poisson generalised likelihood ratio, as SaTScan computes it for both
        models, for a cylinder with c cases and μ expected out of N:

        LLR = c ln(c / μ) + (N − c) ln((N − c) / (N − μ))  if c ≥ 2 and c > μ, else 0.

        The second term is evaluated as (N − c) · log1p((μ − c) / (N − μ)) so that no
        precision is lost to cancellation when N is large. This is the value reported.
        """
        c = counts
        n = self.total
        with np.errstate(divide="ignore", invalid="ignore"):
            first = c * (np.log(np.maximum(c, 1)) - np.log(self.mu))
            ratio = np.maximum((self.mu - c) / (n - self.mu), _LOG1P_FLOOR)
            second = (n - c) * np.log1p(ratio)
            return np.where(c > self.threshold, first + second, 0.0)

    def llr_fast(self, counts: NDArray[np.integer]) -> NDArray[np.float64]:
        """The LLR of :meth:`llr` from tables, for the Monte Carlo maxima.

        Notes
        -----
        LLR = F(c) + c · ln((N − μ)/μ) − N ln(N − μ), with F(c) = c ln c + (N − c) ln(N − c)
        looked up by c: no logarithm per cylinder. Rounding differs from :meth:`llr` by
        about N ln N × 1e-16 (1e-11 for N = 10⁴), but equal (c, μ) always give
        bit-identical values, so a replicate maximum equal to the observed statistic is
        seen as a tie as long as both are computed here.
        """
        table, slope, offset = self._constants
        value = np.take(table, counts)
        value += counts * slope
        value += offset
        value *= counts > self.threshold
        return value


def _permutation_mu(
    cases: NDArray[np.int64], zones: ZoneSet, n_windows: int, **_: object
) -> NDArray[np.float64]:
    total = int(cases.sum())
    n_zone = zone_counts(cases.sum(axis=1), zones)  # (Z,): the zone's cases, whole period
    n_window = window_counts(cases, n_windows).sum(axis=1)  # (W,): the window's cases
    return np.asarray(np.multiply.outer(n_window, n_zone) / total, dtype=np.float64)


def _poisson_mu(
    cases: NDArray[np.int64],
    zones: ZoneSet,
    n_windows: int,
    *,
    population: NDArray[np.float64],
    **_: object,
) -> NDArray[np.float64]:
    total = int(cases.sum())
    n_days = cases.shape[1]
    share = zone_counts(population, zones) / population.sum()  # (Z,)
    days = np.arange(1, n_windows + 1, dtype=np.float64)
    return np.asarray(total * np.multiply.outer(days / n_days, share), dtype=np.float64)


_EXPECTED: dict[str, Callable[..., NDArray[np.float64]]] = {
    "permutation": _permutation_mu,
    "poisson": _poisson_mu,
}


def expectation(
    model: ScanModel,
    cases: NDArray[np.int64],
    zones: ZoneSet,
    n_windows: int,
    population: NDArray[np.float64] | None = None,
) -> Expectation:
    """Expected counts of every cylinder under the null hypothesis.

    Notes
    -----
    Space-time permutation (Kulldorff et al. 2005): with n_z the cases of the zone's
    locations and n_d the cases of the window's days, both over the whole study period,
    μ = n_z · n_d / N. Poisson: with P_z / P the zone's share of the population and T the
    number of days, μ = N · (P_z / P) · d / T for a window of d days (no day-of-week
    adjustment).
    """
    mu = _EXPECTED[model](cases, zones, n_windows, population=population)
    threshold = np.where(mu > 0, np.maximum(mu, 1.0), np.inf)
    return Expectation(int(cases.sum()), mu, threshold)
