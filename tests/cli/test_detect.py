"""`sentinel detect`: one series from a file (the contract), and warehouse mode for a day."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.registry import METHODS, register
from detectors.result import build_result
from detectors.series import CountSeries
from sentinel.cli import main
from sentinel.detect_settings import DetectorChoice
from sentinel.detecting import detect_warehouse, read_count_csv
from sentinel.settings import load_settings
from warehouse.catalog import run_query
from warehouse.store import Warehouse

START = dt.date(2025, 1, 1)
DAYS = 120
SPIKE_DAY = START + dt.timedelta(days=100)
A, B = "310105001000", "310105002000"


def _write(path: Path, rows: list[tuple[str, object]]) -> Path:
    path.write_text("date,count\n" + "".join(f"{d},{c}\n" for d, c in rows), encoding="utf-8")
    return path


def _daily(n: int, start: str = "2024-01-01", spike: int | None = None) -> list[tuple[str, object]]:
    rng = np.random.default_rng(3)
    counts = rng.poisson(4, n)
    if spike is not None:
        counts[spike] += 25
    days = pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d")
    return list(zip(days, counts.tolist(), strict=True))


def test_one_series_contract(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.csv", _daily(40, spike=30))
    out = tmp_path / "out.csv"
    code = main(["detect", "--method", "ears_c1", "--input", str(src), "--output", str(out)])
    assert code == 0
    got = pd.read_csv(out, dtype={"alarm": "Int64"})
    assert list(got.columns) == ["date", "count", "expected", "upperbound", "alarm"]
    assert len(got) == 40
    assert got["alarm"].isna().sum() == 7  # C1 needs 7 days of baseline
    assert got.loc[30, "alarm"] == 1 and got["alarm"].sum() == 1
    computed = got.dropna()
    assert ((computed["count"] > computed["upperbound"]) == (computed["alarm"] == 1)).all()
    # The expected value is the mean of the 7 days before, by hand.
    assert got.loc[20, "expected"] == pytest.approx(got.loc[13:19, "count"].mean())


def test_weekly_series_and_details(tmp_path: Path) -> None:
    rows = [
        (d.strftime("%Y-%m-%d"), 10 + i % 3)
        for i, d in enumerate(pd.date_range("2023-01-02", periods=30, freq="7D"))
    ]
    src = _write(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    assert (
        main(
            [
                "detect",
                "--method",
                "ears_c3",
                "--input",
                str(src),
                "--output",
                str(out),
                "--details",
            ]
        )
        == 0
    )
    got = pd.read_csv(out)
    assert {"score", "p_value"} <= set(got.columns) and len(got) == 30


@pytest.mark.parametrize(
    ("rows", "args", "needle"),
    [
        ([("2024-01-02", 1), ("2024-01-01", 2)], [], "not sorted"),
        ([("2024-01-01", 1), ("2024-01-01", 2)], [], "duplicate date 2024-01-01"),
        ([("2024-01-01", 1), ("2024-01-02", -2)], [], "negative count on 2024-01-02"),
        ([("2024-01-01", 1), ("2024-01-03", 2)], [], "missing day(s) (first 2024-01-02)"),
        ([("2024-01-01", 1), ("2024-01-02", "")], [], "missing day(s)"),
        ([("2024-01-01", 1), ("2024-13-02", 2)], [], "not YYYY-MM-DD"),
        ([("2024-01-01", 1), ("2024-01-02", "x")], [], "'x' is not a number"),
        ([("2024-01-01", 1)], ["--method", "nope"], "unknown method 'nope'"),
        ([("2024-01-01", 1)], ["--param", "bogus=1"], "no parameter 'bogus'"),
        ([("2024-01-01", 1)], ["--param", "alpha"], "key=value"),
        ([("2024-01-01", 1)], ["--param", "baseline=x"], "baseline must be a number"),
        ([("2024-01-01", 1)], ["--fill-missing", "mean"], "--fill-missing"),
    ],
)
def test_bad_input_is_exit_2_with_the_reason(
    rows: list[tuple[str, object]],
    args: list[str],
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = _write(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    base = ["detect", "--method", "ears_c2", "--input", str(src), "--output", str(out)]
    if "--method" in args:
        base = ["detect", "--input", str(src), "--output", str(out)]
    code = main(base + args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_fill_missing_zero_inserts_the_days(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.csv", [("2024-01-01", 1), ("2024-01-04", 2), ("2024-01-05", "")])
    frame = read_count_csv(src, "zero")
    assert frame["count"].tolist() == [1, 0, 0, 2, 0]
    out = tmp_path / "out.csv"
    args = ["detect", "--method", "ears_c1", "--input", str(src), "--output", str(out)]
    assert main([*args, "--fill-missing", "zero"]) == 0
    assert pd.read_csv(out)["date"].tolist()[1] == "2024-01-02"


def test_modes_do_not_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "--method", "ears_c1", "--date", "2025-01-01"]) == 2
    assert "either" in capsys.readouterr().err
    assert main(["detect", "--method", "ears_c1"]) == 2
    assert "needs --input, --output" in capsys.readouterr().err


def test_list_methods(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "--list-methods"]) == 0
    out = capsys.readouterr().out
    for name in ("ears_c1", "ears_c2", "ears_c3", "farrington_flexible", "cusum"):
        assert name in out


# -- warehouse mode ---------------------------------------------------------------------


def _visits(spike: int = 30) -> pd.DataFrame:
    """Two streets, 120 days of ILI at ~5 a day; on SPIKE_DAY street A gets `spike` extra 60+ visits."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(DAYS):
        day = START + dt.timedelta(days=i)
        for street in (A, B):
            n = int(rng.poisson(5)) + (spike if street == A and day == SPIKE_DAY else 0)
            for j in range(n):
                old = street == A and day == SPIKE_DAY and j < spike
                rows.append(
                    {
                        "visit_key": f"{street}-{i}-{j}",
                        "source": "his",
                        "facility_id": "F01",
                        "visit_date": day,
                        "visit_time": dt.datetime.combine(day, dt.time(9, 0)),
                        "setting": "outpatient",
                        "patient_key": f"p{street}{i}{j}",
                        "sex": "F",
                        "age_years": 75 if old else 30,
                        "age_group": "60+" if old else "25-59",
                        "street_code": street,
                        "residence_method": "code",
                        "chief_complaint": "发热咳嗽",
                        "diagnosis_codes": ["J11.1"],
                        "temperature_c": 38.5,
                        "syndromes": ["fever", "ili"],
                        "updated_at": dt.datetime.combine(day, dt.time(10, 0)),
                    }
                )
    df = pd.DataFrame(rows)
    for col in ("visit_time", "updated_at"):
        df[col] = pd.to_datetime(df[col]).astype("datetime64[us]")
    return df


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    wh = Warehouse(home / "warehouse")
    wh.upsert_visits(_visits(), "b1")
    wh.replace_table(
        "streets",
        pd.DataFrame(
            {"street_code": [A, B], "name_zh": ["华阳路街道", "江苏路街道"], "name_en": None,
             "population": [60_000, 50_000], "geometry_wkt": None}
        ),
    )  # fmt: skip
    wh.rebuild_syndrome_daily(pd.date_range(START, periods=DAYS, freq="D").date, ["fever", "ili"])
    return home


