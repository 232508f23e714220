"""Raw-batch validation: structure rejects the batch, row problems quarantine exact rows."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from transform.records import RAW_COLUMNS
from transform.validation import BatchRejected, RawValidation, validate_raw_batch

NOW = datetime(2025, 3, 2, 12, 0)
REPO = Path(__file__).resolve().parents[2]

# Invented identifiers planted in bad rows: none may appear in reasons, reports or errors.
SECRETS = {
    "name": "司马青霞",
    "id_number": "110101199003078515",
    "phone": "13800138000",
    "address": "测试路99号",
    "source_visit_id": "VISIT-SECRET-7781",
    "source_patient_id": "PATIENT-SECRET-4410",
}

TEMPERATURE = "temperature_c outside 30-45 °C"
SEX = "sex not M, F, U, 男 or 女"
SETTING = "setting missing or not outpatient, emergency or inpatient"
RESIDENCE = "residence_code not a 12-digit code"
DIAGNOSIS = "diagnosis_codes not ICD-10"
FUTURE = "visit_time in the future"
DUPLICATE = "duplicate visit id with conflicting content"


def _raw(n: int) -> pd.DataFrame:
    """``n`` valid raw records with distinct visit ids and row refs ``test:<i>``."""
    i = np.arange(n)
    visit_time = pd.Timestamp("2025-03-01 08:00") + pd.to_timedelta(i % 600, unit="min")
    frame = pd.DataFrame(
        {
            "source": "test", "row_ref": [f"test:{k}" for k in i],
            "source_visit_id": [f"V{k:06d}" for k in i], "source_patient_id": [f"P{k % 97}" for k in i],
            "facility_id": np.where(i % 2 == 0, "F01", "F02"), "visit_time": visit_time,
            "setting": np.array(["outpatient", "emergency", "inpatient"])[i % 3],
            "name": "张三", "id_number": "310105198001011234", "phone": "13912345678",
            "sex": np.array(["M", "F", "U", "男", "女"])[i % 5],
            "birth_date": pd.Timestamp("1980-01-01"), "address": "长宁路1号",
            "residence_code": "310105001000", "lat": np.nan, "lon": np.nan,
            "chief_complaint": "发热2天", "diagnosis_codes": np.array(["J06.9", "A09.9;R50.9", ""])[i % 3],
            "temperature_c": 36.5 + (i % 30) / 10, "updated_at": visit_time + pd.Timedelta(minutes=10),
        }
    )  # fmt: skip
    frame["visit_time"] = frame["visit_time"].astype("datetime64[us]")
    frame["updated_at"] = frame["updated_at"].astype("datetime64[us]")
    return frame[list(RAW_COLUMNS)]


def _plant(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """Put the invented identifiers into ``rows`` (visit ids made unique per row)."""
    out = frame.copy()
    for column, value in SECRETS.items():
        values = [f"{value}-{r}" if column == "source_visit_id" else value for r in rows]
        out.loc[rows, column] = values
    return out


def _assert_reconciles(raw: pd.DataFrame, result: RawValidation) -> None:
    assert len(result.valid) + len(result.quarantine) == len(raw)
    assert list(result.quarantine.columns) == ["row_ref", "reason"]
    assert set(result.valid["row_ref"]).isdisjoint(result.quarantine["row_ref"])
    assert result.report["valid"] == len(result.valid)
    assert result.report["quarantined"] == len(result.quarantine)


def _assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS.values():
            assert secret not in text


def test_valid_batch_passes_unchanged() -> None:
    raw = _raw(60)
    result = validate_raw_batch(raw, now=NOW)
    assert result.quarantine.empty
    pd.testing.assert_frame_equal(result.valid, raw)
    assert result.report["success"] is True and result.report["rows"] == 60
    assert all(e["success"] and e["unexpected_count"] == 0 for e in result.report["expectations"])


BAD_VALUES: list[tuple[str, Any, str]] = [
    ("source_visit_id", None, "source_visit_id missing"),
    ("source_visit_id", "  ", "source_visit_id missing"),
    ("facility_id", "", "facility_id missing"),
    ("facility_id", None, "facility_id missing"),
    ("visit_time", pd.NaT, "visit_time missing or not a date"),
    ("visit_time", pd.Timestamp("1999-12-31 23:00"), "visit_time before 2000-01-01"),
    ("visit_time", pd.Timestamp(NOW) + pd.Timedelta(hours=2), FUTURE),
    (
        "updated_at",
        pd.Timestamp("2025-02-27 08:00"),
        "updated_at more than 1 day before visit_time",
    ),
    ("temperature_c", 385.0, TEMPERATURE),
    ("temperature_c", 29.9, TEMPERATURE),
    ("temperature_c", np.inf, TEMPERATURE),
    ("residence_code", "31010500100", RESIDENCE),
    ("residence_code", SECRETS["id_number"], RESIDENCE),
    ("diagnosis_codes", "J06.9;banana", DIAGNOSIS),
    ("diagnosis_codes", f"J06.9;{SECRETS['phone']}", DIAGNOSIS),
    ("diagnosis_codes", "J0", DIAGNOSIS),
    ("setting", "ward", SETTING),
    ("setting", None, SETTING),
    ("sex", "X", SEX),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_VALUES)
def test_row_problem_quarantines_exactly_the_bad_rows(column: str, value: Any, reason: str) -> None:
    bad = [2, 7]
    raw = _plant(_raw(12), bad)
    raw[column] = raw[column].astype("object")
    raw.loc[bad, column] = value
    if column in ("visit_time", "updated_at"):
        raw[column] = raw[column].astype("datetime64[us]")
    if column == "visit_time":
        raw.loc[bad, "updated_at"] = pd.NaT  # optional; keeps the one problem under test
    result = validate_raw_batch(raw, now=NOW)
    _assert_reconciles(raw, result)
    assert result.quarantine["row_ref"].tolist() == ["test:2", "test:7"]
    assert result.quarantine["reason"].tolist() == [reason, reason]
    assert result.valid.index.tolist() == [i for i in range(12) if i not in bad]
    failed = [e for e in result.report["expectations"] if not e["success"]]
    assert [(e["check"], e["unexpected_count"]) for e in failed] == [(reason, 2)]
    _assert_no_secrets(str(result.quarantine), str(result.report), repr(result.report))


def test_tolerated_values_pass() -> None:
    raw = _raw(8)
    raw["temperature_c"] = [np.nan, 30.0, 45.0, 36.6, np.nan, 37.0, 38.0, 39.0]
    raw["residence_code"] = [None, " 310105002000 ", "", *["310105001000"] * 5]
    raw["diagnosis_codes"] = [
        " j06.9 , r50.9 ",
        "",
        None,
        "A09",
        "J11.1;",
        "U07.1",
        "Z00.00",
        "B05",
    ]
    raw["sex"] = [None, "男", "女", " F ", "U", "M", "F", None]
    raw["setting"] = [" Emergency ", "INPATIENT", *["outpatient"] * 6]
    raw["updated_at"] = raw["updated_at"].astype("object")
    raw.loc[0, "updated_at"] = None
    raw.loc[1, "updated_at"] = raw.loc[1, "visit_time"] - pd.Timedelta(hours=23)
    raw["updated_at"] = raw["updated_at"].astype("datetime64[us]")
    raw.loc[2, ["visit_time", "updated_at"]] = pd.Timestamp(NOW) + pd.Timedelta(minutes=59)
    result = validate_raw_batch(raw, now=NOW)
    assert result.quarantine.empty, result.quarantine


def test_future_is_relative_to_now() -> None:
    raw = _raw(5)
    raw.loc[[1, 3], ["visit_time", "updated_at"]] = pd.Timestamp("2025-06-01 10:00")
    early = validate_raw_batch(raw, now=NOW)
    assert early.quarantine["row_ref"].tolist() == ["test:1", "test:3"]
    assert set(early.quarantine["reason"]) == {FUTURE}
    assert validate_raw_batch(raw, now=datetime(2025, 6, 1, 9, 30)).quarantine.empty
    late = validate_raw_batch(raw, now=datetime(2025, 6, 1, 8, 30))
    assert len(late.quarantine) == 2
    assert validate_raw_batch(raw, now=NOW, clock_skew=timedelta(days=100)).quarantine.empty


def test_time_zone_aware_now_is_converted_to_local_time() -> None:
    raw = _raw(3)
    raw.loc[1, ["visit_time", "updated_at"]] = pd.Timestamp("2025-03-02 12:30")
    # 04:00 UTC is 12:00 in Shanghai: 12:30 lies within the hour of clock skew.
    utc = pd.Timestamp("2025-03-02 04:00", tz="UTC").to_pydatetime()
    assert validate_raw_batch(raw, now=utc).quarantine.empty
    utc_earlier = pd.Timestamp("2025-03-02 03:00", tz="UTC").to_pydatetime()
    assert validate_raw_batch(raw, now=utc_earlier).quarantine["row_ref"].tolist() == ["test:1"]


def test_several_problems_give_one_row_listing_them() -> None:
    raw = _plant(_raw(6), [4])
    raw.loc[4, "visit_time"] = pd.Timestamp("2026-01-01")
    raw.loc[4, "updated_at"] = pd.Timestamp("2026-01-01 00:10")
    raw.loc[4, "temperature_c"] = 385.0
    raw.loc[4, "sex"] = "X"
    result = validate_raw_batch(raw, now=NOW)
    _assert_reconciles(raw, result)
    assert result.quarantine["row_ref"].tolist() == ["test:4"]
    assert result.quarantine["reason"].iloc[0] == f"{FUTURE}; {TEMPERATURE}; {SEX}"
    _assert_no_secrets(str(result.quarantine), str(result.report))


def test_conflicting_duplicates_quarantined_but_copies_and_versions_pass() -> None:
    raw = _raw(10)
    same = ["source_visit_id", "facility_id", "visit_time", "updated_at"]
    raw.loc[1, same] = raw.loc[0, same].to_numpy()
    raw.loc[1, "chief_complaint"] = "腹泻1天"  # conflicting: same id and version time
    raw.loc[3, RAW_COLUMNS[2:]] = raw.loc[2, list(RAW_COLUMNS[2:])].to_numpy()  # exact copy
    raw.loc[5, same] = raw.loc[4, same].to_numpy()
    raw.loc[5, "updated_at"] = raw.loc[4, "updated_at"] + pd.Timedelta(hours=1)  # later version
    raw.loc[7, "source_visit_id"] = raw.loc[6, "source_visit_id"]  # other facility, same id
    raw.loc[7, "updated_at"] = raw.loc[6, "updated_at"]
    assert raw.loc[6, "facility_id"] != raw.loc[7, "facility_id"]
    result = validate_raw_batch(raw, now=NOW)
    _assert_reconciles(raw, result)
    assert result.quarantine["row_ref"].tolist() == ["test:0", "test:1"]
    assert set(result.quarantine["reason"]) == {DUPLICATE}


def test_duplicate_conflict_found_when_updated_at_missing() -> None:
    raw = _raw(3)
    raw["updated_at"] = pd.Series([pd.NaT] * 3, dtype="datetime64[us]")
    raw.loc[1, ["source_visit_id", "facility_id"]] = raw.loc[0, ["source_visit_id", "facility_id"]]
    result = validate_raw_batch(raw, now=NOW)
    assert result.quarantine["row_ref"].tolist() == ["test:0", "test:1"]


def test_missing_columns_reject_the_batch() -> None:
    raw = _plant(_raw(4), [0]).drop(columns=["visit_time", "facility_id"])
    with pytest.raises(BatchRejected, match=r"missing column\(s\) facility_id, visit_time$") as e:
        validate_raw_batch(raw, now=NOW)
    _assert_no_secrets(str(e.value))


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("temperature_c", ["38.5", "37", None, "x"], "column temperature_c has type str, expected a number"),
        ("lat", ["31.2"] * 4, "column lat has type str, expected a number"),
        ("visit_time", [SECRETS["phone"], "soon", None, "x"], "column visit_time has type str, expected datetimes"),
        ("visit_time", [1, 2, 3, 4], "column visit_time has type int64, expected datetimes"),
        ("updated_at", [True] * 4, "column updated_at has type bool, expected datetimes"),
    ],
)  # fmt: skip
def test_wrong_types_reject_the_batch(column: str, values: list[Any], message: str) -> None:
    raw = _plant(_raw(4), [0, 1])
    raw[column] = values
    with pytest.raises(BatchRejected, match=message) as e:
        validate_raw_batch(raw, now=NOW)
    assert str(e.value).startswith("batch rejected: ")
    _assert_no_secrets(str(e.value))


def test_several_type_problems_are_named_together() -> None:
    raw = _raw(2)
    raw["temperature_c"] = ["a", "b"]
    raw["lon"] = ["c", "d"]
    with pytest.raises(BatchRejected, match=r"temperature_c .*; column lon "):
        validate_raw_batch(raw, now=NOW)


def test_all_null_and_text_columns_are_accepted() -> None:
    raw = _raw(4)
    raw["lat"] = pd.Series([None] * 4, dtype="object")
    raw["temperature_c"] = pd.Series([None] * 4, dtype="object")
    raw["updated_at"] = pd.Series([None] * 4, dtype="object")
    raw["visit_time"] = ["2025-03-01T08:00:00", "2025-03-01 09:00", "2030-01-01T00:00+08:00", "x"]
    result = validate_raw_batch(raw, now=NOW)
    _assert_reconciles(raw, result)
    assert result.quarantine.to_dict("list") == {
        "row_ref": ["test:2", "test:3"],
        "reason": [FUTURE, "visit_time missing or not a date"],
    }


def test_unreadable_updated_at_is_quarantined() -> None:
    raw = _raw(3)
    raw["updated_at"] = ["2025-03-01 08:30", "yesterday", None]
    result = validate_raw_batch(raw, now=NOW)
    assert result.quarantine.to_dict("list") == {
        "row_ref": ["test:1"],
        "reason": ["updated_at not a date"],
    }


def test_callers_index_kept_and_input_not_modified() -> None:
    raw = _raw(4)
    raw.index = pd.Index([40, 10, 30, 10])  # not unique, not sorted
    raw.loc[30, "temperature_c"] = 3.0
    before = raw.copy()
    result = validate_raw_batch(raw, now=NOW)
    pd.testing.assert_frame_equal(raw, before)
    assert result.valid.index.tolist() == [40, 10, 10]
    assert result.quarantine["row_ref"].tolist() == ["test:2"]
    assert result.quarantine.index.tolist() == [0]


def test_empty_batch() -> None:
    result = validate_raw_batch(_raw(0), now=NOW)
    assert result.valid.empty and result.quarantine.empty and result.report["rows"] == 0


def test_deterministic() -> None:
    raw = _plant(_raw(40), [3, 9, 20])
    raw.loc[[3, 9], "temperature_c"] = 390.0
    raw.loc[20, "sex"] = "?"
    raw.loc[20, "residence_code"] = "1234"
    first, second = validate_raw_batch(raw, now=NOW), validate_raw_batch(raw, now=NOW)
    pd.testing.assert_frame_equal(first.valid, second.valid)
    pd.testing.assert_frame_equal(first.quarantine, second.quarantine)
    assert first.report == second.report
    assert first.quarantine["reason"].tolist() == [TEMPERATURE, TEMPERATURE, f"{RESIDENCE}; {SEX}"]


@pytest.fixture(scope="module")
def his_raw(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    from extract.his import extract_his_visits
    from sentinel.simulator.run import SimulationOptions, simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(SimulationOptions(out=out, days=14, start=date(2025, 5, 1), seed=2, formats=("his",)))
    return extract_his_visits(f"sqlite:///{out / 'his.sqlite'}")


def test_simulated_his_batch_quarantines_temperatures_times_ten(his_raw: pd.DataFrame) -> None:
    result = validate_raw_batch(his_raw, now=datetime(2025, 6, 1))
    _assert_reconciles(his_raw, result)
    hot = his_raw["temperature_c"] > 45
    assert hot.sum() > 0
    assert sorted(result.quarantine["row_ref"]) == sorted(his_raw.loc[hot, "row_ref"])
    assert set(result.quarantine["reason"]) == {TEMPERATURE}
    for column in ("name", "id_number", "phone", "address"):
        for value in his_raw.loc[hot, column].dropna():
            assert str(value) not in str(result.report)
            assert not result.quarantine["reason"].str.contains(str(value), regex=False).any()


def test_100k_rows_quarantine_exactly_the_bad_ones() -> None:
    # speed is measured in bench/ingest.py, not here
    raw = _raw(100_000)
    raw.loc[::1000, "temperature_c"] = 385.0
    result = validate_raw_batch(raw, now=NOW)
    assert len(result.quarantine) == 100
    assert len(result.valid) == 99_900


OFFLINE_PROBE = """
import socket, sys
calls = []
def refuse(*args, **kwargs):
    calls.append(args)
    raise OSError("network disabled in test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import pandas as pd
from datetime import datetime
sys.path.insert(0, sys.argv[1])
from tests.transform.test_validation import _raw
from transform.validation import validate_raw_batch
result = validate_raw_batch(_raw(20), now=datetime(2025, 3, 2, 12))
import os
assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
print(len(result.valid), len(calls))
"""


def test_gx_runs_offline_and_writes_no_files(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    env.pop("GX_ANALYTICS_ENABLED", None)
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE, str(REPO)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["20", "0"]  # all valid, no connection attempted
    assert list(tmp_path.iterdir()) == []


def test_codes_read_as_numbers_are_checked_as_text() -> None:
    raw = _raw(3)
    raw["residence_code"] = [310105001000.0, np.nan, 3101050.0]
    raw["source_visit_id"] = [1, 2, 3]
    result = validate_raw_batch(raw, now=NOW)
    assert result.quarantine.to_dict("list") == {"row_ref": ["test:2"], "reason": [RESIDENCE]}
