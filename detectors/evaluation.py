"""Backtesting detectors: simulated baselines, injected outbreaks and detection scores.

Pure and vectorised (no I/O). The harness in :mod:`sentinel.evaluating` strings these
together: baselines (simulated here, or the warehouse's own history) → :func:`inject_outbreaks`
→ any registered method → :func:`score_detection`. Every random draw comes from a
``numpy.random.Generator`` the caller passes, so a seed reproduces a run exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import i0, ndtr, ndtri

from detectors.series import SeriesError

OutbreakShape = Literal["flat", "linear", "lognormal", "spike"]
SizeUnit = Literal["sd", "cases"]

# Monday … Sunday visit multipliers of a Chinese outpatient/emergency mix: busiest on
# Monday, quieter at the weekend (normalised to mean 1 before use).
WEEKLY_PATTERN: tuple[float, ...] = (1.25, 1.05, 1.0, 1.0, 0.95, 0.85, 0.9)

# Sartwell's incubation-period model: a log-normal with log-sd 0.5 (as in Noufaily et al.
# 2013's simulations); the outbreak window covers it up to its 99th percentile.
SARTWELL_LOG_SD = 0.5
SARTWELL_COVERAGE = 0.99

OUTBREAK_COLUMNS = ("series", "start", "end", "cases", "expected_cases", "sd")


@dataclass(frozen=True, eq=False)
class Baselines:
    """Simulated counts with the model's mean and standard deviation at every point.

    Attributes
    ----------
    counts : ndarray of float64, shape (n_series, n_days)
    expected : ndarray of float64, shape (n_series, n_days)
        Mean μ of the negative binomial at each point.
    sd : ndarray of float64, shape (n_series, n_days)
        Its standard deviation √(μ + μ²/θ): the unit of outbreak sizes.
    dates : DatetimeIndex
    """

    counts: NDArray[np.float64]
    expected: NDArray[np.float64]
    sd: NDArray[np.float64]
    dates: pd.DatetimeIndex


class Injection(NamedTuple):
    """Counts with outbreaks added, one row per outbreak, and where the outbreaks are."""

    counts: NDArray[np.float64]
    outbreaks: pd.DataFrame
    """Columns ``series, start, end`` (time indices, ``end`` included), ``cases`` (cases
    actually added), ``expected_cases`` (the size asked for) and ``sd`` (the size unit)."""
    truth: NDArray[np.bool_]
    """True on the days of an outbreak window, shape (n_series, n_days)."""


@dataclass(frozen=True)
class DetectionScore:
    """How a detector did against known outbreaks (see :func:`score_detection`)."""

    sensitivity: float
    false_alarms_per_100: float
    median_delay_days: float
    ppv: float
    outbreaks: int
    detected: int
    alarms: int
    true_alarms: int
    false_alarms: int
    series_days: int
    background_days: int

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (one row of the evaluation table)."""
        return asdict(self)


