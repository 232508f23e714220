"""Line lists (CSV in UTF-8 / BOM / GB18030, Parquet) → raw visits, with row rejections."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from extract.errors import SchemaError
from extract.his import extract_his_visits
from extract.linelist import extract_linelist
from extract.times import parse_local_times
from sentinel.simulator.run import SimulationOptions, simulate
from transform.records import RAW_COLUMNS

ASSETS = Path(__file__).parent / "assets" / "linelist"
CONTENT = [c for c in RAW_COLUMNS if c not in ("source", "row_ref")]


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("visits.csv", "utf-8"),
        ("visits_bom.csv", "utf-8-sig"),
        ("visits_gb18030.csv", "gb18030"),
        ("visits.parquet", "parquet"),
    ],
)
def test_every_encoding_and_format_gives_the_same_visits(name: str, encoding: str) -> None:
    got = extract_linelist(ASSETS / name)
    reference = extract_linelist(ASSETS / "visits.csv")
    assert got.encoding == encoding and got.rejected.empty and got.rows == 4
    assert list(got.visits.columns) == list(RAW_COLUMNS)
    pd.testing.assert_frame_equal(got.visits[CONTENT], reference.visits[CONTENT])
    first_line = 1 if encoding == "parquet" else 2
    assert got.visits["row_ref"].iloc[0] == f"{name}:{first_line}"


def test_values_are_mapped() -> None:
    v = extract_linelist(ASSETS / "visits.csv", source="cdc-list").visits.set_index(
        "source_visit_id"
    )
    assert (v["source"] == "cdc-list").all()
    assert list(v["sex"]) == ["M", "F", "F", "U"]  # 男, 女, F, U
    assert list(v["setting"]) == ["outpatient", "emergency", "inpatient", "outpatient"]
    # local unless an offset is given: Z and +09:00 are converted to Shanghai time
    assert list(v["visit_time"].dt.strftime("%H:%M")) == ["08:30", "09:15", "10:00", "09:05"]
    assert v.loc["V002", "updated_at"] == pd.Timestamp("2025-01-05 10:00")
    assert v.loc["V002", "diagnosis_codes"] == "A09;K52.9"  # full-width separator, spaces
    assert v.loc["V003", "diagnosis_codes"] == "" and pd.isna(v.loc["V003", "temperature_c"])
    assert v.loc["V001", "source_patient_id"] == "P001" and v.loc["V001", "lat"] == 31.22
    assert pd.isna(v.loc["V002", "id_number"]) and pd.isna(v.loc["V002", "residence_code"])


def test_row_problems_are_rejected_and_the_rest_kept() -> None:
    got = extract_linelist(ASSETS / "bad_rows.csv")
    reasons = dict(zip(got.rejected["row_ref"], got.rejected["reason"], strict=True))
    assert reasons == {
        "bad_rows.csv:3": "visit_time missing or not an ISO 8601 date-time",
        "bad_rows.csv:4": "setting is not outpatient, emergency or inpatient",
        "bad_rows.csv:5": "sex is not M, F, U, 男 or 女",
        "bad_rows.csv:6": "temperature_c is not a number",
        "bad_rows.csv:7": "visit_id repeated with different content (lines 7, 8)",
        "bad_rows.csv:8": "visit_id repeated with different content (lines 7, 8)",
        "bad_rows.csv:11": "missing patient_id",  # a quoted field spans lines 11-12
        "bad_rows.csv:13": "9 fields where the header has 11",
    }
    v = got.visits
    assert list(v["source_visit_id"]) == ["B01", "B07", "B10"]  # B07's exact repeat dropped
    assert list(v["row_ref"]) == ["bad_rows.csv:2", "bad_rows.csv:9", "bad_rows.csv:14"]
    assert v["sex"].iloc[2] == "F" and v["chief_complaint"].iloc[2] == "发热,\n咳嗽"
    assert got.rows == len(v) + len(got.rejected) + got.duplicates == 12


def test_missing_columns_refuse_the_file() -> None:
    with pytest.raises(SchemaError) as info:
        extract_linelist(ASSETS / "missing_columns.csv")
    message = str(info.value)
    assert message.startswith("missing_columns.csv:")
    assert "setting, diagnosis_codes, one of residence_code, lat+lon, address" in message


def test_undecodable_file_is_a_schema_error_naming_it() -> None:
    with pytest.raises(SchemaError, match=r"latin1\.csv: .*neither UTF-8 nor GB18030"):
        extract_linelist(ASSETS / "latin1.csv")


def test_local_times_convert_offsets() -> None:
    got = parse_local_times(
        pd.Series(["2025-01-05T08:30", "2025-01-05T00:30Z", "2025-01-05T08:30+0800", "", None])
    )
    assert list(got[:3]) == [pd.Timestamp("2025-01-05 08:30")] * 3
    assert got[3:].isna().all() and str(got.dtype) == "datetime64[us]"


@pytest.fixture(scope="module")
def his_visits(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("sim")
    simulate(SimulationOptions(out=out, days=2, start=date(2025, 3, 1), formats=("his",)))
    return extract_his_visits(f"sqlite:///{out / 'his.sqlite'}")


def _as_line_list(his: pd.DataFrame) -> pd.DataFrame:
    """The HIS extract written in the line-list contract (sex as 男/女, ISO times)."""
    frame = his.drop(columns=["source", "row_ref"]).rename(
        columns={"source_visit_id": "visit_id", "source_patient_id": "patient_id"}
    )
    frame["sex"] = frame["sex"].map({"M": "男", "F": "女"})
    frame["birth_date"] = frame["birth_date"].dt.strftime("%Y-%m-%d")
    for column in ("visit_time", "updated_at"):
        frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_simulated_visits_round_trip(his_visits: pd.DataFrame, tmp_path: Path, kind: str) -> None:
    frame = _as_line_list(his_visits)
    path = tmp_path / f"list.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)
    got = extract_linelist(path)
    assert got.rejected.empty and len(got.visits) == len(his_visits) > 1000
    expected = his_visits
    pd.testing.assert_frame_equal(got.visits[CONTENT], expected[CONTENT])
