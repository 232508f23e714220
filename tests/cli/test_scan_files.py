"""`sentinel scan` on files: the CASES / GEO / CLUSTERS contract and every bad input."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentinel.cli import main
from sentinel.errors import UsageError
from sentinel.scanning import CLUSTER_COLUMNS, scan_files

NYC = Path(__file__).resolve().parents[1] / "assets" / "scan"
CONTRACT = [
    "cluster", "location_ids", "start_date", "end_date", "observed", "expected", "llr",
    "p_value", "recurrence_interval_days",
]  # fmt: skip
NYC_MLC = "11375;11415;11416;11417;11418;11419;11421;11435;11451"


@pytest.fixture
def nyc_files(tmp_path: Path) -> tuple[Path, Path]:
    """SaTScan's NYC fever sample rewritten as CASES and GEO (lat/lon) CSV files."""
    cas = pd.read_csv(
        NYC / "NYCfever.cas",
        sep=r"\s+",
        header=None,
        names=["location_id", "count", "date"],
        dtype=str,
    )
    cas["date"] = pd.to_datetime(cas["date"], format="%Y/%m/%d").dt.strftime("%Y-%m-%d")
    geo = pd.read_csv(
        NYC / "NYCfever.geo",
        sep=r"\s+",
        header=None,
        names=["location_id", "lat", "lon"],
        dtype=str,
    )
    cases, coords = tmp_path / "cases.csv", tmp_path / "geo.csv"
    cas[["location_id", "date", "count"]].to_csv(cases, index=False)
    geo.to_csv(coords, index=False)
    return cases, coords


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path]:
    """Ten streets on a line (km), 10 days, a cluster at 2 and 3 on the last two days."""
    rng = np.random.default_rng(1)
    rows = ["location_id,date,count"]
    for street in range(10):
        for day in range(10):
            n = int(rng.poisson(1.0)) + (4 if street in (2, 3) and day >= 8 else 0)
            rows.append(f"S{street},{dt.date(2025, 3, 1) + dt.timedelta(days=day)},{n}")
    cases = _write(tmp_path / "cases.csv", "\n".join(rows) + "\n")
    geo = _write(
        tmp_path / "geo.csv",
        "location_id,x,y,population\n"
        + "".join(f"S{i},{2.0 * i},0,{1000 * (i + 1)}\n" for i in range(10)),
    )
    return cases, geo


def test_contract_on_the_nyc_sample(nyc_files: tuple[Path, Path], tmp_path: Path) -> None:
    cases, geo = nyc_files
    out = tmp_path / "clusters.csv"
    args = ["scan", "--cases", str(cases), "--geo", str(geo), "--end-date", "2001-11-24"]
    args += ["--max-radius-km", "3", "--max-days", "7", "--seed", "7", "--output", str(out)]
    assert main(args) == 0
    got = pd.read_csv(out, dtype={"location_ids": str})
    assert list(got.columns)[: len(CONTRACT)] == CONTRACT
    assert list(got.columns) == list(CLUSTER_COLUMNS)
    assert got["cluster"].tolist() == list(range(1, len(got) + 1))
    first = got.iloc[0]
    # SaTScan's most likely cluster on this sample (tests/geo/test_scan_nyc.py)
    assert first["location_ids"] == NYC_MLC
    assert (first["start_date"], first["end_date"]) == ("2001-11-22", "2001-11-24")
    assert first["observed"] == 4 and first["expected"] == pytest.approx(130 / 194)
    assert abs(first["llr"] - 3.845418) <= 5e-7
    assert first["recurrence_interval_days"] == pytest.approx(1 / first["p_value"])
    assert first["centre"] == 11418 and round(first["radius_km"], 2) == 2.90
    assert got.loc[1, "location_ids"] == "11372"
    # study period from the first case (2001-11-01): ids stay strings with their zeros
    assert (got["llr"].diff().dropna() <= 1e-9).all()


