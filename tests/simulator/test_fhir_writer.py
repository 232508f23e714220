"""The simulated FHIR R4 NDJSON export: layout, R4 validity, references, round trips."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fhir.resources.R4B import get_fhir_model_class

from sentinel.simulator.fhir import RESOURCE_TYPES, FhirNdjsonWriter
from sentinel.simulator.records import VISIT_COLUMNS, DayBatch

DAYS = ("20260105", "20260106")


def write_all(out: Path, batches: list[DayBatch]) -> list[int]:
    with FhirNdjsonWriter(out) as writer:
        return [writer.write(b) for b in batches]


def iso(value: pd.Timestamp) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%S}+08:00"


def text(value: object) -> str:
    return "" if pd.isna(value) else str(value)


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate JSON keys in {keys}"
    return dict(pairs)


def read(folder: Path, rtype: str) -> list[dict[str, Any]]:
    raw = (folder / f"{rtype}.ndjson").read_bytes().decode("utf-8")
    assert raw == "" or raw.endswith("\n")
    return [json.loads(line, object_pairs_hook=unique_keys) for line in raw.split("\n")[:-1]]


def latest(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per id, the version with the latest ``meta.lastUpdated`` (what a reader keeps)."""
    out: dict[str, dict[str, Any]] = {}
    for r in resources:
        prev = out.get(r["id"])
        if prev is None or r["meta"]["lastUpdated"] > prev["meta"]["lastUpdated"]:
            out[r["id"]] = r
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, rows: pd.DataFrame, to_batches: Any) -> Path:
    out = tmp_path_factory.mktemp("fhir")
    assert write_all(out, to_batches(rows)) == [29, 19]
    return out


