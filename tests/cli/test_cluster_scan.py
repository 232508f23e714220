"""`sentinel scan --date D`: the nightly space-time scan over the warehouse's streets."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo.areas import load_area_set
from sentinel.cli import main
from sentinel.cluster_scan import _continuation, scan_warehouse
from sentinel.errors import UsageError
from sentinel.scan_settings import ScanSettings, parse_scan_settings
from sentinel.settings import load_settings
from warehouse.catalog import run_query
from warehouse.store import Warehouse

START = dt.date(2025, 3, 1)
DAYS = 60
LAST = START + dt.timedelta(days=DAYS - 1)


def test_scan_settings_defaults_and_errors() -> None:
    assert parse_scan_settings({}, "f") == ScanSettings()
    got = parse_scan_settings({"max_radius_km": 0, "reps": 99, "syndromes": ["ili"]}, "f")
    assert got.max_radius_km is None and got.reps == 99 and got.syndromes == ("ili",)
    for bad, needle in [
        ({"model": "bernoulli"}, "permutation or poisson"),
        ({"reps": -1}, "whole number"),
        ({"max_days": 10, "study_days": 5}, "max_days ≤ study_days"),
        ({"max_size_pct": 80}, "max_size_pct ≤ 50"),
        ({"colour": 1}, r"unknown \[scan\] setting"),
        ({"syndromes": "ili"}, "list of names"),
    ]:
        with pytest.raises(UsageError, match=needle):
            parse_scan_settings(bad, "f")


def _earlier(day: int, streets: list[str], observed: float, alert: str = "e1") -> dict[str, object]:
    return {
        "alert_id": alert, "syndrome": "ili", "date": START + dt.timedelta(days=day),
        "street_codes": streets, "observed": observed,
    }  # fmt: skip


def _row(day: int, window: int, streets: list[str], observed: float) -> dict[str, object]:
    d = START + dt.timedelta(days=day)
    return {
        "date": d, "syndrome": "ili", "streets": streets, "observed": observed,
        "window_start": d - dt.timedelta(days=window - 1),
    }  # fmt: skip


def test_continuation_rules() -> None:
    earlier = [_earlier(10, ["A", "B"], 9.0)]
    # same streets, same cases, windows overlap: ongoing
    assert _continuation(_row(11, 3, ["A", "B"], 9.0), earlier) == ("ongoing", "e1")
    # a new street, or more cases: grown
    assert _continuation(_row(11, 3, ["A", "B", "C"], 9.0), earlier) == ("grown", "e1")
    assert _continuation(_row(11, 3, ["B"], 12.0), earlier) == ("grown", "e1")
    # no shared street, another syndrome, or windows that do not overlap: new
    assert _continuation(_row(11, 3, ["C"], 9.0), earlier) == ("new", None)
    assert _continuation(_row(11, 3, ["A"], 9.0) | {"syndrome": "gi"}, earlier) == ("new", None)
    assert _continuation(_row(14, 3, ["A"], 9.0), earlier) == ("new", None)
    # the latest of several earlier clusters is the one continued
    two = [*earlier, _earlier(12, ["A"], 5.0, "e2")]
    assert _continuation(_row(13, 4, ["A"], 5.0), two) == ("ongoing", "e2")


def _visits(cluster: tuple[str, ...], extra: int) -> pd.DataFrame:
    """Two months of ILI in every street; `extra` more cases a day in `cluster` on the last 3 days."""
    rng = np.random.default_rng(5)
    codes = load_area_set().codes
    rows = []
    for i in range(DAYS):
        day = START + dt.timedelta(days=i)
        for street in codes:
            n = int(rng.poisson(2)) + (extra if street in cluster and i >= DAYS - 3 else 0)
            for j in range(n):
                rows.append(
                    {
                        "visit_key": f"{street}-{i}-{j}", "source": "his", "facility_id": "F01",
                        "visit_date": day, "visit_time": dt.datetime.combine(day, dt.time(9)),
                        "setting": "outpatient", "patient_key": f"p{street}{i}{j}", "sex": "M",
                        "age_years": 40, "age_group": "25-59", "street_code": street,
                        "residence_method": "code", "chief_complaint": "发热咳嗽",
                        "diagnosis_codes": ["J11.1"], "temperature_c": 38.6,
                        "syndromes": ["ili"], "updated_at": dt.datetime.combine(day, dt.time(10)),
                    }
                )  # fmt: skip
    df = pd.DataFrame(rows)
    for col in ("visit_time", "updated_at"):
        df[col] = pd.to_datetime(df[col]).astype("datetime64[us]")
    return df


@pytest.fixture
def home(tmp_path: Path) -> Path:
    area = load_area_set()
    home = tmp_path / "home"
    wh = Warehouse(home / "warehouse")
    first = area.adjacency()[area.codes[0]][0]
    cluster = (area.codes[0], first)
    wh.upsert_visits(_visits(cluster, extra=6), "b1")
    streets = area.streets
    wh.replace_table(
        "streets",
        pd.DataFrame(
            {"street_code": streets["street_code"].astype(str), "name_zh": streets["name_zh"],
             "name_en": streets["name_en"], "population": streets["population"],
             "geometry_wkt": None}
        ),
    )  # fmt: skip
    wh.rebuild_syndrome_daily(pd.date_range(START, periods=DAYS, freq="D").date, ["ili"])
    (home / "cluster.txt").write_text(";".join(sorted(cluster)), encoding="utf-8")
    return home


def test_the_planted_cluster_is_found_written_and_continued(home: Path) -> None:
    loaded = load_settings(home, environ={})
    settings = replace(loaded, scan=replace(loaded.scan, reps=199, study_days=60))
    planted = set((home / "cluster.txt").read_text(encoding="utf-8").split(";"))
    summary = scan_warehouse(settings, LAST - dt.timedelta(days=1), LAST)
    alerts = summary.alerts
    assert not alerts.empty
    last = alerts[alerts["date"] == LAST].iloc[0]
    assert planted <= set(last["street_codes"])
    assert last["recurrence_interval_days"] >= 100 and last["observed"] > last["expected"]
    assert last["window_start"] >= LAST - dt.timedelta(days=2)
    stored = run_query(home / "warehouse", "SELECT * FROM alerts ORDER BY date, alert_id")
    assert set(stored["detector"]) == {"scan_permutation"}
    # the second day's cluster continues the first day's (same streets, overlapping days)
    if (alerts["date"] == LAST - dt.timedelta(days=1)).any():
        assert last["announcement"] in ("ongoing", "grown") and last["continues"]
    # re-running gives the same rows
    scan_warehouse(settings, LAST - dt.timedelta(days=1), LAST)
    again = run_query(home / "warehouse", "SELECT * FROM alerts ORDER BY date, alert_id")
    pd.testing.assert_frame_equal(stored, again)


def test_scan_and_temporal_alerts_live_side_by_side(home: Path) -> None:
    from sentinel.detecting import detect_warehouse

    loaded = load_settings(home, environ={})
    settings = replace(loaded, scan=replace(loaded.scan, reps=99, study_days=60))
    detect_warehouse(settings, LAST)
    temporal = run_query(home / "warehouse", "SELECT count(*) AS n FROM alerts")["n"].iloc[0]
    scan_warehouse(settings, LAST)
    detect_warehouse(settings, LAST)  # replaces its own alerts only
    both = run_query(home / "warehouse", "SELECT detector FROM alerts")
    assert (both["detector"] == "scan_permutation").sum() >= 1
    assert (both["detector"] != "scan_permutation").sum() == temporal


def test_cli_warehouse_scan(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "sentinel.toml").write_text("[scan]\nreps = 99\nstudy_days = 60\n", encoding="utf-8")
    assert main(["--home", str(home), "scan", "--date", LAST.isoformat()]) == 0
    assert "Space-time scan for" in capsys.readouterr().out
    assert main(["--home", str(home), "scan", "--date", LAST.isoformat(), "--cases", "x.csv"]) == 2
    assert "either" in capsys.readouterr().err