def simulate_baselines(
    n_series: int,
    n_days: int,
    rng: np.random.Generator,
    *,
    mean: ArrayLike | None = None,
    seasonality: float = 0.3,
    weekly: tuple[float, ...] = WEEKLY_PATTERN,
    dispersion: float = 5.0,
    start: str = "2022-01-03",
    peak_day: int = 15,
) -> Baselines:
    """Simulate daily counts of street × syndrome series without outbreaks.

    Parameters
    ----------
    n_series, n_days : int
        Shape of the counts.
    rng : numpy.random.Generator
        Source of every random draw.
    mean : float or array_like of n_series floats, optional
        Average daily count of each series over a year. Default: drawn log-uniformly
        between 0.3 and 20, the range of a street's daily counts of one syndrome.
    seasonality : float
        Amplitude ``a`` of the annual cycle on the log scale (0: none).
    weekly : tuple of 7 floats
        Monday … Sunday multipliers (normalised to mean 1).
    dispersion : float
        Negative binomial size θ; ``inf`` gives Poisson counts.
    start : str
        Date of the first day.
    peak_day : int
        Day of the year (1 = 1 January) the seasonal cycle peaks (winter respiratory
        season by default).

    Returns
    -------
    Baselines

    Notes
    -----
    For series :math:`s` and day :math:`t` with day of year :math:`d_t` and weekday
    :math:`w_t`,

    .. math::

        \\mu_{st} = m_s \\, \\frac{\\exp\\{a \\cos(2\\pi (d_t - d_0)/365.25)\\}}{I_0(a)}
        \\, \\frac{c_{w_t}}{\\bar c}, \\qquad
        y_{st} \\sim \\mathrm{NegBin}(\\mu_{st}, \\theta), \\quad
        \\mathrm{sd}_{st} = \\sqrt{\\mu_{st} + \\mu_{st}^2/\\theta},

    where :math:`I_0` is the modified Bessel function (the yearly mean of
    :math:`e^{a\\cos}`), so :math:`m_s` is the series' yearly mean.

    References
    ----------
    Noufaily A, Enki DG, Farrington P, et al. An improved algorithm for outbreak detection
    in multiple surveillance systems. Stat Med 2013;32:1206–22 (negative binomial baselines
    with trend, seasonality and dispersion). R ``surveillance``: ``sim.seasonalNoise``.
    """
    if n_series < 1 or n_days < 1:
        raise SeriesError(f"n_series and n_days must be positive, got {n_series} and {n_days}")
    if len(weekly) != 7 or min(weekly) <= 0:
        raise SeriesError("weekly must hold 7 positive multipliers (Monday … Sunday)")
    if not dispersion > 0:
        raise SeriesError(f"dispersion must be positive, got {dispersion}")
    if mean is None:
        means = np.exp(rng.uniform(np.log(0.3), np.log(20.0), size=n_series))
    else:
        try:
            means = np.broadcast_to(np.asarray(mean, dtype=np.float64), (n_series,)).copy()
        except ValueError:
            raise SeriesError(f"mean must be one number or {n_series} numbers") from None
        if not (np.isfinite(means) & (means > 0)).all():
            raise SeriesError("mean must be positive and finite")
    dates = pd.date_range(start, periods=n_days, freq="D")
    phase = 2 * np.pi * (dates.day_of_year.to_numpy() - peak_day) / 365.25
    season = np.exp(seasonality * np.cos(phase)) / i0(seasonality)
    week = np.asarray(weekly, dtype=np.float64)
    week = week / week.mean()
    expected = means[:, None] * (season * week[dates.day_of_week.to_numpy()])[None, :]
    if np.isinf(dispersion):
        counts = rng.poisson(expected)
        sd = np.sqrt(expected)
    else:
        counts = rng.negative_binomial(dispersion, dispersion / (dispersion + expected))
        sd = np.sqrt(expected + expected**2 / dispersion)
    return Baselines(counts.astype(np.float64), expected, sd, dates)


def outbreak_profile(shape: OutbreakShape, duration: int) -> NDArray[np.float64]:
    """Share of an outbreak's cases falling on each of its days (sums to 1).

    Parameters
    ----------
    shape : {"flat", "linear", "lognormal", "spike"}
        ``flat``: equal shares; ``linear``: rising in proportion to the day (1, 2, …);
        ``lognormal``: an epidemic curve of a point source (Sartwell); ``spike``: every
        case on the first day (the window is one day whatever ``duration``).
    duration : int
        Days of the outbreak window.

    Notes
    -----
    For ``lognormal`` the window's days split :math:`[0, q]`, :math:`q` the 99th
    percentile of a log-normal with log-mean 0 and log-sd σ = 0.5, into ``duration``
    equal parts; day :math:`j` gets :math:`F(q(j+1)/D) - F(qj/D)` with
    :math:`F(x) = \\Phi(\\ln x / σ)`, renormalised to sum to 1.

    References
    ----------
    Sartwell PE. The distribution of incubation periods of infectious disease. Am J Hyg
    1950;51:310–8. Noufaily et al. 2013 (log-normal outbreak curves, σ = 0.5).
    """
    if shape not in _PROFILES:
        raise SeriesError(f"outbreak shape must be one of {', '.join(_PROFILES)}; got {shape!r}")
    if duration < 1:
        raise SeriesError(f"outbreak duration must be at least 1 day, got {duration}")
    weights = _PROFILES[shape](duration)
    return weights / weights.sum()


def _lognormal_profile(duration: int) -> NDArray[np.float64]:
    q = np.exp(SARTWELL_LOG_SD * float(ndtri(SARTWELL_COVERAGE)))
    edges = np.linspace(0.0, q, duration + 1)
    with np.errstate(divide="ignore"):
        cdf = ndtr(np.log(edges) / SARTWELL_LOG_SD)
    return np.diff(cdf)


_PROFILES: dict[str, Callable[[int], NDArray[np.float64]]] = {
    "flat": lambda d: np.ones(d, dtype=np.float64),
    "linear": lambda d: np.arange(1.0, d + 1.0),
    "lognormal": _lognormal_profile,
    "spike": lambda d: np.ones(1),
}