@pytest.fixture(scope="module")
def export(written: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {day: {t: read(written / day, t) for t in RESOURCE_TYPES} for day in DAYS}


def test_one_folder_per_arrival_day_with_four_files(written: Path) -> None:
    assert sorted(p.name for p in written.iterdir()) == list(DAYS)
    for day in DAYS:
        names = sorted(p.name for p in (written / day).iterdir())
        assert names == sorted(f"{t}.ndjson" for t in RESOURCE_TYPES)


def test_lines_are_compact_utf8_json(written: Path) -> None:
    raw = (written / "20260105" / "Patient.ndjson").read_bytes().decode("utf-8")
    assert "欧阳明轩" in raw
    assert "\\u" not in raw
    assert ", " not in raw and '": ' not in raw


def test_every_resource_validates_as_r4(export: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    count = 0
    for files in export.values():
        for rtype, resources in files.items():
            model = get_fhir_model_class(rtype)
            for r in resources:
                assert r["resourceType"] == rtype
                model.model_validate(r)
                count += 1
    assert count == 29 + 19


def test_references_resolve_within_each_folder(
    export: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    for files in export.values():
        ids = {f"{t}/{r['id']}" for t, rs in files.items() for r in rs}
        for rtype in ("Encounter", "Condition", "Observation"):
            for r in files[rtype]:
                assert r["subject"]["reference"] in ids
                if rtype != "Encounter":
                    assert r["encounter"]["reference"] in ids
                else:
                    assert r["serviceProvider"]["reference"].startswith("Organization/F0")
        patients = [r["id"] for r in files["Patient"]]
        assert len(patients) == len(set(patients))  # one Patient per id and folder


def test_visits_round_trip(
    export: dict[str, dict[str, list[dict[str, Any]]]], rows: pd.DataFrame
) -> None:
    last = rows.sort_values("updated_at").drop_duplicates("visit_id", keep="last")
    every = {t: [r for day in DAYS for r in export[day][t]] for t in RESOURCE_TYPES}
    encounters = latest(every["Encounter"])
    patients = latest(every["Patient"])
    # the reader's rule: a visit's Conditions/Observation are those of its latest version
    conditions: dict[str, list[dict[str, Any]]] = {}
    observations: dict[str, dict[str, Any]] = {}
    for rtype in ("Condition", "Observation"):
        for r in every[rtype]:
            vid = r["encounter"]["reference"].removeprefix("Encounter/")
            if r["meta"]["lastUpdated"] != encounters[vid]["meta"]["lastUpdated"]:
                continue
            if rtype == "Condition":
                conditions.setdefault(vid, []).append(r)
            else:
                observations[vid] = r
    assert set(encounters) == set(last["visit_id"])
    for row in last.itertuples():
        enc = encounters[row.visit_id]
        assert enc["meta"]["lastUpdated"] == iso(row.updated_at)
        assert enc["status"] == "finished"
        assert enc["class"]["code"] == {"outpatient": "AMB", "emergency": "EMER"}[row.setting]
        assert enc["period"]["start"] == iso(row.visit_time)
        assert enc["serviceType"]["text"] == row.dept
        assert enc["serviceProvider"]["reference"] == f"Organization/{row.facility_id}"
        complaint = text(row.chief_complaint)
        assert enc.get("reasonCode", [{"text": ""}])[0]["text"] == complaint

        codes = [c for c in text(row.diagnosis_codes).split(";") if c]
        names = [c for c in text(row.diagnosis_names).split(";") if c]
        got = sorted(conditions.get(row.visit_id, []), key=lambda c: c["id"])
        assert [c["id"] for c in got] == [f"{row.visit_id}-dx{n}" for n in range(1, len(codes) + 1)]
        assert [c["code"]["coding"][0]["code"] for c in got] == codes
        assert [c["code"]["coding"][0]["display"] for c in got] == names
        for c in got:
            assert c["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"
            assert c["clinicalStatus"]["coding"][0]["code"] == "active"
            assert c["verificationStatus"]["coding"][0]["code"] == "provisional"
            assert c["category"][0]["coding"][0]["code"] == "encounter-diagnosis"

        obs = observations.get(row.visit_id)
        if math.isnan(row.temperature_c):
            assert obs is None
        else:
            assert obs is not None
            assert obs["id"] == f"{row.visit_id}-temp"
            assert obs["code"]["coding"][0] == {
                "system": "http://loinc.org",
                "code": "8310-5",
                "display": "Body temperature",
            }
            assert obs["valueQuantity"]["value"] == row.temperature_c
            assert obs["valueQuantity"]["code"] == obs["valueQuantity"]["unit"] == "Cel"
            assert obs["effectiveDateTime"] == iso(row.visit_time)

        patient = patients[enc["subject"]["reference"].removeprefix("Patient/")]
        assert patient["id"] == f"{row.facility_id}-{row.patient_id}"
        ident = {i["system"]: i["value"] for i in patient["identifier"]}
        expected = {f"urn:sentinel:mrn:{row.facility_id}": row.patient_id}
        if text(row.id_number):
            expected["urn:oid:2.16.156.10011.1.3"] = row.id_number
        assert ident == expected
        name = patient["name"][0]
        assert name["text"] == row.name
        assert name.get("family", "") + "".join(name.get("given", [])) == row.name
        assert patient["gender"] == {"M": "male", "F": "female"}[row.sex]
        assert patient["birthDate"] == f"{row.birth_date:%Y-%m-%d}"
        assert patient.get("telecom", [{"value": ""}])[0]["value"] == text(row.phone)
        addr = patient.get("address", [{}])[0]
        assert addr.get("text", "") == text(row.address)
        ext = {e["url"]: e for e in addr.get("extension", [])}
        street = text(row.residence_code)
        if street:
            assert ext["urn:sentinel:street-code"]["valueCode"] == street
        else:
            assert "urn:sentinel:street-code" not in ext
        geo = ext.get("http://hl7.org/fhir/StructureDefinition/geolocation")
        if math.isnan(row.lat):
            assert geo is None
        else:
            assert geo is not None
            coords = {e["url"]: e["valueDecimal"] for e in geo["extension"]}
            assert coords == {"latitude": row.lat, "longitude": row.lon}


def test_compound_surname_and_names(export: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    names = {
        p["name"][0]["text"]: (p["name"][0].get("family"), p["name"][0].get("given"))
        for p in export["20260105"]["Patient"]
    }
    assert names["欧阳明轩"] == ("欧阳", ["明轩"])
    assert names["司马懿"] == ("司马", ["懿"])
    assert names["买买提·艾力"] == (None, ["买买提·艾力"])


def test_corrections_carry_later_last_updated(
    export: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    (first,) = [e for e in export["20260105"]["Encounter"] if e["id"] == "F02-20260105-00001"]
    (fixed,) = [e for e in export["20260106"]["Encounter"] if e["id"] == "F02-20260105-00001"]
    assert fixed["meta"]["lastUpdated"] > first["meta"]["lastUpdated"]
    assert fixed["period"] == first["period"]
    # the correction dropped the second diagnosis: only dx1 is re-emitted
    dx = [c["id"] for c in export["20260106"]["Condition"] if c["id"].startswith(fixed["id"])]
    assert dx == ["F02-20260105-00001-dx1"]
    # a visit corrected on its arrival day: both versions, in version order
    same = [e for e in export["20260106"]["Encounter"] if e["id"] == "F03-20260106-00001"]
    assert [e["meta"]["lastUpdated"] for e in same] == [
        "2026-01-06T21:40:00+08:00",
        "2026-01-06T23:05:00+08:00",
    ]
    temps = [o for o in export["20260106"]["Observation"] if o["id"] == "F03-20260106-00001-temp"]
    assert [o["meta"]["lastUpdated"] for o in temps] == ["2026-01-06T23:05:00+08:00"]


def test_same_batches_give_identical_bytes(
    tmp_path: Path, rows: pd.DataFrame, to_batches: Any
) -> None:
    write_all(tmp_path / "a", to_batches(rows))
    write_all(tmp_path / "b", to_batches(rows.iloc[::-1].reset_index(drop=True)))
    for day in DAYS:
        for rtype in RESOURCE_TYPES:
            name = f"{day}/{rtype}.ndjson"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_empty_day_writes_empty_files(tmp_path: Path, rows: pd.DataFrame) -> None:
    empty = rows.iloc[:0][list(VISIT_COLUMNS)]
    with FhirNdjsonWriter(tmp_path) as writer:
        assert writer.write(DayBatch(date(2026, 1, 7), empty, empty)) == 0
    for rtype in RESOURCE_TYPES:
        assert (tmp_path / "20260107" / f"{rtype}.ndjson").read_bytes() == b""


def test_days_must_advance(tmp_path: Path, rows: pd.DataFrame, to_batches: Any) -> None:
    first = to_batches(rows)[0]
    writer = FhirNdjsonWriter(tmp_path)
    writer.write(first)
    with pytest.raises(ValueError, match="does not follow"):
        writer.write(first)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(first)