def test_warehouse_mode_finds_the_spike_and_is_idempotent(home: Path) -> None:
    loaded = load_settings(home, environ={})
    # The 60+ series has no visits before the spike: let it in.
    settings = replace(loaded, detect=replace(loaded.detect, age_group_min_daily=0.0))
    summary = detect_warehouse(settings, SPIKE_DAY, now=dt.datetime(2025, 4, 12, 2, 0))
    alerts = summary.alerts
    # all ages and the 60+ group, for fever and ili, in street A only.
    assert set(zip(alerts["syndrome"], alerts["age_group"].fillna("all"), strict=True)) == {
        ("fever", "all"),
        ("ili", "all"),
        ("fever", "60+"),
        ("ili", "60+"),
    }
    assert {tuple(s) for s in alerts["street_codes"]} == {(A,)}
    assert (alerts["observed"] > alerts["upperbound"]).all()
    stored = run_query(home / "warehouse", "SELECT * FROM alerts ORDER BY alert_id")
    assert len(stored) == 4 and (stored["status"] == "new").all()
    # Re-running the day later: same rows, created_at kept.
    detect_warehouse(settings, SPIKE_DAY, now=dt.datetime(2025, 4, 20, 2, 0))
    again = run_query(home / "warehouse", "SELECT * FROM alerts ORDER BY alert_id")
    pd.testing.assert_frame_equal(stored, again)


