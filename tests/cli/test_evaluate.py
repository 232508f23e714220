"""The backtesting harness behind `sentinel evaluate` (called directly until it is wired)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.registry import METHODS, register
from detectors.result import DetectorResult, build_result, evaluation_points
from detectors.series import CountSeries
from reports.lifecycle import update_alert
from sentinel.cli import main
from sentinel.errors import UsageError
from sentinel.evaluating import (
    TABLE_COLUMNS,
    parse_params,
    pivot_syndrome_daily,
    print_evaluation,
    run_evaluation,
)
from sentinel.settings import Settings
from warehouse.files import partition_path
from warehouse.schema import file_schema
from warehouse.store import Warehouse

THRESHOLD = "_test_evaluate_rolling_threshold"
"""A tiny method registered for these tests only (and removed after each)."""


def detect_rolling_threshold(
    series: CountSeries, *, at: object = None, window: int = 7, k: float = 3.0
) -> DetectorResult:
    """Alarm when a count exceeds the mean of the previous ``window`` days + k sd (sd ≥ 0.5)."""
    x = series.counts
    expected = np.full(x.shape, np.nan)
    upper = np.full(x.shape, np.nan)
    for t in evaluation_points(series, at, window):
        past = x[:, t - window : t]
        expected[:, t] = past.mean(axis=1)
        upper[:, t] = expected[:, t] + k * np.maximum(past.std(axis=1, ddof=1), 0.5)
    computed = np.isfinite(upper)
    return build_result(
        series,
        THRESHOLD,
        {"window": window, "k": k},
        expected=expected,
        upperbound=upper,
        alarm=computed & (x > np.where(computed, upper, np.inf)),
        computed=computed,
    )


@pytest.fixture
def threshold_method() -> Iterator[str]:
    register(THRESHOLD)(detect_rolling_threshold)
    try:
        yield THRESHOLD
    finally:
        METHODS.pop(THRESHOLD, None)


SMALL: dict[str, Any] = {"n_series": 40, "days": 200, "evaluate_days": 120, "progress": False}


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_simulated_report(tmp_path: Path, threshold_method: str) -> None:
    out = tmp_path / "report"
    report = run_evaluation(
        _settings(tmp_path),
        methods=[threshold_method],
        params={threshold_method: {"k": "2|3|5"}},
        out_dir=out,
        outbreaks_per_series=2,
        seed=7,
        **SMALL,
    )
    table = report.table
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["setting"].tolist() == ["k=2", "k=3", "k=5"]
    assert table["params"].tolist() == [f"window=7; k={k}" for k in (2.0, 3.0, 5.0)]
    # Scored on the evaluation period only, every point computed, 2 outbreaks per series.
    assert (table["series_days"] == 40 * 120).all() and (table["outbreaks"] == 80).all()
    assert (table["coverage"] == 1.0).all()
    assert (report.outbreaks["start"] >= 80).all() and len(report.outbreaks) == 80
    # A higher threshold raises a subset of the alarms.
    assert table["alarms"].is_monotonic_decreasing
    assert table["false_alarms_per_100"].is_monotonic_decreasing
    assert table["sensitivity"].is_monotonic_decreasing
    assert (table["meets_target"] == (table["false_alarms_per_100"] <= 1.0)).all()
    # The files: CSV round-trips, Markdown has one line per row, PNG is a PNG.
    assert report.csv_path == out / "evaluation.csv"
    again = pd.read_csv(report.csv_path)
    pd.testing.assert_frame_equal(
        again[["sensitivity", "false_alarms_per_100", "ppv"]],
        table[["sensitivity", "false_alarms_per_100", "ppv"]],
    )
    markdown = report.markdown_path.read_text(encoding="utf-8").splitlines()
    assert markdown[2].startswith("| method | setting | sensitivity |")
    assert sum(line.startswith(f"| {threshold_method} |") for line in markdown) == 3
    assert report.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = pd.read_csv(report.outbreaks_path)
    assert written["cases"].sum() == report.outbreaks["cases"].sum()
    assert {"start_date", "end_date"} <= set(written.columns)


def test_methods_short_of_history_show_in_coverage(
    tmp_path: Path, threshold_method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 80 days before the scored 120: a 100-day window computes only the last 100 of them.
    report = run_evaluation(
        _settings(tmp_path),
        methods=[threshold_method],
        params={threshold_method: {"window": "7|100"}},
        out_dir=tmp_path / "out",
        **SMALL,
    )
    assert report.table["coverage"].tolist() == [1.0, round(100 / 120, 4)]
    assert report.table["series_days"].tolist() == [40 * 120, 40 * 100]
    print_evaluation(report)
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "window=100) computed 83% of the scored series-days" in out
    assert "window=7) computed" not in out and "evaluation.png" in out


def test_same_seed_same_report(tmp_path: Path, threshold_method: str) -> None:
    def run(seed: int, name: str) -> pd.DataFrame:
        report = run_evaluation(
            _settings(tmp_path),
            methods=[threshold_method],
            params=None,
            out_dir=tmp_path / name,
            seed=seed,
            **SMALL,
        )
        return report.table.drop(columns="seconds")

    pd.testing.assert_frame_equal(run(3, "a"), run(3, "b"))
    assert not run(3, "c").equals(run(4, "d"))


def test_big_spikes_are_found_on_their_first_day(tmp_path: Path, threshold_method: str) -> None:
    report = run_evaluation(
        _settings(tmp_path),
        methods=[threshold_method],
        params={threshold_method: {"k": "3|1000"}},
        out_dir=tmp_path / "out",
        outbreak_size=200,
        size_unit="cases",
        outbreak_shape="spike",
        **SMALL,
    )
    found, deaf = report.table.to_dict("records")
    assert found["sensitivity"] == 1.0 and found["median_delay_days"] == 0.0
    assert found["ppv"] == pytest.approx(found["detected"] / found["alarms"])
    assert deaf["alarms"] == 0 and deaf["sensitivity"] == 0.0
    assert deaf["false_alarms_per_100"] == 0.0 and np.isnan(deaf["ppv"])


def test_ears_c2_runs_in_the_harness(tmp_path: Path, threshold_method: str) -> None:
    pytest.importorskip("detectors.ears", reason="detectors/ears.py has not landed yet")
    report = run_evaluation(
        _settings(tmp_path),
        methods=["ears_c2", threshold_method],
        out_dir=tmp_path / "out",
        outbreak_size=6,
        **SMALL,
    )
    ears = report.table.iloc[0]
    assert ears["method"] == "ears_c2" and ears["series_days"] == 40 * 120
    assert 0 < ears["sensitivity"] <= 1 and ears["false_alarms_per_100"] < 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ["no_such_method"]}, "unknown method 'no_such_method'"),
        ({"methods": []}, "at least one --method"),
        ({"params": {"__M__": {"nope": "1"}}}, "has no parameter 'nope'"),
        ({"params": {"__M__": {"k": "high"}}}, "k must be a number"),
        ({"params": {"ears_c9": {"k": "1"}}}, "not a chosen --method"),
        ({"days": 100}, "too little history"),
        ({"outbreak_shape": "square"}, "--shape must be one of"),
        ({"baseline": "memory"}, "--baseline must be one of"),
        ({"outbreaks_per_series": 50}, "cannot inject outbreaks"),
    ],
)
def test_bad_input_is_a_usage_error(
    tmp_path: Path, threshold_method: str, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, Any] = {"methods": [threshold_method], **SMALL, **kwargs}
    given = kwargs.get("params")
    if isinstance(given, dict):
        args["params"] = {k.replace("__M__", threshold_method): v for k, v in given.items()}
    with pytest.raises(UsageError, match=message):
        run_evaluation(_settings(tmp_path), out_dir=tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_parse_params() -> None:
    got = parse_params(["ears_c2.alpha=0.01", "farrington_flexible.b=3", "ears_c2.alpha=0.05"])
    assert got == {"ears_c2": {"alpha": "0.01|0.05"}, "farrington_flexible": {"b": "3"}}
    with pytest.raises(UsageError, match=r"METHOD\.KEY=VALUE"):
        parse_params(["alpha=0.01"])


# -- the warehouse baseline --------------------------------------------------------------

STREETS = ("310105001000", "310105002000")
SYNDROMES = ("gi", "respiratory")


def _write_syndrome_daily(root: Path, days: int, skip: int | None = None) -> pd.DatetimeIndex:
    """Write ``days`` daily partitions of syndrome_daily (one day left out if ``skip``)."""
    rng = np.random.default_rng(0)
    dates = pd.date_range("2025-01-01", periods=days, freq="D")
    Warehouse(root)  # the folder and its catalog
    for i, day in enumerate(dates):
        if i == skip:
            continue
        n = len(STREETS) * len(SYNDROMES)
        data = pa.table(
            {
                "street_code": [s for s in STREETS for _ in SYNDROMES],
                "syndrome": list(SYNDROMES) * len(STREETS),
                "count": rng.poisson([1.0, 5.0, 0.3, 8.0]).astype(np.int64),
                "visits": np.full(n, 40, dtype=np.int64),
            }
        )
        path = partition_path(root, "syndrome_daily", day.date())
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data.cast(file_schema("syndrome_daily")), path)
    return dates


def test_warehouse_baseline(tmp_path: Path, threshold_method: str) -> None:
    settings = _settings(tmp_path)
    _write_syndrome_daily(settings.warehouse_dir, 110, skip=10)
    report = run_evaluation(
        settings,
        methods=[threshold_method],
        baseline="warehouse",
        out_dir=tmp_path / "out",
        n_series=10,
        days=1000,
        evaluate_days=60,
        outbreaks_per_series=2,
        progress=False,
    )
    assert (report.n_series, report.n_days, report.evaluated_days) == (4, 110, 60)
    row = report.table.iloc[0]
    assert row["series_days"] == 4 * 60 and row["outbreaks"] == 8
    pairs = set(zip(report.outbreaks["street_code"], report.outbreaks["syndrome"], strict=True))
    assert pairs == {(s, y) for s in STREETS for y in SYNDROMES}
    assert (report.outbreaks["start_date"] >= dt.date(2025, 1, 1) + dt.timedelta(days=50)).all()


def test_warehouse_series_are_sampled_down(tmp_path: Path, threshold_method: str) -> None:
    settings = _settings(tmp_path)
    _write_syndrome_daily(settings.warehouse_dir, 75)
    report = run_evaluation(
        settings,
        methods=[threshold_method],
        baseline="warehouse",
        out_dir=tmp_path / "out",
        n_series=3,
        days=70,
        evaluate_days=40,
        progress=False,
    )
    assert (report.n_series, report.n_days) == (3, 70)
    assert report.outbreaks[["street_code", "syndrome"]].drop_duplicates().shape[0] == 3


def test_warehouse_problems(tmp_path: Path, threshold_method: str) -> None:
    settings = _settings(tmp_path)

    def attempt() -> None:
        run_evaluation(
            settings,
            methods=[threshold_method],
            baseline="warehouse",
            out_dir=tmp_path / "out",
            evaluate_days=30,
            progress=False,
        )

    with pytest.raises(UsageError, match="no warehouse at"):
        attempt()
    Warehouse(settings.warehouse_dir)
    with pytest.raises(UsageError, match="no syndrome_daily rows"):
        attempt()
    _write_syndrome_daily(settings.warehouse_dir, 40)
    with pytest.raises(UsageError, match=r"holds 40 days .*2025-01-01 to 2025-02-09.* at least 58"):
        attempt()


def test_pivot_marks_missing_days() -> None:
    frame = pd.DataFrame(
        {
            "date": [dt.date(2025, 1, 1), dt.date(2025, 1, 1), dt.date(2025, 1, 3)],
            "street_code": ["B", "A", "A"],
            "syndrome": ["gi", "gi", "gi"],
            "count": [4, 1, 2],
            "visits": [9, 9, 9],
        }
    )
    counts, dates, labels = pivot_syndrome_daily(frame)
    assert list(dates.date) == [dt.date(2025, 1, d) for d in (1, 2, 3)]
    assert labels.to_dict("list") == {"street_code": ["A", "B"], "syndrome": ["gi", "gi"]}
    np.testing.assert_array_equal(counts, [[1, np.nan, 2], [4, np.nan, np.nan]])


def _reviewed_alerts(settings: Settings, method: str, *, review: bool = True) -> None:
    """Alerts of ``method`` and ``other``: a 3-day episode, 5 single alerts, reviews.

    ``method``: 3 true outbreaks (one the 3-day episode), 1 false alarm, 1 undetermined,
    1 left new; ``other`` (not evaluated): 1 false alarm. ``review=False``: no reviews.
    """
    day = dt.date(2026, 3, 1)

    def alert(alert_id: str, offset: int, street: str, **fields: Any) -> dict[str, Any]:
        return {
            "alert_id": alert_id,
            "date": day + dt.timedelta(days=offset),
            "syndrome": fields.pop("syndrome", "ili"),
            "street_codes": [street],
            "detector": fields.pop("detector", method),
            "observed": 9.0,
            "severity": "low",
            "status": "new",
            "created_at": dt.datetime(2026, 3, 4, 6),
            "announcement": "ongoing" if fields.get("continues") else "new",
        } | fields

    rows = [
        alert("e1", 0, "s1"),
        alert("e2", 1, "s1", continues="e1"),
        alert("e3", 2, "s1", continues="e2"),
        alert("t2", 2, "s2"),
        alert("t3", 2, "s3", syndrome="gastrointestinal"),
        alert("f1", 2, "s4"),
        alert("u1", 2, "s5"),
        alert("n1", 2, "s6"),
        alert("x1", 2, "s7", detector="other"),
    ]
    warehouse = Warehouse(settings.warehouse_dir)
    frame = pd.DataFrame(rows)
    for date in sorted(set(frame["date"])):
        warehouse.write_alerts(date, frame[frame["date"] == date])
    for alert_id, outcome in [
        ("e2", "true_outbreak"),
        ("t2", "true_outbreak"),
        ("t3", "true_outbreak"),
        ("f1", "false_alarm"),
        ("u1", "undetermined"),
        ("x1", "false_alarm"),
    ]:
        if review:
            update_alert(settings, alert_id, status="closed", outcome=outcome)


def test_real_ppv_from_reviewed_alerts(
    tmp_path: Path, threshold_method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)
    _reviewed_alerts(settings, threshold_method)
    out = tmp_path / "out"
    report = run_evaluation(settings, methods=[threshold_method], out_dir=out, **SMALL)
    assert report.outcomes is not None and report.outcomes_path == out / "outcomes.csv"
    written = pd.read_csv(report.outcomes_path)
    assert set(written["detector"]) == {threshold_method}  # only the evaluated methods
    assert written["syndrome"].tolist() == ["all", "gastrointestinal", "ili"]
    total = written.iloc[0]
    # 8 alerts, the 3-day episode counted once: 6 episodes, 1 still new.
    assert (total["alerts"], total["episodes"], total["open"]) == (8, 6, 1)
    assert (total["true_outbreaks"], total["false_alarms"], total["undetermined"]) == (3, 1, 1)
    assert total["ppv"] == pytest.approx(0.75)
    # Clopper–Pearson for 3 of 4: 1 - p_high^4 = 0.025, 4 p^3 (1 - p) + p^4 = 0.025 at p_low.
    assert total["ppv_high"] == pytest.approx(0.975**0.25)
    low = total["ppv_low"]
    assert 4 * low**3 * (1 - low) + low**4 == pytest.approx(0.025)
    ili = written.iloc[2]
    assert (ili["true_outbreaks"], ili["false_alarms"], ili["ppv"]) == (2, 1, pytest.approx(2 / 3))

    markdown = report.markdown_path.read_text(encoding="utf-8")
    section = markdown.split("## Real positive predictive value (reviewed alerts)")[1]
    assert "| detector | syndrome | alerts | episodes | open |" in section
    assert f"| {threshold_method} | all | 8 | 6 | 1 | 3 | 1 | 1 | 0.750 | {low:.3f} | 0.994 |" in (
        section
    )
    print_evaluation(report)
    printed = " ".join(capsys.readouterr().out.split())
    assert "Real PPV from reviewed alerts" in printed and "0.750" in printed
    assert "outcomes.csv" in printed


def test_no_reviewed_alerts_is_one_line(
    tmp_path: Path, threshold_method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)
    out = tmp_path / "out"
    report = run_evaluation(settings, methods=[threshold_method], out_dir=out, **SMALL)
    assert report.outcomes is not None and report.outcomes.empty
    assert report.outcomes_path is None and not (out / "outcomes.csv").exists()
    assert not settings.warehouse_dir.exists()  # evaluating created no warehouse
    markdown = report.markdown_path.read_text(encoding="utf-8")
    assert markdown.rstrip().endswith(
        "No alerts of these detectors in the warehouse, so no real PPV yet."
    )

    # Alerts, none closed: still one line, and a stale outcomes.csv is removed.
    _reviewed_alerts(settings, threshold_method, review=False)
    (out / "outcomes.csv").write_text("stale\n", encoding="utf-8")
    report = run_evaluation(settings, methods=[threshold_method], out_dir=out, **SMALL)
    assert report.outcomes is not None and len(report.outcomes) == 3
    assert report.outcomes_path is None and not (out / "outcomes.csv").exists()
    line = (
        "None of the 6 alert episodes of these detectors in the warehouse has been reviewed "
        "(closed) yet, so no real PPV yet."
    )
    markdown = report.markdown_path.read_text(encoding="utf-8")
    assert markdown.rstrip().endswith(line) and "| detector |" not in markdown
    print_evaluation(report)
    printed = " ".join(capsys.readouterr().out.split())
    assert f"Real PPV: {line}" in printed and "Real PPV from reviewed" not in printed


def test_cli_no_outcomes(tmp_path: Path, threshold_method: str) -> None:
    home = tmp_path / "home"
    _reviewed_alerts(Settings(home=home), threshold_method)
    args = ["--home", str(home), "evaluate", "--method", threshold_method, "--series", "10"]
    args += ["--days", "100", "--evaluate-days", "60"]
    assert main([*args, "--out", str(tmp_path / "with")]) == 0
    assert "## Real positive predictive value" in (tmp_path / "with" / "evaluation.md").read_text(
        encoding="utf-8"
    )
    assert pd.read_csv(tmp_path / "with" / "outcomes.csv")["ppv"].iloc[0] == pytest.approx(0.75)
    assert main([*args, "--no-outcomes", "--out", str(tmp_path / "without")]) == 0
    markdown = (tmp_path / "without" / "evaluation.md").read_text(encoding="utf-8")
    assert "Real positive predictive value" not in markdown
    assert not (tmp_path / "without" / "outcomes.csv").exists()
