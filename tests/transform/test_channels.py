"""The same simulated visits delivered by SQL, HL7 files and FHIR land as the same warehouse rows."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from extract.sources import extract_source
from geo.areas import load_area_set
from sentinel.simulator.run import SimulationOptions, simulate
from transform.ingest import ingest_raw_visits
from warehouse.store import Warehouse

KEY = b"channel-test-key"
COMPARED = [
    "visit_key", "facility_id", "visit_date", "visit_time", "setting", "patient_key", "sex",
    "age_years", "age_group", "street_code", "chief_complaint", "diagnosis_codes", "temperature_c",
    "updated_at",
]  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("channels")
    simulate(SimulationOptions(out=out, days=6, start=date(2025, 11, 3), seed=9))
    return out


def _load(kind: str, location: str, home: Path) -> pd.DataFrame:
    got = extract_source(kind, location)  # type: ignore[arg-type]
    wh = Warehouse(home)
    result = ingest_raw_visits(
        got.visits, warehouse=wh, area=load_area_set(), key=KEY, source=kind, location=location,
        rejected=got.rejected,
    )  # fmt: skip
    # only the simulator's mis-keyed temperatures (38.5 typed as 385) are held back
    reasons = set(wh.read_table("quarantine")["reason"]) if result.quarantined else set()
    assert reasons <= {"temperature_c outside 30-45 °C"}
    frame = wh.read_table("visits")
    return frame[COMPARED].sort_values("visit_key").reset_index(drop=True)


def test_sql_hl7_fhir_give_the_same_rows(
    sources: Path, tmp_path: Path, identifier_scan: Any
) -> None:
    sql = _load("sql", f"sqlite:///{sources / 'his.sqlite'}", tmp_path / "sql")
    hl7 = _load("hl7", str(sources / "hl7"), tmp_path / "hl7")
    fhir = _load("fhir", str(sources / "fhir"), tmp_path / "fhir")
    assert len(sql) > 10_000
    for name, other in (("hl7", hl7), ("fhir", fhir)):
        pd.testing.assert_frame_equal(other, sql, check_dtype=False, obj=name)
    # every channel carried identifiers, inside complaints too; none reached a warehouse
    with sqlite3.connect(sources / "his.sqlite") as con:
        patients = pd.read_sql(
            "SELECT name, id_card_no, mobile, address, patient_id FROM patients", con
        )
        complaints = pd.read_sql("SELECT chief_complaint FROM registrations", con)[
            "chief_complaint"
        ]
    planted = complaints[complaints.str.contains("患者|电话|身份证")]
    assert len(planted) > 10
    names = set(patients["name"])
    planted_names = {n for n in names if any(n in c for c in planted)}
    exact = set(patients["address"]) | set(patients["patient_id"]) | names
    for channel in ("sql", "hl7", "fhir"):
        assert identifier_scan(tmp_path / channel, names, exact, planted_names) > 100_000