def test_same_seed_same_file_and_returned_rows(small: tuple[Path, Path], tmp_path: Path) -> None:
    cases, geo = small
    end = dt.date(2025, 3, 10)
    rows = scan_files(cases, geo, tmp_path / "a.csv", end_date=end, reps=99, seed=3)
    scan_files(cases, geo, tmp_path / "b.csv", end_date=end, reps=99, seed=3)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert rows[0].location_ids == ("S2", "S3")
    assert (rows[0].start_date, rows[0].end_date) == (dt.date(2025, 3, 9), end)
    written = pd.read_csv(tmp_path / "a.csv")
    assert written.loc[0, "location_ids"] == "S2;S3"
    assert written["observed"].tolist() == [r.observed for r in rows]
    assert written["p_value"].tolist() == pytest.approx([r.p_value for r in rows])


def test_earlier_start_date_adds_empty_days_and_changes_nothing(
    small: tuple[Path, Path], tmp_path: Path
) -> None:
    cases, geo = small
    end = dt.date(2025, 3, 10)
    default = scan_files(cases, geo, tmp_path / "a.csv", end_date=end, reps=49)
    earlier = scan_files(
        cases, geo, tmp_path / "b.csv", end_date=end, start_date=dt.date(2025, 2, 1), reps=49
    )
    assert default == earlier  # empty days carry no cases: same margins, same replicates


def test_poisson_uses_the_population(small: tuple[Path, Path], tmp_path: Path) -> None:
    cases, geo = small
    rows = scan_files(
        cases, geo, tmp_path / "p.csv", end_date=dt.date(2025, 3, 10), model="poisson", reps=49
    )
    first = rows[0]
    frame = pd.read_csv(cases)
    total = frame["count"].sum()
    share = sum(1000 * (int(s[1]) + 1) for s in first.location_ids) / 55000
    days = (first.end_date - first.start_date).days + 1
    assert first.expected == pytest.approx(total * share * days / 10)


