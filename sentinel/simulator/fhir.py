"""The simulated FHIR R4 source: one bulk-export-style NDJSON folder per arrival day.

Layout (what a reader relies on)
--------------------------------
``out_dir/YYYYMMDD/`` for each arrival day holds ``Patient.ndjson``, ``Encounter.ndjson``,
``Condition.ndjson`` and ``Observation.ndjson``: UTF-8 (no ``\\u`` escapes of Chinese
text), one compact JSON resource per line, every line ending in ``\\n``. All four files
are written, possibly empty, each atomically (``.part`` then rename). Lines are ordered
by version time, then visit id; first versions before corrections at equal times.

Ids and versions
----------------
* ``Patient/<facility_id>-<patient_id>`` (a hash ``h-<sha1>`` if that is not a valid
  FHIR id), ``Encounter/<visit_id>``, ``Condition/<visit_id>-dx<n>`` (n = 1, 2 … in the
  order of the visit's codes), ``Observation/<visit_id>-temp``.
* ``meta.lastUpdated`` is the version time (``created_at`` of a first version,
  ``updated_at`` of a correction) with ``+08:00``. A correction re-emits the Encounter
  and all of its current Conditions and Observation with the same ids and the later
  ``lastUpdated``; a folder may hold several versions of one id (a visit corrected on
  the day it arrived). **A reader keeps, per id, the line with the latest
  ``lastUpdated``, and only the Conditions/Observation whose ``lastUpdated`` equals their
  Encounter's latest one**: a correction that drops a diagnosis or a temperature does not
  emit a deletion, it simply no longer emits that resource.
* A patient appears once per folder, in its latest version of that day.
* ``Encounter.serviceProvider`` points to ``Organization/<facility_id>``, which is not
  part of the export (the facility list is reference data, not feed data).

Lines are built column-wise with Arrow string kernels (UTF-8 throughout, no Python object
per resource): a year of visits makes millions of resources.

All times are local Shanghai time with ``+08:00``; ``Encounter.period.start``,
``Condition.recordedDate`` and ``Observation.effectiveDateTime`` are the visit time.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.simulator.hl7v2 import (
    EMPTY,
    NULL,
    STRING,
    Array,
    check_settings,
    data_of,
    explode_diagnoses,
    join_parts,
    lookup,
    optional_parts,
    split_names,
    string_column,
    timestamps,
    versions_in_order,
)
from sentinel.simulator.records import DayBatch

RESOURCE_TYPES: tuple[str, ...] = ("Patient", "Encounter", "Condition", "Observation")

MRN_SYSTEM = "urn:sentinel:mrn:"
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
"""Resident ID card number (居民身份证号), as Chinese health-information (WS/T 500 CDA)
practice identifies it; ``2.16.156.10011.1.1`` there is the document serial number."""
STREET_CODE_URL = "urn:sentinel:street-code"
GEOLOCATION_URL = "http://hl7.org/fhir/StructureDefinition/geolocation"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
DEFAULT_DISTRICT = "长宁区"
"""District of addresses whose source has no residence code (the simulated district)."""

SHANGHAI_DISTRICTS: dict[str, str] = {
    "310101": "黄浦区", "310104": "徐汇区", "310105": "长宁区", "310106": "静安区",
    "310107": "普陀区", "310109": "虹口区", "310110": "杨浦区", "310112": "闵行区",
    "310113": "宝山区", "310114": "嘉定区", "310115": "浦东新区", "310116": "金山区",
    "310117": "松江区", "310118": "青浦区", "310120": "奉贤区", "310151": "崇明区",
}  # fmt: skip


_ENCODER = msgspec.json.Encoder()
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_ENCOUNTER_CLASS: dict[str, dict[str, str]] = {
    "outpatient": {"system": _ACT_CODE, "code": "AMB", "display": "ambulatory"},
    "emergency": {"system": _ACT_CODE, "code": "EMER", "display": "emergency"},
    "inpatient": {"system": _ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
}
_GENDER: dict[str, str] = {"M": "male", "F": "female", "男": "male", "女": "female"}
_USED = (
    "visit_id", "facility_id", "dept", "setting", "visit_time", "patient_id", "name",
    "id_number", "phone", "sex", "birth_date", "address", "residence_code", "lat", "lon",
    "chief_complaint", "diagnosis_codes", "diagnosis_names", "temperature_c",
)  # fmt: skip
_FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"
_JSON_SPECIAL = r'["\\\x00-\x1f]'  # what a JSON string must escape


def _coded(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def _json(value: object) -> str:
    return _ENCODER.encode(value).decode("utf-8")


_CLASS_JSON = {k: f',"class":{_json(v)}' for k, v in _ENCOUNTER_CLASS.items()}
_GENDER_JSON = {k: f',"gender":"{v}"' for k, v in _GENDER.items()}
_DISTRICT_JSON = {k: f',"district":"{v}"' for k, v in SHANGHAI_DISTRICTS.items()}
_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
_CONDITION_FIXED = (
    f',"clinicalStatus":{_json(_coded(_TERMINOLOGY + "condition-clinical", "active"))}'
    f',"verificationStatus":{_json(_coded(_TERMINOLOGY + "condition-ver-status", "provisional"))}'
    f',"category":{_json([_coded(_TERMINOLOGY + "condition-category", "encounter-diagnosis")])}'
)
_OBSERVATION_FIXED = (
    ',"status":"final"'
    f',"category":{_json([_coded(_TERMINOLOGY + "observation-category", "vital-signs")])}'
    f',"code":{_json(_coded("http://loinc.org", "8310-5", "Body temperature"))}'
)


def _escaped(arr: Array) -> Array:
    """JSON string contents (no quotes) of ``arr``; only columns that need it are touched."""
    if not pc.any(pc.match_substring_regex(arr, _JSON_SPECIAL)).as_py():
        return arr
    values = arr.to_pylist()
    return pa.array([None if v is None else _json(v)[1:-1] for v in values], type=STRING)


def _numbers(values: np.ndarray) -> Array:
    """Finite floats as JSON numbers, others null."""
    arr = pa.array(values, type=pa.float64())
    return pc.if_else(pc.is_finite(arr), pc.cast(arr, STRING), NULL)


def iso_times(column: pd.Series, *, date_only: bool = False) -> Array:
    """ISO 8601 strings of a local time column (``…T…+08:00`` or a date); NaT as null."""
    arr = timestamps(column)
    if date_only:
        return pc.cast(pc.cast(arr, pa.date32(), safe=False), STRING)
    # a cast prints "YYYY-MM-DD HH:MM:SS" more than ten times faster than pc.strftime
    return join_parts(pc.replace_substring(pc.cast(arr, STRING), " ", "T"), "+08:00")


def patient_resource_id(facility_id: str, patient_id: str) -> str:
    """The FHIR id of a source patient: ``<facility_id>-<patient_id>`` when that is valid."""
    rid = f"{facility_id}-{patient_id}"
    if re.fullmatch(_FHIR_ID, rid):
        return rid
    return "h-" + hashlib.sha1(rid.encode("utf-8")).hexdigest()


def _patient_ids(frame: pd.DataFrame) -> Array:
    ids = join_parts(string_column(frame["facility_id"]), "-", string_column(frame["patient_id"]))
    if pc.all(pc.match_substring_regex(ids, _FHIR_ID)).as_py():
        return ids
    return pa.array(
        [
            patient_resource_id(f, p)
            for f, p in zip(
                frame["facility_id"].tolist(), frame["patient_id"].tolist(), strict=True
            )
        ],
        type=STRING,
    )


def render_patients(frame: pd.DataFrame, ids: Array, updated: Array) -> Array:
    """Patient resources (JSON lines with ``\\n``) of ``frame`` (one row per patient)."""
    names = string_column(frame["name"])
    family, given = split_names(names)
    name = optional_parts(
        ',"name":[{"text":"',
        _escaped(names),
        '"',
        optional_parts(',"family":"', _escaped(family), '"'),
        optional_parts(',"given":["', _escaped(given), '"]'),
        "}]",
    )
    identifier = join_parts(
        ',"identifier":[{"system":"',
        _escaped(join_parts(MRN_SYSTEM, string_column(frame["facility_id"]))),
        '","value":"',
        _escaped(string_column(frame["patient_id"])),
        '"}',
        optional_parts(
            f',{{"system":"{RESIDENT_ID_SYSTEM}","value":"',
            _escaped(string_column(frame["id_number"])),
            '"}',
        ),
        "]",
    )
    telecom = optional_parts(
        ',"telecom":[{"system":"phone","value":"',
        _escaped(string_column(frame["phone"])),
        '","use":"mobile"}]',
    )
    gender = lookup(string_column(frame["sex"]), _GENDER_JSON, ',"gender":"unknown"')
    birth = optional_parts(',"birthDate":"', iso_times(frame["birth_date"], date_only=True), '"')
    return join_parts(
        '{"resourceType":"Patient","id":"',
        ids,
        '","meta":{"lastUpdated":"',
        updated,
        '"}',
        identifier,
        name,
        telecom,
        gender,
        birth,
        _addresses(frame),
        "}\n",
    )


def _addresses(frame: pd.DataFrame) -> Array:
    """The ``,"address":[…]`` fragment of each row (``""`` when nothing locates it)."""
    streets = string_column(frame["residence_code"])
    street_ext = join_parts(f'{{"url":"{STREET_CODE_URL}","valueCode":"', _escaped(streets), '"}')
    lat = _numbers(frame["lat"].to_numpy(dtype=float, na_value=np.nan))
    lon = _numbers(frame["lon"].to_numpy(dtype=float, na_value=np.nan))
    geo_ext = join_parts(
        f'{{"url":"{GEOLOCATION_URL}","extension":[{{"url":"latitude","valueDecimal":',
        lat,
        '},{"url":"longitude","valueDecimal":',
        lon,
        "}]}",
    )
    # (binary_join_element_wise with null_handling="skip" drops all-null rows in Arrow 26)
    extensions = pc.if_else(
        pc.and_(pc.is_valid(street_ext), pc.is_valid(geo_ext)),
        join_parts(street_ext, ",", geo_ext),
        pc.coalesce(street_ext, geo_ext),
    )
    text = _escaped(string_column(frame["address"]))
    district = pc.if_else(
        pc.is_null(streets),
        pa.scalar(f',"district":"{DEFAULT_DISTRICT}"', STRING),
        lookup(pc.utf8_slice_codeunits(streets, 0, 6), _DISTRICT_JSON, ""),
    )
    address = join_parts(
        ',"address":[{',
        optional_parts('"extension":[', extensions, "],"),
        '"use":"home"',
        optional_parts(',"text":"', text, '"'),
        ',"city":"上海市"',
        district,
        ',"country":"CN"}]',
    )
    located = pc.or_(pc.is_valid(text), pc.is_valid(extensions))
    return pc.if_else(located, address, EMPTY)


def render_visits(
    frame: pd.DataFrame, patient_ids: Array, updated: Array
) -> tuple[Array, Array, Array]:
    """Encounter, Condition and Observation resources (JSON lines) of the visit versions."""
    vids = string_column(frame["visit_id"])
    if not pc.all(pc.match_substring_regex(join_parts(vids, "-temp"), _FHIR_ID)).as_py():
        raise ValueError("a visit_id cannot be a FHIR id ([A-Za-z0-9-.], at most 59 characters)")
    settings = string_column(frame["setting"])
    check_settings(settings, _ENCOUNTER_CLASS)
    visit_time = iso_times(frame["visit_time"])
    meta = join_parts('","meta":{"lastUpdated":"', updated, '"}')
    refs = join_parts(
        ',"subject":{"reference":"Patient/',
        patient_ids,
        '"},"encounter":{"reference":"Encounter/',
        vids,
        '"}',
    )
    encounters = join_parts(
        '{"resourceType":"Encounter","id":"',
        vids,
        meta,
        ',"status":"finished"',
        lookup(settings, _CLASS_JSON, ""),
        optional_parts(',"serviceType":{"text":"', _escaped(string_column(frame["dept"])), '"}'),
        ',"subject":{"reference":"Patient/',
        patient_ids,
        '"}',
        optional_parts(',"period":{"start":"', visit_time, '"}'),
        optional_parts(
            ',"reasonCode":[{"text":"', _escaped(string_column(frame["chief_complaint"])), '"}]'
        ),
        ',"serviceProvider":{"reference":"',
        _escaped(join_parts("Organization/", string_column(frame["facility_id"]))),
        '"}}\n',
    )

    take, numbers, codes, labels = explode_diagnoses(
        string_column(frame["diagnosis_codes"]), string_column(frame["diagnosis_names"])
    )
    conditions = join_parts(
        '{"resourceType":"Condition","id":"',
        pc.take(vids, take),
        "-dx",
        numbers,
        pc.take(meta, take),
        _CONDITION_FIXED,
        f',"code":{{"coding":[{{"system":"{ICD10_SYSTEM}","code":"',
        _escaped(codes),
        '"',
        optional_parts(',"display":"', _escaped(labels), '"'),
        "}]}",
        pc.take(refs, take),
        optional_parts(',"recordedDate":"', pc.take(visit_time, take), '"'),
        "}\n",
    )

    temps = _numbers(np.round(frame["temperature_c"].to_numpy(dtype=float, na_value=np.nan), 1))
    measured = pc.indices_nonzero(pc.is_valid(temps))
    observations = join_parts(
        '{"resourceType":"Observation","id":"',
        pc.take(vids, measured),
        "-temp",
        pc.take(meta, measured),
        _OBSERVATION_FIXED,
        pc.take(refs, measured),
        optional_parts(',"effectiveDateTime":"', pc.take(visit_time, measured), '"'),
        ',"valueQuantity":{"value":',
        pc.take(temps, measured),
        ',"unit":"Cel","system":"http://unitsofmeasure.org","code":"Cel"}}\n',
    )
    return encounters, conditions, observations


class FhirNdjsonWriter:
    """Writes each day's visit versions as a FHIR R4 NDJSON folder (see module doc).

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder that receives one ``YYYYMMDD/`` folder per arrival day (created if missing).
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._last_day: date | None = None
        self._closed = False

    def write(self, batch: DayBatch) -> int:
        """Write the folder of ``batch.day``; return the number of resources written.

        Raises
        ------
        ValueError
            If the writer is closed, ``batch.day`` does not follow the previous day, or a
            visit id cannot serve as a FHIR id.
        """
        if self._closed:
            raise ValueError("FhirNdjsonWriter is closed")
        if self._last_day is not None and batch.day <= self._last_day:
            raise ValueError(f"batch.day {batch.day} does not follow {self._last_day}")
        self._last_day = batch.day
        frame = versions_in_order(batch, _USED)
        empty = pa.array([], type=STRING)
        resources: dict[str, Array] = dict.fromkeys(RESOURCE_TYPES, empty)
        if len(frame):
            pids = _patient_ids(frame)
            updated = iso_times(frame["_version"])
            latest = ~pd.Series(pids.to_pandas()).duplicated(keep="last").to_numpy()
            keep = np.flatnonzero(latest)
            resources["Patient"] = render_patients(
                frame.iloc[keep], pc.take(pids, keep), pc.take(updated, keep)
            )
            (
                resources["Encounter"],
                resources["Condition"],
                resources["Observation"],
            ) = render_visits(frame, pids, updated)
        folder = self.out_dir / f"{batch.day:%Y%m%d}"
        folder.mkdir(exist_ok=True)
        for rtype, lines in resources.items():
            target = folder / f"{rtype}.ndjson"
            part = target.with_name(target.name + ".part")
            part.write_bytes(data_of(lines))
            os.replace(part, target)
        return sum(len(lines) for lines in resources.values())

    def close(self) -> None:
        """Finish writing (every folder is complete when ``write`` returns)."""
        self._closed = True

    def __enter__(self) -> FhirNdjsonWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
