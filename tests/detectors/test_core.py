"""The count-series container, the result builder and the method registry."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pytest

from detectors.registry import METHODS, coerce, get_method, register
from detectors.result import build_result, evaluation_points
from detectors.series import CountSeries, SeriesError, make_series


def test_one_series_is_kept_one_dimensional() -> None:
    s = make_series([1, 2, 3])
    assert s.one_dimensional and s.counts.shape == (1, 3)
    assert s.freq == "day" and s.periods_per_year == 365
    assert s.shaped(s.counts).shape == (3,)


def test_weekly_dates_are_recognised() -> None:
    dates = pd.date_range("2024-01-01", periods=4, freq="7D")
    s = make_series([[1, 2, 3, 4], [0, 0, 0, 1]], dates)
    assert s.freq == "week" and s.periods_per_year == 52 and s.n_series == 2


@pytest.mark.parametrize(
    ("counts", "dates", "message"),
    [
        ([1, -1, 2], None, "negative"),
        ([1, np.inf, 2], None, "infinite"),
        ([1, 2], ["2024-01-01"], "1 dates for 2"),
        ([1, 2, 3], ["2024-01-01", "2024-01-03", "2024-01-02"], "unsorted"),
        ([1, 2, 3], ["2024-01-01", "2024-01-02", "2024-01-02"], "duplicate"),
        ([1, 2, 3], ["2024-01-01", "2024-01-02", "2024-01-04"], "gap before 2024-01-04"),
        ([[[1]]], None, "1-D or 2-D"),
        (np.zeros((2, 0)), None, "empty"),
    ],
)
def test_bad_series_are_refused_with_the_reason(counts, dates, message) -> None:
    with pytest.raises(SeriesError, match=message):
        make_series(counts, dates)


def test_counts_are_read_only() -> None:
    s = make_series([1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        s.counts[0, 0] = 5


def test_population_must_match_and_be_positive() -> None:
    assert make_series([[1, 2]], population=1000).population is not None
    with pytest.raises(SeriesError, match="population"):
        make_series([[1, 2]], population=[1, 2, 3])
    with pytest.raises(SeriesError, match="positive"):
        make_series([[1, 2]], population=0)


def test_build_result_blanks_points_not_computed() -> None:
    s = make_series([[1, 2, 3], [4, 5, 6]])
    computed = np.array([[False, True, True], [False, False, True]])
    r = build_result(
        s,
        "x",
        {"a": 1},
        expected=np.ones((2, 3)),
        upperbound=np.full((2, 3), 2.5),
        alarm=s.counts > 2.5,
        computed=computed,
    )
    assert np.isnan(r.expected[0, 0]) and r.expected[0, 1] == 1
    assert r.alarm.tolist() == [[False, False, True], [False, False, True]]
    assert np.isnan(r.p_value).all()
    assert r.params["a"] == 1
    with pytest.raises(TypeError):
        r.params["a"] = 2  # type: ignore[index]


def test_evaluation_points_respect_history_and_selection() -> None:
    s = make_series(np.zeros(10))
    assert evaluation_points(s, None, 7).tolist() == [7, 8, 9]
    assert evaluation_points(s, [2, 9, 9], 7).tolist() == [9]
    assert evaluation_points(s, slice(-1, None), 0).tolist() == [9]


def test_registry_reads_parameters_from_the_signature() -> None:
    @register("test_core_dummy")
    def detect_dummy(
        series: CountSeries,
        *,
        at: object | None = None,
        k: int = 3,
        alpha: float = 0.05,
        mode: Literal["a", "b"] = "a",
        limit: tuple[int, int] = (5, 4),
        cap: float | None = None,
        flag: bool = True,
    ):
        """A dummy method for the registry test."""
        return build_result(
            series,
            "test_core_dummy",
            {"k": k, "alpha": alpha, "mode": mode, "limit": limit, "cap": cap, "flag": flag},
            expected=series.counts,
            upperbound=series.counts,
            alarm=np.zeros(series.counts.shape, bool),
            computed=np.ones(series.counts.shape, bool),
        )

    try:
        m = get_method("test_core_dummy")
        assert m.defaults == {
            "k": 3,
            "alpha": 0.05,
            "mode": "a",
            "limit": (5, 4),
            "cap": None,
            "flag": True,
        }
        assert m.summary == "A dummy method for the registry test."
        resolved = m.resolve(
            {"k": "7", "alpha": "0.01", "mode": "b", "limit": "3,2", "cap": "none", "flag": "no"}
        )
        assert resolved == {
            "k": 7,
            "alpha": 0.01,
            "mode": "b",
            "limit": (3, 2),
            "cap": None,
            "flag": False,
        }
        assert m.resolve({"cap": "2.5"}) == {"cap": 2.5}
        with pytest.raises(SeriesError, match="no parameter 'kk'"):
            m.resolve({"kk": "1"})
        with pytest.raises(SeriesError, match="mode must be one of a, b"):
            m.resolve({"mode": "c"})
        with pytest.raises(SeriesError, match="k must be a whole number"):
            m.resolve({"k": "1.5"})
        with pytest.raises(SeriesError, match="limit takes 2"):
            m.resolve({"limit": "1"})
        r = m.run(make_series([1, 2]), {"k": "4"})
        assert r.params["k"] == 4
    finally:
        METHODS.pop("test_core_dummy", None)


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(SeriesError, match="unknown method 'nope'"):
        get_method("nope")


def test_coerce_rejects_non_numbers() -> None:
    with pytest.raises(SeriesError, match="alpha must be a number"):
        coerce("abc", float, "alpha")
    with pytest.raises(SeriesError, match="true or false"):
        coerce("maybe", bool, "flag")