def inject_outbreaks(
    counts: ArrayLike,
    rng: np.random.Generator,
    *,
    size: float = 3.0,
    shape: OutbreakShape = "lognormal",
    duration: int = 7,
    per_series: int = 1,
    start_after: int = 0,
    size_unit: SizeUnit = "sd",
    sd: ArrayLike | None = None,
    min_gap: int = 14,
    sd_window: int = 28,
) -> Injection:
    """Add outbreak cases to every series at random, non-overlapping times.

    Parameters
    ----------
    counts : array_like, shape (n_series, n_days)
        Baseline counts (NaN = missing; no cases are added on missing days).
    rng : numpy.random.Generator
        Source of every random draw (start days, sizes, allocation of cases to days).
    size : float
        Outbreak size: multiples ``k`` of the series' standard deviation at the start
        (``size_unit="sd"``), or a number of cases (``size_unit="cases"``).
    shape : {"flat", "linear", "lognormal", "spike"}
        Epidemic curve (see :func:`outbreak_profile`).
    duration : int
        Days of each outbreak window (1 for ``spike``).
    per_series : int
        Outbreaks in each series.
    start_after : int
        First time index an outbreak may occupy (keep outbreaks out of the burn-in).
    size_unit : {"sd", "cases"}
        Unit of ``size``.
    sd : array_like, optional
        Standard deviation of the baseline at each point (e.g. :attr:`Baselines.sd`).
        Default: estimated from ``counts`` over ``sd_window`` days either side of the start.
    min_gap : int
        Days at least between the end of one outbreak and the start of the next.
    sd_window : int
        Half-width of the window of the estimated standard deviation.

    Returns
    -------
    Injection
        Counts plus outbreak cases, the outbreak table and the truth mask.

    Raises
    ------
    SeriesError
        Bad arguments, or outbreaks that do not fit after ``start_after``.

    Notes
    -----
    Outbreak :math:`i` of series :math:`s` starting on day :math:`t_i` has
    :math:`N_i = \\max(1, \\mathrm{Poisson}(k\\,\\mathrm{sd}_{s t_i}))` cases
    (``size_unit="sd"``) or :math:`N_i = \\mathrm{round}(k)` cases (``"cases"``), allocated
    to its days by a multinomial draw with the shape's profile :math:`p_j`:
    :math:`(n_{i0}, …, n_{i,D-1}) \\sim \\mathrm{Mult}(N_i, p)`. At least one case keeps every
    outbreak a real event even in series whose standard deviation is 0. The start days
    are uniform over all placements that fit in ``[start_after, n_days)`` with windows at
    least ``min_gap`` days apart. The estimated sd is the sample standard deviation of the
    baseline counts in :math:`[t_i - w, t_i + w]`.

    References
    ----------
    Noufaily et al. 2013, Stat Med 32:1206–22 (outbreak size Poisson with mean k × sd of
    the baseline, log-normal curve). R ``surveillance``: ``sim.pointSource``.
    """
    base = np.array(counts, dtype=np.float64, copy=True)
    if base.ndim != 2:
        raise SeriesError(f"counts must be 2-D (series × days), got {base.ndim} dimensions")
    if size_unit not in ("sd", "cases"):
        raise SeriesError(f"size_unit must be sd or cases; got {size_unit!r}")
    if not (np.isfinite(size) and size > 0):
        raise SeriesError(f"outbreak size must be positive, got {size}")
    if per_series < 0 or min_gap < 0 or start_after < 0 or sd_window < 1:
        raise SeriesError("per_series, min_gap and start_after must not be negative")
    profile = outbreak_profile(shape, duration)
    width = len(profile)
    n_series, n_days = base.shape
    starts = _place(rng, n_series, n_days, per_series, width, start_after, min_gap)
    rows = np.repeat(np.arange(n_series), per_series)
    first = starts.ravel()
    if sd is None:
        unit = _window_sd(base, rows, first, sd_window)
    else:
        try:
            sd_all = np.broadcast_to(np.asarray(sd, dtype=np.float64), base.shape)
        except ValueError:
            raise SeriesError("sd does not match the shape of the counts") from None
        unit = sd_all[rows, first]
    unit = np.nan_to_num(unit, nan=0.0)
    if size_unit == "sd":
        wanted = size * unit
        totals = np.maximum(1, rng.poisson(wanted))
    else:
        wanted = np.full(len(first), float(size))
        totals = np.full(len(first), max(1, round(size)), dtype=np.int64)
    added = rng.multinomial(totals, profile) if len(first) else np.zeros((0, width), np.int64)
    cols = first[:, None] + np.arange(width)[None, :]
    missing = np.isnan(base[rows[:, None], cols])
    added = np.where(missing, 0, added)
    base[rows[:, None], cols] += added
    truth = np.zeros(base.shape, dtype=bool)
    truth[rows[:, None], cols] = True
    outbreaks = pd.DataFrame(
        {
            "series": rows.astype(np.int64),
            "start": first.astype(np.int64),
            "end": (first + width - 1).astype(np.int64),
            "cases": added.sum(axis=1).astype(np.int64),
            "expected_cases": wanted.astype(np.float64),
            "sd": unit.astype(np.float64),
        },
        columns=list(OUTBREAK_COLUMNS),
    )
    return Injection(base, outbreaks, truth)


