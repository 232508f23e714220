"""CIDARS moving percentile method: hand-computed cases, calendar alignment and invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import SeriesError, get_method, make_series
from detectors.mpm import detect_mpm, history_ends, type7_percentile

START = "2020-01-01"
DAYS = pd.date_range(START, "2024-03-20", freq="D")


def _index(day: str) -> int:
    return int(DAYS.searchsorted(pd.Timestamp(day)))


def _hand_series(current_total: int) -> tuple[np.ndarray, int]:
    """Daily counts whose 15 historical 7-day sums for 2024-03-01 are exactly 0, 1, ..., 14.

    Each historical window (same calendar date 1-3 years back, shifted -2..+2 weeks) gets
    its value on its first day; the windows tile 35 days a year, so no day is shared. The
    current window (2024-02-24..2024-03-01) sums to ``current_total``.
    """
    counts = np.zeros(len(DAYS))
    for k, anchor in enumerate(["2023-03-01", "2022-03-01", "2021-03-01"]):
        for j, weeks in enumerate(range(-2, 3)):
            end = pd.Timestamp(anchor) + pd.Timedelta(weeks=weeks)
            counts[_index(str((end - pd.Timedelta(days=6)).date()))] = 5 * k + j
    t = _index("2024-03-01")
    base, extra = divmod(current_total, 7)  # spread over the seven days, whole numbers
    counts[t - 6 : t + 1] = [base + (i < extra) for i in range(7)]
    return counts, t


def test_hand_computed_fifteen_windows() -> None:
    counts, t = _hand_series(12)
    result = detect_mpm(make_series(counts, DAYS), at=[t])
    # type 7 on 0..14: h = 14 * 0.8 = 11.2 -> 11 + 0.2 * (12 - 11)
    assert result.upperbound[t] == pytest.approx(11.2, abs=1e-12)
    assert result.expected[t] == pytest.approx(7.0, abs=1e-12)
    assert result.score[t] == pytest.approx(12.0, abs=1e-12)
    assert result.alarm[t]
    assert result.extras["n_history"][t] == 15
    assert np.isnan(result.p_value[t])
    assert result.params == {"percentile": 80.0, "years": 3}


@pytest.mark.parametrize(
    ("percentile", "threshold"), [(0.0, 0.0), (50.0, 7.0), (75.0, 10.5), (100.0, 14.0)]
)
def test_hand_computed_percentiles(percentile: float, threshold: float) -> None:
    counts, t = _hand_series(11)
    result = detect_mpm(make_series(counts, DAYS), at=[t], percentile=percentile)
    assert result.upperbound[t] == pytest.approx(threshold, abs=1e-12)
    assert result.alarm[t] == (threshold < 11.0)


def test_no_alarm_at_or_below_threshold() -> None:
    counts, t = _hand_series(11)
    assert not detect_mpm(make_series(counts, DAYS), at=[t]).alarm[t]  # 11 < 11.2
    counts, t = _hand_series(14)
    assert not detect_mpm(make_series(counts, DAYS), at=[t], percentile=100).alarm[t]  # 14 = 14


def test_history_aligns_by_calendar_date_across_leap_day() -> None:
    series = make_series(np.zeros(len(DAYS)), DAYS)
    t = _index("2024-02-29")
    ends = history_ends(series, np.array([t]), 3)[0]
    want = [t]
    for anchor in ["2023-02-28", "2022-02-28", "2021-02-28"]:  # 29 Feb -> 28 Feb
        want += [_index(anchor) + 7 * w for w in range(-2, 3)]
    assert ends.tolist() == want
    t = _index("2024-03-01")  # 366 days after 2023-03-01: the leap day lies between
    assert history_ends(series, np.array([t]), 1)[0, 3] == _index("2023-03-01")


def test_weekly_series_uses_52_weeks_by_position() -> None:
    counts = np.zeros(200)
    t = 180
    for k in range(1, 4):
        for j, w in enumerate(range(-2, 3)):
            counts[t - 52 * k + w] = 5 * (k - 1) + j
    counts[t] = 12.0
    series = make_series(counts, freq="week", start="2015-01-05")
    result = detect_mpm(series)
    assert result.upperbound[t] == pytest.approx(11.2)
    assert result.expected[t] == pytest.approx(7.0)
    assert result.score[t] == 12.0 and result.alarm[t]
    # the first point with three years and two weeks of history: 3 * 52 + 2
    assert int(np.argmax(result.computed)) == 158


def test_first_computed_point_needs_three_years_and_twenty_days() -> None:
    series = make_series(np.ones(len(DAYS)), DAYS)
    result = detect_mpm(series)
    first = DAYS[int(np.argmax(result.computed))]
    # the oldest window starts 3 years + 14 + 6 days back: 2020-01-01 + 20 days + 3 years
    assert first == pd.Timestamp("2023-01-21")
    assert result.computed[_index("2023-01-21") :].all()


def test_missing_windows_are_left_out() -> None:
    counts, t = _hand_series(12)
    counts[_index("2021-02-10")] = np.nan  # inside the 2021 window shifted -2 weeks (value 10)
    result = detect_mpm(make_series(counts, DAYS), at=[t])
    assert result.extras["n_history"][t] == 14
    expected = np.percentile([v for v in range(15) if v != 10], 80)
    assert result.upperbound[t] == pytest.approx(expected)
    counts[t - 2] = np.nan  # current window incomplete: no score, no alarm
    result = detect_mpm(make_series(counts, DAYS), at=[t])
    assert result.computed[t] and np.isnan(result.score[t]) and not result.alarm[t]


def test_type7_matches_numpy_linear() -> None:
    rng = np.random.default_rng(7)
    values = rng.poisson(4.0, size=(50, 6, 15)).astype(float)
    for q in (0, 12.5, 50, 80, 95, 100):
        assert np.allclose(type7_percentile(values, q), np.percentile(values, q, axis=-1))
    values[values > 6] = np.nan
    values[0, 0] = np.nan
    got = type7_percentile(values, 80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        want = np.nanpercentile(values, 80, axis=-1)
    assert np.allclose(got, want, equal_nan=True)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"percentile": -1.0}, "percentile"),
        ({"percentile": 100.5}, "percentile"),
        ({"years": 2}, "years"),
        ({"years": 6}, "years"),
    ],
)
def test_bad_parameters(params: dict[str, float], name: str) -> None:
    series = make_series(np.ones(1200))
    with pytest.raises(SeriesError, match=name):
        detect_mpm(series, **params)


def test_bad_parameters_from_command_line_strings() -> None:
    method = get_method("mpm")
    series = make_series(np.ones(1200))
    with pytest.raises(SeriesError, match="years"):
        method.run(series, {"years": "2.5"})
    result = method.run(series, {"percentile": "50", "years": "4"})
    assert result.params == {"percentile": 50.0, "years": 4}
    assert method.sparse


# --- properties ------------------------------------------------------------------------------


def _random_series(
    seed: int, n_series: int, weekly: bool, n_times: int | None = None
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    length = n_times or (200 if weekly else 1130)
    level = rng.gamma(1.0, 4.0, size=(n_series, 1))
    return rng.poisson(level, size=(n_series, length)).astype(float)


def _make(counts: np.ndarray, weekly: bool) -> object:
    return make_series(counts, freq="week" if weekly else "day", start="2019-12-30")


@settings(max_examples=30, deadline=None)
@given(
    value=st.floats(0, 1e4, allow_nan=False) | st.integers(0, 50).map(float),
    weekly=st.booleans(),
    percentile=st.floats(0, 100),
    years=st.integers(3, 5),
)
def test_constant_series_never_alarms(
    value: float, weekly: bool, percentile: float, years: int
) -> None:
    length = 300 if weekly else 5 * 366 + 30
    result = detect_mpm(_make(np.full(length, value), weekly), percentile=percentile, years=years)
    assert result.computed.any()
    assert not result.alarm.any()
    assert np.all(result.upperbound[result.computed] == result.score[result.computed])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), weekly=st.booleans(), percentile=st.floats(0, 100))
def test_alarm_iff_score_exceeds_upperbound(seed: int, weekly: bool, percentile: float) -> None:
    result = detect_mpm(_make(_random_series(seed, 3, weekly), weekly), percentile=percentile)
    c = result.computed
    assert c.any()
    assert np.array_equal(result.alarm[c], result.score[c] > result.upperbound[c])
    assert not result.alarm[~c].any()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), weekly=st.booleans())
def test_two_dimensional_equals_one_at_a_time(seed: int, weekly: bool) -> None:
    counts = _random_series(seed, 4, weekly)
    counts[1] *= 37.3  # fractional, large: sums are rounded differently than the others
    counts[2, ::11] = np.nan
    whole = detect_mpm(_make(counts, weekly))
    for i, row in enumerate(counts):
        one = detect_mpm(_make(row, weekly))
        for name in ("expected", "upperbound", "score", "alarm", "computed"):
            assert np.array_equal(getattr(whole, name)[i], getattr(one, name), equal_nan=True), name


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), weekly=st.booleans(), back=st.integers(0, 30))
def test_single_point_equals_full_and_ignores_the_future(
    seed: int, weekly: bool, back: int
) -> None:
    counts = _random_series(seed, 2, weekly)
    t = counts.shape[1] - 1 - back
    full = detect_mpm(_make(counts, weekly))
    single = detect_mpm(_make(counts, weekly), at=[t])
    changed = counts.copy()
    changed[:, t + 1 :] = np.random.default_rng(seed + 1).poisson(50.0, changed[:, t + 1 :].shape)
    future = detect_mpm(_make(changed, weekly), at=slice(0, t + 1))
    for name in ("expected", "upperbound", "score", "alarm", "computed"):
        assert np.array_equal(
            getattr(full, name)[:, t], getattr(single, name)[:, t], equal_nan=True
        )
        a, b = getattr(full, name)[:, : t + 1], getattr(future, name)[:, : t + 1]
        assert np.array_equal(a, b, equal_nan=True), name
    assert not single.computed[:, :t].any()
