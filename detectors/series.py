"""The validated container every detector takes: counts of one or many series on one time axis.

Like R ``surveillance``'s ``sts``: dates, counts (series × time), optional population, and
the time step (daily, or weekly with 52 periods a year counted by position).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

G = TypeVar("G", bound=np.generic)
Frequency = Literal["day", "week"]
STEP_DAYS: dict[Frequency, int] = {"day": 1, "week": 7}
PERIODS_PER_YEAR: dict[Frequency, int] = {"day": 365, "week": 52}


class SeriesError(ValueError):
    """Counts, dates or parameters a detector cannot work with; the message names the problem."""


@dataclass(frozen=True, eq=False)
class CountSeries:
    """Counts of ``n_series`` series over ``n_times`` regular time points.

    Attributes
    ----------
    counts : ndarray of float64, shape (n_series, n_times)
        Non-negative counts; NaN marks a missing value.
    dates : DatetimeIndex
        The ``n_times`` dates, strictly increasing, 1 day (``freq="day"``) or 7 days apart.
    freq : {"day", "week"}
        Time step.
    population : ndarray of float64, shape (n_series, n_times), optional
        Population at risk (Farrington's ``population_offset``, rates).
    one_dimensional : bool
        The caller passed one series as a 1-D array: results are squeezed back to 1-D.
    """

    counts: NDArray[np.float64]
    dates: pd.DatetimeIndex
    freq: Frequency = "day"
    population: NDArray[np.float64] | None = None
    one_dimensional: bool = False

    @property
    def n_series(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_times(self) -> int:
        return int(self.counts.shape[1])

    @property
    def periods_per_year(self) -> int:
        """Periods a year: 365 days, or 52 weeks counted by position as R's ``sts`` does."""
        return PERIODS_PER_YEAR[self.freq]

    def shaped(self, values: NDArray[G]) -> NDArray[G]:
        """Return ``values`` (n_series × n_times) in the caller's shape (1-D for one series)."""
        return values[0] if self.one_dimensional else values


def make_series(
    counts: ArrayLike,
    dates: Sequence[object] | pd.DatetimeIndex | None = None,
    *,
    freq: Frequency | None = None,
    population: ArrayLike | None = None,
    start: str = "2000-01-03",
) -> CountSeries:
    """Validate counts (1-D or 2-D) and dates and return a :class:`CountSeries`.

    Parameters
    ----------
    counts : array_like
        One series (1-D) or many series (2-D, one row per series). Non-negative; NaN is a
        missing value.
    dates : sequence of dates, optional
        Dates of the time points; default: consecutive days (or weeks) from ``start``.
    freq : {"day", "week"}, optional
        Time step; inferred from the dates when they are given (default "day").
    population : array_like, optional
        Population at risk, broadcastable to the counts' shape.
    start : str
        First date when ``dates`` is not given.

    Raises
    ------
    SeriesError
        Negative or infinite counts, wrong shapes, unsorted, duplicate or irregular dates.
    """
    arr = np.asarray(counts, dtype=np.float64)
    one_dimensional = arr.ndim == 1
    if arr.ndim not in (1, 2):
        raise SeriesError(f"counts must be 1-D or 2-D, got {arr.ndim} dimensions")
    arr2 = np.atleast_2d(arr)
    if arr2.shape[1] == 0:
        raise SeriesError("counts are empty: no time points")
    if np.isinf(arr2).any():
        raise SeriesError("counts contain infinite values")
    if (arr2 < 0).any():
        raise SeriesError("counts contain negative values")
    if dates is None:
        chosen: Frequency = freq or "day"
        index = pd.date_range(start, periods=arr2.shape[1], freq=f"{STEP_DAYS[chosen]}D")
    else:
        index = pd.DatetimeIndex(pd.to_datetime(pd.Index(list(dates))))
        if len(index) != arr2.shape[1]:
            raise SeriesError(f"{len(index)} dates for {arr2.shape[1]} time points")
        chosen = freq or _infer_freq(index)
        _check_regular(index, chosen)
    pop = None
    if population is not None:
        try:
            pop = np.broadcast_to(np.asarray(population, dtype=np.float64), arr2.shape).copy()
        except ValueError:
            raise SeriesError("population does not match the shape of the counts") from None
        if (pop <= 0).any() or not np.isfinite(pop).all():
            raise SeriesError("population must be positive and finite")
    arr2 = np.ascontiguousarray(arr2)
    arr2.setflags(write=False)
    return CountSeries(arr2, index, chosen, pop, one_dimensional)


def _infer_freq(index: pd.DatetimeIndex) -> Frequency:
    if len(index) < 2:
        return "day"
    step = (index[1] - index[0]).days
    return "week" if step == 7 else "day"


def _check_regular(index: pd.DatetimeIndex, freq: Frequency) -> None:
    if len(index) < 2:
        return
    steps = np.diff(index.values).astype("timedelta64[D]").astype(np.int64)
    if (steps <= 0).any():
        where = int(np.flatnonzero(steps <= 0)[0]) + 1
        kind = "duplicate" if steps[where - 1] == 0 else "unsorted"
        raise SeriesError(f"dates are {kind} at {index[where].date()}")
    want = STEP_DAYS[freq]
    if (steps != want).any():
        where = int(np.flatnonzero(steps != want)[0]) + 1
        raise SeriesError(f"dates must be {want} day(s) apart; gap before {index[where].date()}")