def test_duplicate_case_rows_add_up(small: tuple[Path, Path], tmp_path: Path) -> None:
    cases, geo = small
    frame = pd.read_csv(cases)
    split = pd.concat(
        [
            frame.assign(count=frame["count"] // 2),
            frame.assign(count=frame["count"] - frame["count"] // 2),
        ]
    )
    twice = tmp_path / "split.csv"
    split.sample(frac=1.0, random_state=0).to_csv(twice, index=False)
    end = dt.date(2025, 3, 10)
    assert scan_files(twice, geo, tmp_path / "a.csv", end_date=end, reps=19) == scan_files(
        cases, geo, tmp_path / "b.csv", end_date=end, reps=19
    )


def test_no_cluster_writes_the_header_only(tmp_path: Path) -> None:
    cases = _write(tmp_path / "c.csv", "location_id,date,count\nA,2025-01-01,1\nB,2025-01-02,1\n")
    geo = _write(tmp_path / "g.csv", "location_id,x,y\nA,0,0\nB,1,0\nC,2,0\n")
    out = tmp_path / "out.csv"
    assert scan_files(cases, geo, out, end_date=dt.date(2025, 1, 2), reps=9) == []
    assert out.read_text(encoding="utf-8").strip() == ",".join(CLUSTER_COLUMNS)


GOOD_GEO = "location_id,x,y\nA,0,0\nB,1,0\nC,5,0\n"
ZERO_POP_GEO = "location_id,x,y,population\nA,0,0,0\nB,1,0,5\nC,5,0,5\n"
GOOD_CASES = "location_id,date,count\nA,2025-01-01,2\nB,2025-01-02,3\nC,2025-01-03,1\n"


@pytest.mark.parametrize(
    ("cases", "geo", "kw", "reason"),
    [
        ("location_id,date,count\nZ,2025-01-01,2\n", GOOD_GEO, {}, "location_id not in --geo: Z"),
        (GOOD_CASES, GOOD_GEO + "A,3,3\n", {}, "duplicate location_id A"),
        (GOOD_CASES, GOOD_GEO, {"end_date": dt.date(2025, 1, 2)}, "outside the study period"),
        (GOOD_CASES, GOOD_GEO, {"start_date": dt.date(2025, 1, 2)}, "outside the study period"),
        (GOOD_CASES, GOOD_GEO, {"start_date": dt.date(2025, 2, 1)}, "starts"),
        ("location_id,date,count\nA,2025-01-01,0\nB,2025-01-03,0\n", GOOD_GEO, {}, "no cases"),
        ("location_id,date,count\n", GOOD_GEO, {}, "no cases"),
        ("location_id,date\nA,2025-01-01\n", GOOD_GEO, {}, "missing column.*count"),
        (GOOD_CASES, "location_id,x\nA,0\n", {}, "neither x,y nor lat,lon"),
        (GOOD_CASES, "location_id,x,y,lat,lon\nA,0,0,1,1\n", {}, "both x,y and lat,lon"),
        (GOOD_CASES, "id,x,y\nA,0,0\n", {}, "missing column.*location_id"),
        ("location_id,date,count\nA,2025-01-01,-2\n", GOOD_GEO, {}, "negative count"),
        ("location_id,date,count\nA,2025-01-01,1.5\n", GOOD_GEO, {}, "not a whole number"),
        ("location_id,date,count\nA,2025-01-01,two\n", GOOD_GEO, {}, "'two' is not a number"),
        ("location_id,date,count\nA,01/01/2025,2\n", GOOD_GEO, {}, "is not YYYY-MM-DD"),
        (GOOD_CASES, "location_id,x,y\nA,0,0\nB,east,0\nC,5,0\n", {}, "x 'east' is not a number"),
        (GOOD_CASES, GOOD_GEO, {"model": "poisson"}, "needs a population column"),
        (GOOD_CASES, ZERO_POP_GEO, {"model": "poisson"}, "zero population"),
        (GOOD_CASES, GOOD_GEO, {"model": "bernoulli"}, "--model"),
        (GOOD_CASES, GOOD_GEO, {"max_size_pct": 80.0}, "max_size_pct"),
        (GOOD_CASES, GOOD_GEO, {"max_days": 0}, "max_days"),
        (GOOD_CASES, "location_id,lat,lon\nA,0,0\nB,95,0\nC,1,1\n", {}, "lat must lie"),
    ],
)
def test_bad_input_is_a_usage_error_and_writes_nothing(
    tmp_path: Path, cases: str, geo: str, kw: dict[str, object], reason: str
) -> None:
    out = tmp_path / "out" / "clusters.csv"
    settings: dict[str, object] = {"end_date": dt.date(2025, 1, 3), "reps": 9, **kw}
    with pytest.raises(UsageError, match=reason):
        scan_files(
            _write(tmp_path / "c.csv", cases), _write(tmp_path / "g.csv", geo), out, **settings
        )  # type: ignore[arg-type]
    assert not out.exists()


def test_missing_file_is_named(tmp_path: Path) -> None:
    geo = _write(tmp_path / "g.csv", GOOD_GEO)
    with pytest.raises(UsageError, match=r"--cases .*nope\.csv does not exist"):
        scan_files(tmp_path / "nope.csv", geo, tmp_path / "o.csv", end_date=dt.date(2025, 1, 3))


def test_command_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = _write(tmp_path / "c.csv", "location_id,date,count\nZ,2025-01-01,2\n")
    geo = _write(tmp_path / "g.csv", GOOD_GEO)
    out = tmp_path / "clusters.csv"
    code = main(
        [
            "scan",
            "--cases",
            str(cases),
            "--geo",
            str(geo),
            "--end-date",
            "2025-01-03",
            "--output",
            str(out),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "location_id not in --geo: Z" in err
    assert not out.exists()


def test_reps_zero_leaves_p_values_empty(small: tuple[Path, Path], tmp_path: Path) -> None:
    cases, geo = small
    out = tmp_path / "o.csv"
    rows = scan_files(cases, geo, out, end_date=dt.date(2025, 3, 10), reps=0)
    assert rows and all(math.isnan(r.p_value) for r in rows)
    assert pd.read_csv(out)["p_value"].isna().all()