def _place(
    rng: np.random.Generator,
    n_series: int,
    n_days: int,
    k: int,
    width: int,
    start_after: int,
    min_gap: int,
) -> NDArray[np.int64]:
    """Start days (n_series × k, sorted) uniform over non-overlapping placements."""
    if k == 0:
        return np.zeros((n_series, 0), dtype=np.int64)
    room = n_days - start_after
    free = room - k * width - (k - 1) * min_gap
    if free < 0:
        raise SeriesError(
            f"{k} outbreak(s) of {width} day(s) with {min_gap}-day gaps do not fit in the "
            f"{max(room, 0)} day(s) from index {start_after}"
        )
    # k distinct sorted picks among free + k slots, minus their rank, are a uniform
    # non-decreasing k-tuple in [0, free]; adding i × (width + gap) spaces the windows.
    keys = rng.random((n_series, free + k))
    picks = np.sort(np.argsort(keys, axis=1)[:, :k], axis=1)
    rank = np.arange(k)
    return (start_after + picks - rank + rank * (width + min_gap)).astype(np.int64)


def _window_sd(
    counts: NDArray[np.float64], rows: NDArray[np.intp], at: NDArray[np.int64], half: int
) -> NDArray[np.float64]:
    """Sample sd of the finite counts in [at - half, at + half] of each row (NaN if < 2)."""
    finite = np.isfinite(counts)
    x = np.where(finite, counts, 0.0)
    pad = np.zeros((counts.shape[0], 1))
    s1 = np.concatenate([pad, np.cumsum(x, axis=1)], axis=1)
    s2 = np.concatenate([pad, np.cumsum(x * x, axis=1)], axis=1)
    nn = np.concatenate([pad, np.cumsum(finite, axis=1)], axis=1)
    lo = np.clip(at - half, 0, counts.shape[1])
    hi = np.clip(at + half + 1, 0, counts.shape[1])
    n = nn[rows, hi] - nn[rows, lo]
    total = s1[rows, hi] - s1[rows, lo]
    squares = s2[rows, hi] - s2[rows, lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (squares - total * total / n) / (n - 1)
    return np.where(n >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)


def score_detection(
    alarm: ArrayLike,
    computed: ArrayLike,
    outbreaks: pd.DataFrame,
    *,
    n_days_after: int = 0,
) -> DetectionScore:
    """Score alarms against known outbreak windows.

    Parameters
    ----------
    alarm, computed : array_like of bool, shape (n_series, n_days)
        A detector's alarms and the points it evaluated (:class:`DetectorResult`'s
        ``alarm`` and ``computed``, restricted to the evaluation period).
    outbreaks : DataFrame
        Columns ``series``, ``start``, ``end`` (time indices, ``end`` included), as from
        :func:`inject_outbreaks`.
    n_days_after : int
        Grace days after each outbreak window: alarms there count neither as true nor as
        false (methods with memory, like CUSUM, keep alarming just after an outbreak).

    Returns
    -------
    DetectionScore

    Notes
    -----
    Let :math:`A` be the alarms at computed points, :math:`W` the outbreak windows and
    :math:`G` the grace days after them (outside every window); the background
    :math:`B = \\text{computed} \\setminus (W \\cup G)`. Only outbreaks with at least one
    computed day count (:math:`n_{ob}`); one is *detected* if an alarm falls in
    :math:`[\\text{start}, \\text{end}]`.

    - sensitivity :math:`= n_{detected} / n_{ob}` (NaN without outbreaks);
    - false alarms per 100 series-days :math:`= 100\\,|A \\cap B| / |B|` (NaN if
      :math:`B` is empty);
    - median delay: median over detected outbreaks of (first alarm in the window −
      start), in days (0 = alarm on the first day; NaN if none detected);
    - PPV, alarm-level :math:`= |A \\cap W| / (|A \\cap W| + |A \\cap B|)`: the share of
      alarm series-days that fall in an outbreak (NaN without alarms). Each alarm is a
      street-syndrome-day an epidemiologist would look at, so this is the share of
      looks that find an outbreak.

    ``alarms`` counts :math:`|A|` (grace days included), ``series_days`` every computed
    point and ``background_days`` :math:`|B|`.

    References
    ----------
    Noufaily et al. 2013 (probability of detection, false positive rate); Bédubourg G,
    Le Strat Y. Evaluation and comparison of statistical methods for early temporal
    detection of outbreaks. PLoS ONE 2017;12:e0181227 (sensitivity, specificity, PPV,
    timeliness). R ``surveillance``: ``algo.quality`` (day-level counterparts).
    """
    computed_arr = np.atleast_2d(np.asarray(computed, dtype=bool))
    alarm_arr = np.atleast_2d(np.asarray(alarm, dtype=bool))
    if alarm_arr.shape != computed_arr.shape:
        raise SeriesError(
            f"alarm {alarm_arr.shape} and computed {computed_arr.shape} differ in shape"
        )
    hits = alarm_arr & computed_arr
    if n_days_after < 0:
        raise SeriesError(f"n_days_after must not be negative, got {n_days_after}")
    n_series, n_days = hits.shape
    rows = outbreaks["series"].to_numpy(dtype=np.intp)
    start = outbreaks["start"].to_numpy(dtype=np.intp)
    end = outbreaks["end"].to_numpy(dtype=np.intp)
    if len(rows) and (
        rows.min() < 0 or rows.max() >= n_series or start.min() < 0 or end.max() >= n_days
    ):
        raise SeriesError("outbreaks lie outside the alarm array")
    window = _cover(hits.shape, rows, start, end)
    grace = _cover(hits.shape, rows, end + 1, np.minimum(end + n_days_after, n_days - 1))
    grace &= ~window
    background = computed_arr & ~window & ~grace

    def between(cumulative: NDArray[np.int64]) -> NDArray[np.int64]:
        return cumulative[rows, end + 1] - cumulative[rows, start]

    pad = np.zeros((n_series, 1), dtype=np.int64)
    evaluable = between(np.concatenate([pad, np.cumsum(computed_arr, axis=1)], axis=1)) > 0
    # Index of the next alarm at or after each point (n_days if none): the first alarm of
    # an outbreak is read at its start.
    marks = np.where(hits, np.arange(n_days)[None, :], n_days)
    next_alarm = np.minimum.accumulate(marks[:, ::-1], axis=1)[:, ::-1]
    first = next_alarm[rows, start]
    detected = evaluable & (first <= end)
    true_alarms = int((hits & window).sum())
    false_alarms = int((hits & background).sum())
    n_background = int(background.sum())
    n_outbreaks = int(evaluable.sum())
    delays = (first - start)[detected]
    return DetectionScore(
        sensitivity=float(detected.sum()) / n_outbreaks if n_outbreaks else float("nan"),
        false_alarms_per_100=100.0 * false_alarms / n_background if n_background else float("nan"),
        median_delay_days=float(np.median(delays)) if len(delays) else float("nan"),
        ppv=true_alarms / (true_alarms + false_alarms)
        if true_alarms + false_alarms
        else float("nan"),
        outbreaks=n_outbreaks,
        detected=int(detected.sum()),
        alarms=int(hits.sum()),
        true_alarms=true_alarms,
        false_alarms=false_alarms,
        series_days=int(computed_arr.sum()),
        background_days=n_background,
    )


def _cover(
    shape: tuple[int, int],
    rows: NDArray[np.intp],
    start: NDArray[np.intp],
    end: NDArray[np.intp],
) -> NDArray[np.bool_]:
    """Mask of the days in [start, end] of each row (empty where end < start)."""
    keep = end >= start
    diff = np.zeros((shape[0], shape[1] + 1), dtype=np.int64)
    np.add.at(diff, (rows[keep], start[keep]), 1)
    np.add.at(diff, (rows[keep], end[keep] + 1), -1)
    return np.cumsum(diff, axis=1)[:, :-1] > 0
