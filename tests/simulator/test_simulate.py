"""The simulator end to end: determinism, plausibility, identifiers present, outbreaks present."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from sentinel.simulator.identity import is_valid_id_number
from sentinel.simulator.run import SimulationOptions, simulate

STREETS = {
    "310105001000", "310105002000", "310105004000", "310105005000", "310105006000",
    "310105008000", "310105009000", "310105010000", "310105011000", "310105102000",
}  # fmt: skip


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated year, HIS only (the message writers have their own tests)."""
    out = tmp_path_factory.mktemp("year")
    simulate(
        SimulationOptions(out=out, days=365, start=date(2025, 1, 1), seed=11, formats=("his",))
    )
    return out


def test_same_seed_identical_files_other_seed_differs(tmp_path: Path) -> None:
    opts = {"days": 21, "start": date(2025, 3, 1), "seed": 5}
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(SimulationOptions(out=a, **opts))  # type: ignore[arg-type]
    simulate(SimulationOptions(out=b, **opts))  # type: ignore[arg-type]
    simulate(SimulationOptions(out=c, **{**opts, "seed": 6}))  # type: ignore[arg-type]
    da, db = digest(a), digest(b)
    assert {"his.sqlite", "ground_truth.csv", "manifest.json"} <= set(da)
    assert any(k.startswith("hl7/") for k in da) and any(k.startswith("fhir/") for k in da)
    assert da == db
    assert digest(c)["his.sqlite"] != da["his.sqlite"]


def test_rerun_into_same_folder_replaces_outputs(tmp_path: Path) -> None:
    simulate(SimulationOptions(out=tmp_path / "o", days=10, seed=1))
    first = digest(tmp_path / "o")
    simulate(SimulationOptions(out=tmp_path / "o", days=5, seed=1))
    second = digest(tmp_path / "o")
    assert len([k for k in second if k.startswith("hl7/")]) < len(
        [k for k in first if k.startswith("hl7/")]
    )


def _visits(out: Path) -> pd.DataFrame:
    with sqlite3.connect(out / "his.sqlite") as con:
        return pd.read_sql(
            "SELECT r.*, p.name, p.id_card_no, p.mobile, p.address, p.addr_division_code "
            "FROM registrations r JOIN patients p USING (patient_id)",
            con,
            parse_dates=["reg_time", "created_at", "updated_at"],
        )


def test_volume_weekly_and_seasonal_patterns(year: Path) -> None:
    v = _visits(year)
    daily = v.groupby(v["reg_time"].dt.date).size()
    assert 1500 < daily.median() < 3000
    truth = pd.read_parquet(year / "truth" / "visits.parquet")
    assert len(truth) == len(v)
    by_dow = v.groupby(v["reg_time"].dt.day_of_week).size()
    assert by_dow[0] > 1.2 * by_dow[6]  # Mondays busier than Sundays
    truth["month"] = pd.to_datetime(truth["visit_date"]).dt.month
    month = truth.groupby(["category", "month"]).size().unstack(fill_value=0)
    assert month.loc["ili", [12, 1]].sum() > 2.5 * month.loc["ili", [4, 5]].sum()  # winter flu
    assert month.loc["hfmd", [5, 6]].sum() > 2 * month.loc["hfmd", [11, 12]].sum()  # summer HFMD
    gi = month.loc["gastrointestinal"]
    assert gi[[7, 8]].mean() > 1.3 * gi[[4, 10]].mean()  # summer diarrhoea
    # Spring Festival 2025 (eve 28 January): outpatient volume collapses
    festival = daily[pd.Timestamp("2025-01-29").date() : pd.Timestamp("2025-02-02").date()].mean()
    before = daily[pd.Timestamp("2025-01-06").date() : pd.Timestamp("2025-01-24").date()].mean()
    assert festival < 0.7 * before


def test_children_dominate_hfmd_and_every_street_present(year: Path) -> None:
    truth = pd.read_parquet(year / "truth" / "visits.parquet")
    assert set(truth["true_street_code"]) == STREETS
    with sqlite3.connect(year / "his.sqlite") as con:
        facilities = pd.read_sql("SELECT * FROM facilities", con)
    assert 15 <= len(facilities) <= 25
    assert set(facilities["level"]) >= {"tertiary", "secondary", "chsc", "chss"}


def test_identifiers_present_in_sources(year: Path) -> None:
    v = _visits(year).sample(2000, random_state=0)
    assert v["id_card_no"].map(is_valid_id_number).all()
    assert v["mobile"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert v["address"].str.contains("路|弄|号").mean() > 0.9
    coded = v["addr_division_code"].notna().mean()
    assert 0.3 < coded < 0.9  # some sources record a street code, many only an address
    full = _visits(year)
    planted = full["chief_complaint"].str.contains(r"1[3-9]\d{9}|\d{17}[\dX]|患者", regex=True)
    assert 0.001 < planted.mean() < 0.01


def test_corrections_move_updated_at(year: Path) -> None:
    v = _visits(year)
    corrected = v[v["updated_at"] > v["created_at"]]
    assert 0.01 < len(corrected) / len(v) < 0.03


def test_late_facilities_and_outages(year: Path) -> None:
    events = pd.read_csv(year / "facility_events.csv")
    assert "outage" in set(events["kind"])
    v = _visits(year)
    lag_hours = (v["created_at"] - v["reg_time"]).dt.total_seconds() / 3600
    assert (lag_hours > 24).mean() > 0.01  # some records arrive days late
    assert (lag_hours >= 0).all()
    outage = events[events["kind"] == "outage"].iloc[0]
    during = v[(v["facility_id"] == outage["facility_id"])
               & (v["reg_time"].dt.date.astype(str) >= outage["start"])
               & (v["reg_time"].dt.date.astype(str) <= outage["end"])]  # fmt: skip
    assert (during["created_at"].dt.date.astype(str) > outage["end"]).all()


def test_ground_truth_outbreaks(year: Path) -> None:
    gt = pd.read_csv(year / "ground_truth.csv", dtype={"street_codes": str})
    assert len(gt) == 9  # 8 over the year and 1 still under way on its last day
    assert set(gt.columns) >= {
        "outbreak_id",
        "syndrome",
        "street_codes",
        "start",
        "end",
        "extra_cases",
    }
    truth = pd.read_parquet(year / "truth" / "visits.parquet")
    for row in gt.itertuples():
        cases = truth[truth["outbreak_id"] == row.outbreak_id]
        assert len(cases) == row.extra_cases > 0
        assert set(cases["true_street_code"]) <= set(row.street_codes.split(";"))
        assert (cases["category"] == row.syndrome).all()
        assert cases["visit_date"].astype(str).between(row.start, row.end).all()
