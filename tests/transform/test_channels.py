"""The same simulated visits delivered by SQL, HL7 files, MLLP, FHIR and a line list land as the
same warehouse rows, and no identifier any of them carried reaches a warehouse."""

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


def _linelist(sources: Path, target: Path) -> Path:
    """The HIS visits written as a line list in the contract of DESIGN.md (identifiers included)."""
    raw = extract_source("sql", f"sqlite:///{sources / 'his.sqlite'}").visits
    frame = pd.DataFrame(
        {
            "visit_id": raw["source_visit_id"], "facility_id": raw["facility_id"],
            "visit_time": raw["visit_time"].dt.strftime("%Y-%m-%dT%H:%M:%S"), "setting": raw["setting"],
            "patient_id": raw["source_patient_id"], "name": raw["name"], "id_number": raw["id_number"],
            "phone": raw["phone"], "sex": raw["sex"].map({"M": "男", "F": "女"}),
            "birth_date": raw["birth_date"].dt.strftime("%Y-%m-%d"), "address": raw["address"],
            "residence_code": raw["residence_code"], "lat": "", "lon": "",
            "chief_complaint": raw["chief_complaint"], "diagnosis_codes": raw["diagnosis_codes"],
            "temperature_c": raw["temperature_c"],
            "updated_at": raw["updated_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        }
    )  # fmt: skip
    frame.to_csv(target, index=False, encoding="utf-8")
    return target


def _mllp(sources: Path, home: Path) -> pd.DataFrame:
    """Every HL7 message sent over MLLP to a live listener, then what it loaded."""
    import threading

    from extract.mllp import MllpClient
    from sentinel.ingesting import listen_mllp
    from sentinel.settings import Settings

    settings = Settings(home=home, hmac_key=KEY.decode())
    stop, port, bound = threading.Event(), [0], threading.Event()
    worker = threading.Thread(
        target=listen_mllp, args=(settings, "127.0.0.1:0"),
        kwargs={"stop": stop, "on_bound": lambda p: (port.__setitem__(0, p), bound.set()), "flush_seconds": 0.5},
        daemon=True,
    )  # fmt: skip
    worker.start()
    assert bound.wait(30)
    with MllpClient("127.0.0.1", port[0]) as client:
        for f in sorted((sources / "hl7").glob("*.hl7")):
            segments = f.read_bytes().decode("utf-8").split("\r")
            message: list[str] = []
            for seg in [*segments, "MSH|"]:
                if seg.startswith("MSH|") and message:
                    assert "|AA|" in client.send("\r".join(message) + "\r")
                    message = []
                if seg.startswith("MSH|") or (
                    message and seg and not seg.startswith(("BTS|", "FTS|"))
                ):
                    message.append(seg)
            # the sentinel "MSH|" closes the last message and starts nothing
    stop.set()
    worker.join(60)
    frame = Warehouse(home / "warehouse").read_table("visits")
    return frame[COMPARED].sort_values("visit_key").reset_index(drop=True)


def test_sql_hl7_fhir_give_the_same_rows(
    sources: Path, tmp_path: Path, identifier_scan: Any
) -> None:
    sql = _load("sql", f"sqlite:///{sources / 'his.sqlite'}", tmp_path / "sql")
    hl7 = _load("hl7", str(sources / "hl7"), tmp_path / "hl7")
    fhir = _load("fhir", str(sources / "fhir"), tmp_path / "fhir")
    linelist = _load(
        "linelist", str(_linelist(sources, tmp_path / "linelist.csv")), tmp_path / "linelist"
    )
    mllp = _mllp(sources, tmp_path / "mllp")
    assert len(sql) > 10_000
    for name, other in (("hl7", hl7), ("fhir", fhir), ("linelist", linelist), ("mllp", mllp)):
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
    for channel in ("sql", "hl7", "fhir", "linelist", "mllp"):
        assert identifier_scan(tmp_path / channel, names, exact, planted_names) > 100_000