def test_a_range_equals_day_by_day_and_ignores_later_data(home: Path) -> None:
    settings = load_settings(home, environ={})
    first, last = SPIKE_DAY - dt.timedelta(days=5), SPIKE_DAY + dt.timedelta(days=5)
    stamp = dt.datetime(2025, 5, 1)
    ranged = detect_warehouse(settings, first, last, now=stamp).alerts
    singles = pd.concat(
        [
            detect_warehouse(settings, d.date(), now=stamp).alerts
            for d in pd.date_range(first, last)
        ],
        ignore_index=True,
    )
    cols = ["alert_id", "observed", "expected", "upperbound", "severity"]
    pd.testing.assert_frame_equal(
        ranged.sort_values("alert_id")[cols].reset_index(drop=True),
        singles.sort_values("alert_id")[cols].reset_index(drop=True),
    )
    assert SPIKE_DAY in set(ranged["date"])


def test_warehouse_mode_cli_and_settings(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "sentinel.toml").write_text(
        '[detect]\nmethod = "ears_c1"\nparams = { alpha = 0.01 }\nage_groups = false\n',
        encoding="utf-8",
    )
    assert main(["--home", str(home), "detect", "--date", SPIKE_DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "ears_c1(alpha=0.01)" in out and "alert(s) written" in out
    stored = run_query(home / "warehouse", "SELECT detector, age_group FROM alerts")
    assert set(stored["detector"]) == {"ears_c1"} and stored["age_group"].isna().all()
    (home / "sentinel.toml").write_text('[detect]\nmethod = "ears_c9"\n', encoding="utf-8")
    assert main(["--home", str(home), "detect", "--date", SPIKE_DAY.isoformat()]) == 2
    assert "unknown method 'ears_c9'" in capsys.readouterr().err


def test_warehouse_mode_on_an_empty_warehouse_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--home", str(tmp_path / "h"), "detect", "--date", "2025-01-01"]) == 2
    assert "no syndrome_daily data" in capsys.readouterr().err


def test_a_window_sum_method_reports_its_sum_as_observed(home: Path) -> None:
    @register("test_window_sum", observed="score")
    def detect_window_sum(series: CountSeries, *, at: object | None = None, bound: float = 60.0):
        """7-day sums against a fixed bound (a stand-in for mpm)."""
        csum = np.cumsum(
            np.concatenate([np.zeros((series.n_series, 1)), series.counts], axis=1), axis=1
        )
        sums = np.full(series.counts.shape, np.nan)
        sums[:, 6:] = csum[:, 7:] - csum[:, :-7]
        upper = np.full(series.counts.shape, bound)
        return build_result(
            series, "test_window_sum", {"bound": bound}, expected=upper, upperbound=upper,
            alarm=sums > upper, computed=np.isfinite(sums), score=sums,
        )  # fmt: skip

    try:
        loaded = load_settings(home, environ={})
        choice = DetectorChoice("test_window_sum")
        settings = replace(
            loaded, detect=replace(loaded.detect, method=choice, fallback=choice, age_groups=False)
        )
        alerts = detect_warehouse(settings, SPIKE_DAY).alerts
        ili = alerts[(alerts["syndrome"] == "ili") & (alerts["street_codes"].map(tuple) == (A,))]
        daily = run_query(
            home / "warehouse",
            f"SELECT sum(count) AS n FROM syndrome_daily WHERE syndrome = 'ili' AND street_code = '{A}' "
            f"AND date BETWEEN DATE '{SPIKE_DAY}' - 6 AND DATE '{SPIKE_DAY}'",
        )
        assert len(ili) == 1
        assert ili["observed"].iloc[0] == daily["n"].iloc[0] > 60
    finally:
        METHODS.pop("test_window_sum", None)


def test_settings_keep_default_parameters_unless_the_method_changes(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "sentinel.toml").write_text("[detect]\nage_groups = false\n", encoding="utf-8")
    detect = load_settings(home, environ={}).detect
    assert (
        detect.method.label() == "switch(red=0.001)"
        and detect.fallback.label() == "ewma(red=0.001)"
    )
    assert detect.choice_for("ili", "60+").label() == "switch(red=0.0001)"
    (home / "sentinel.toml").write_text('[detect]\nmethod = "ears_c3"\n', encoding="utf-8")
    assert load_settings(home, environ={}).detect.method.label() == "ears_c3"
