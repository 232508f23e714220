"""FHIR R4 NDJSON export → raw visits: agrees with the HIS database, rejects bad lines."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from extract import fhir
from extract.errors import SourceError
from extract.fhir import FhirExtract, extract_fhir_visits
from extract.his import extract_his_visits
from sentinel.simulator import fhir as simulated
from sentinel.simulator.run import SimulationOptions, simulate
from transform.records import RAW_COLUMNS

ASSETS = Path(__file__).parent / "assets" / "fhir"
VISIT_FIELDS = (
    "facility_id", "setting", "visit_time", "chief_complaint", "diagnosis_codes",
    "temperature_c", "updated_at", "source_patient_id",
)  # fmt: skip
IDENTITY_FIELDS = ("sex", "birth_date", "name", "id_number", "phone", "address")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(SimulationOptions(out=out, days=5, formats=("his", "fhir")))
    return out


@pytest.fixture(scope="module")
def extract(sources: Path) -> FhirExtract:
    return extract_fhir_visits(sources / "fhir")


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a == b) | (a.isna() & b.isna())


def _reused_mrns(export: Path) -> set[str]:
    """MRNs that name two different people in the export (the simulator's 9-digit MRNs
    occasionally collide between residents of one facility)."""
    seen: dict[str, set[tuple[str, ...]]] = {}
    for path in export.glob("*/Patient.ndjson"):
        for line in path.read_text(encoding="utf-8").splitlines():
            res = json.loads(line)
            who = (res["name"][0]["text"], res["identifier"][1]["value"], res["birthDate"])
            seen.setdefault(res["identifier"][0]["value"], set()).add(who)
    return {mrn for mrn, people in seen.items() if len(people) > 1}


def test_constants_match_the_simulator() -> None:
    assert fhir.MRN_SYSTEM_PREFIX == simulated.MRN_SYSTEM
    assert fhir.RESIDENT_ID_SYSTEM == simulated.RESIDENT_ID_SYSTEM
    assert fhir.STREET_CODE_URL == simulated.STREET_CODE_URL
    assert fhir.GEOLOCATION_URL == simulated.GEOLOCATION_URL
    assert fhir.ICD10_SYSTEM == simulated.ICD10_SYSTEM


def test_fhir_visits_equal_his_visits(sources: Path, extract: FhirExtract) -> None:
    his = extract_his_visits(f"sqlite:///{sources / 'his.sqlite'}").set_index("source_visit_id")
    got = extract.visits.set_index("source_visit_id")
    assert list(extract.visits.columns) == list(RAW_COLUMNS)
    assert got.index.is_unique and set(got.index) == set(his.index)
    his = his.loc[got.index]
    his["sex"] = his["sex"].fillna("U")
    for column in VISIT_FIELDS:
        same = _same(got[column], his[column])
        assert same.all(), f"{column}: {(~same).sum()} visits differ"
    # The HIS keeps a patient's first row (INSERT IGNORE); FHIR re-emits the Patient as of
    # each visit and the reader keeps the latest. They agree on who the patient is, except
    # where an MRN names two people; the simulator records a street code on some visits of
    # a patient and not others, so residence_code agrees for one-visit patients.
    same_person = ~got["source_patient_id"].isin(_reused_mrns(sources / "fhir"))
    one_visit = ~got["source_patient_id"].duplicated(keep=False)
    assert same_person.mean() > 0.99 and one_visit.mean() > 0.8
    for column, rows in [(c, same_person) for c in IDENTITY_FIELDS] + [
        ("residence_code", one_visit)
    ]:
        same = _same(got.loc[rows, column], his.loc[rows, column])
        assert same.all(), f"{column}: {(~same).sum()} visits differ"
    assert got["lat"].notna().all() and got["lat"].between(31.1, 31.3).all()
    assert (got["source"] == "fhir").all()
    assert got["row_ref"].str.fullmatch(r"\d{8}/Encounter\.ndjson:\d+").all()


def test_every_line_is_accounted_for(extract: FhirExtract) -> None:
    assert extract.rejected.empty
    for rtype, c in extract.counts.items():
        assert c.lines == c.used + c.superseded + c.rejected + c.ignored, rtype
    enc = extract.counts["Encounter"]
    assert enc.used == len(extract.visits) and enc.superseded > 0  # corrections were read
    assert extract.counts["Condition"].superseded > 0


def test_since_keeps_only_later_changes(sources: Path, extract: FhirExtract) -> None:
    since = datetime(2025, 1, 3, 12, 0)
    got = extract_fhir_visits(sources / "fhir", since=since)
    expected = extract.visits[extract.visits["updated_at"] > since]
    assert len(got.visits) == len(expected) > 0
    pd.testing.assert_frame_equal(got.visits, expected.reset_index(drop=True))
    enc = got.counts["Encounter"]
    assert enc.ignored == len(extract.visits) - len(expected)
    assert enc.lines == enc.used + enc.superseded + enc.rejected + enc.ignored


def test_since_with_offset_is_converted_to_local(sources: Path, extract: FhirExtract) -> None:
    aware = datetime.fromisoformat("2025-01-03T04:00:00+00:00")  # 12:00 in Shanghai
    naive = extract_fhir_visits(sources / "fhir", since=datetime(2025, 1, 3, 12, 0))
    pd.testing.assert_frame_equal(
        extract_fhir_visits(sources / "fhir", since=aware).visits, naive.visits
    )


def test_flat_folder_is_read(sources: Path, tmp_path: Path) -> None:
    for path in (sources / "fhir" / "20250101").iterdir():
        shutil.copy(path, tmp_path / path.name)
    got = extract_fhir_visits(tmp_path)
    day = extract_fhir_visits(sources / "fhir" / "20250101")
    assert len(got.visits) > 100 and got.rejected.empty
    assert got.visits["row_ref"].str.fullmatch(r"Encounter\.ndjson:\d+").all()
    pd.testing.assert_frame_equal(got.visits, day.visits)


def test_malformed_lines_are_rejected_with_reasons() -> None:
    got = extract_fhir_visits(ASSETS / "malformed")
    reasons = dict(zip(got.rejected["row_ref"], got.rejected["reason"], strict=True))
    assert reasons["Patient.ndjson:2"].startswith("invalid JSON: 'utf-8' codec")
    assert reasons["Patient.ndjson:3"] == "resourceType 'Encounter' in a Patient file"
    assert reasons["Encounter.ndjson:3"] == "no subject: the Patient cannot be resolved"
    assert reasons["Encounter.ndjson:4"].startswith("invalid JSON:")
    assert reasons["Encounter.ndjson:6"] == "Encounter.class is not AMB, EMER or IMP"
    assert reasons["Encounter.ndjson:7"] == "invalid JSON: Input data was truncated"
    assert reasons["Condition.ndjson:7"] == "its Encounter is not in the export"
    assert reasons["Condition.ndjson:8"] == "its Encounter was rejected (Encounter.ndjson:3)"
    assert reasons["Condition.ndjson:9"].startswith("no ICD-10 coding")
    assert "valueQuantity.value" in reasons["Observation.ndjson:4"]
    assert len(reasons) == 10
    # no identifier (resource ids carry visit numbers and MRNs) in any reason
    assert not got.rejected["reason"].str.contains(r"E\d|F01-A|NOPE").any()
    for rtype, c in got.counts.items():
        assert c.lines == c.used + c.superseded + c.rejected + c.ignored, rtype


def test_good_lines_of_a_malformed_export_are_kept() -> None:
    got = extract_fhir_visits(ASSETS / "malformed").visits.set_index("source_visit_id")
    assert sorted(got.index) == ["E1", "E3"]
    e1, e3 = got.loc["E1"], got.loc["E3"]
    # the latest Encounter version, its current Conditions in -dx<n> order (dx3 was
    # dropped by the correction), temperature, patient details
    assert e1["chief_complaint"] == "发热、咳嗽2天" and e1["setting"] == "emergency"
    assert e1["diagnosis_codes"] == "J06.9;J20.9;I10"
    assert e1["temperature_c"] == 38.5
    assert e1["updated_at"] == pd.Timestamp("2025-01-05 11:00")
    assert (e1["sex"], e1["source_patient_id"], e1["residence_code"]) == ("M", "A1", "310105002000")
    assert (e1["lat"], e1["lon"]) == (31.22, 121.43)
    assert e1["row_ref"] == "Encounter.ndjson:2"
    # Z converted to Shanghai time; degF converted to Celsius; unknown gender is U
    assert e3["visit_time"] == pd.Timestamp("2025-01-05 09:30")
    assert e3["temperature_c"] == pytest.approx(38.0)
    assert e3["sex"] == "F" and e3["diagnosis_codes"] == ""


def test_full_validation_accepts_the_good_lines() -> None:
    fast = extract_fhir_visits(ASSETS / "malformed")
    full = extract_fhir_visits(ASSETS / "malformed", validate="full")
    pd.testing.assert_frame_equal(fast.visits, full.visits)
    assert set(full.rejected["row_ref"]) == set(fast.rejected["row_ref"])


def test_missing_folder_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        extract_fhir_visits(tmp_path / "nowhere")
    with pytest.raises(SourceError, match="no Patient/Encounter"):
        extract_fhir_visits(tmp_path)
