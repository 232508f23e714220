"""The typed result every detector returns, aligned with its input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from detectors.series import CountSeries


@dataclass(frozen=True, eq=False)
class DetectorResult:
    """Per time point: expected count, upper bound, score, p-value and alarm.

    Arrays have the shape of the input counts (1-D for one series, else
    n_series × n_times). Where a method could not compute (too little history, a point
    not asked for), ``computed`` is False, the float arrays hold NaN and ``alarm`` is False.

    Attributes
    ----------
    method : str
        Registered name of the method.
    params : Mapping
        Every parameter the method used, defaults included.
    expected : ndarray of float64
        Expected count (baseline mean / model prediction).
    upperbound : ndarray of float64
        Threshold: for most methods an alarm is raised when the count exceeds it.
    score : ndarray of float64
        Method-specific statistic (e.g. EARS' standardised difference, CUSUM's sum).
    p_value : ndarray of float64
        P-value of the observation where the method defines one, else NaN.
    alarm : ndarray of bool
        The method's alarm decision.
    computed : ndarray of bool
        Whether the method produced a value at that point.
    """

    method: str
    params: Mapping[str, object]
    expected: NDArray[np.float64]
    upperbound: NDArray[np.float64]
    score: NDArray[np.float64]
    p_value: NDArray[np.float64]
    alarm: NDArray[np.bool_]
    computed: NDArray[np.bool_]
    extras: Mapping[str, NDArray[np.generic]] = field(default_factory=dict)
    """Further aligned arrays a method reports (e.g. ESSENCE's chosen sub-method)."""


def build_result(
    series: CountSeries,
    method: str,
    params: Mapping[str, object],
    *,
    expected: NDArray[np.float64],
    upperbound: NDArray[np.float64],
    alarm: NDArray[np.bool_],
    computed: NDArray[np.bool_],
    score: NDArray[np.float64] | None = None,
    p_value: NDArray[np.float64] | None = None,
    extras: Mapping[str, NDArray[np.generic]] | None = None,
    owned: bool = False,
) -> DetectorResult:
    """Assemble a result from 2-D arrays, blanking points not computed, in the caller's shape.

    With ``owned=True`` the method hands over float64 arrays it created for the result:
    they are blanked and frozen in place instead of copied (saves a copy of every array,
    which matters on 10,000-series runs).
    """
    shape = series.counts.shape
    nan = np.full(shape, np.nan)
    nan.setflags(write=False)
    computed = np.asarray(computed, dtype=bool) & np.ones(shape, dtype=bool)

    def blank(values: NDArray[np.float64] | None) -> NDArray[np.float64]:
        if values is None:
            return nan
        reuse = owned and values.dtype == np.float64 and values.flags.writeable
        out = values if reuse else np.array(values, dtype=np.float64, copy=True)
        out[~computed] = np.nan
        return out

    alarms = np.asarray(alarm, dtype=bool) & computed
    floats = [blank(expected), blank(upperbound), blank(score), blank(p_value)]
    for a in (*floats, alarms, computed):
        a.setflags(write=False)
    return DetectorResult(
        method=method,
        params=MappingProxyType(dict(params)),
        expected=series.shaped(floats[0]),
        upperbound=series.shaped(floats[1]),
        score=series.shaped(floats[2]),
        p_value=series.shaped(floats[3]),
        alarm=series.shaped(alarms),
        computed=series.shaped(computed),
        extras=MappingProxyType(
            {k: series.shaped(np.asarray(v)) for k, v in (extras or {}).items()}
        ),
    )


def evaluation_points(series: CountSeries, at: object | None, first: int) -> NDArray[np.intp]:
    """Time indices to evaluate: ``at`` (indices, slice or None = all) from index ``first`` on.

    Methods take ``at`` so a nightly run computes only the analysis day; ``first`` is the
    first index with enough history for the method.
    """
    every = np.arange(series.n_times)
    chosen = every if at is None else every[cast(Any, at)]
    chosen = np.atleast_1d(np.asarray(chosen, dtype=np.intp))
    return np.unique(chosen[chosen >= first])
