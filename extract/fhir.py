"""Extract visits from a FHIR R4 bulk export (NDJSON), such as the simulator writes.

Layout
------
``folder/`` holds ``Patient``, ``Encounter``, ``Condition`` and ``Observation`` NDJSON
files (``<Type>.ndjson``, or split as ``<Type>-<n>.ndjson`` / ``<Type>.<n>.ndjson``),
directly and/or in one subfolder per export (``YYYYMMDD/``, read in name order). Each line
is one resource of the file's type.

Reading rule
------------
Per resource id the version with the latest ``meta.lastUpdated`` wins (on equal times,
the one read last). An Encounter's current Conditions and Observations are those whose
latest ``lastUpdated`` equals the Encounter's: a correction re-emits everything current,
so an older Condition that was not re-emitted was dropped by the correction. One raw
visit record (:data:`transform.records.RAW_COLUMNS`) comes out per current Encounter.

Mapping
-------
``Encounter.class`` AMB/EMER/IMP → setting; ``period.start`` → visit_time (offsets
converted to Shanghai local time); ``reasonCode`` text → chief_complaint;
``serviceProvider`` → facility_id. The Patient's latest version gives sex (male M,
female F, else U), birth date, MRN (``urn:sentinel:mrn:<facility>``; the Patient id when
there is none) → source_patient_id, resident ID, name, phone, home address text, its
street-code extension → residence_code and geolocation → lat/lon. Current Conditions'
ICD-10 codes, in ``-dx<n>`` id order, → diagnosis_codes; body temperature (LOINC 8310-5,
``Cel`` or ``[degF]``; the highest if several) → temperature_c; updated_at is the latest
``lastUpdated`` of the Encounter and its current Conditions/Observations.

Accounting
----------
Every non-blank line ends in exactly one of ``used``, ``superseded`` (an older version,
or a Condition/Observation left behind by a later Encounter version), ``rejected`` (with
a reason in :attr:`FhirExtract.rejected`) or ``ignored`` (valid but out of scope: an
Observation that is not a body temperature, a Patient no current Encounter refers to,
or an Encounter not changed after ``since`` with its resources). Rejection reasons and
``row_ref`` (``<subfolder>/<file>:<line>``) never quote ids or values: FHIR ids carry
visit and medical-record numbers.

Validation
----------
Full validation with ``fhir.resources`` (R4B models) costs about 100-200 µs per
resource (~0.5 ms per visit with its Patient, Condition and Observation: ~2,000 visits/s,
six minutes for a simulated year). Lines are therefore decoded with typed ``msgspec``
structs of the fields read here, which enforce JSON syntax, UTF-8, the file's
``resourceType``, the types of those fields and the R4 cardinalities this reader relies
on (``id``, ``meta.lastUpdated``, ``Encounter.status`` and ``class``,
``Condition.subject``, ``Observation.status`` and ``code``). Only lines that fail this
decode are validated with ``fhir.resources``, to say what is wrong with them.
``validate="full"`` validates every line with ``fhir.resources`` as well (for audits
of a new feed: ~1,600 visits/s against ~30,000).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import pandas as pd

from extract.errors import SourceError
from extract.times import parse_local_times, to_local_naive
from transform.records import RAW_COLUMNS

Validation = Literal["fast", "full"]
RESOURCE_TYPES: tuple[str, ...] = ("Patient", "Encounter", "Condition", "Observation")
MRN_SYSTEM_PREFIX = "urn:sentinel:mrn:"
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
STREET_CODE_URL = "urn:sentinel:street-code"
GEOLOCATION_URL = "http://hl7.org/fhir/StructureDefinition/geolocation"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
LOINC_SYSTEM = "http://loinc.org"
BODY_TEMPERATURE = "8310-5"
SETTING_OF_CLASS: dict[str, str] = {"AMB": "outpatient", "EMER": "emergency", "IMP": "inpatient"}
SEX_OF_GENDER: dict[str, str] = {"male": "M", "female": "F"}
CELSIUS_OF_UNIT: frozenset[str] = frozenset({"Cel", "[degF]"})
VOIDED_STATUS = frozenset({"entered-in-error", "cancelled"})
VOIDED_VERIFICATION = frozenset({"entered-in-error", "refuted"})
REJECTED_COLUMNS: tuple[str, ...] = ("row_ref", "reason")
_TIME = "datetime64[us]"
_DTYPES: dict[str, str] = (
    {c: "str" for c in RAW_COLUMNS}
    | dict.fromkeys(("visit_time", "birth_date", "updated_at"), _TIME)
    | dict.fromkeys(("lat", "lon", "temperature_c"), "float64")
)


# Typed views of the fields read (unknown fields are skipped without building objects).
class _Meta(msgspec.Struct):
    lastUpdated: str


class _Reference(msgspec.Struct):
    reference: str | None = None


class _Coding(msgspec.Struct):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class _Concept(msgspec.Struct):
    coding: list[_Coding] = []
    text: str | None = None


class _Period(msgspec.Struct):
    start: str | None = None


class _Quantity(msgspec.Struct):
    value: float | None = None
    unit: str | None = None
    code: str | None = None


class _Identifier(msgspec.Struct):
    system: str | None = None
    value: str | None = None


class _Name(msgspec.Struct):
    text: str | None = None
    family: str | None = None
    given: list[str] = []


class _Extension(msgspec.Struct):
    url: str
    valueCode: str | None = None
    valueDecimal: float | None = None
    extension: list[_Extension] = []


class _Address(msgspec.Struct):
    use: str | None = None
    text: str | None = None
    extension: list[_Extension] = []


class _Patient(msgspec.Struct, tag_field="resourceType", tag="Patient"):
    id: str
    meta: _Meta
    identifier: list[_Identifier] = []
    name: list[_Name] = []
    telecom: list[_Identifier] = []
    gender: str | None = None
    birthDate: str | None = None
    address: list[_Address] = []


class _Encounter(msgspec.Struct, tag_field="resourceType", tag="Encounter"):
    id: str
    meta: _Meta
    status: str
    class_: _Coding = msgspec.field(name="class")
    subject: _Reference | None = None
    period: _Period | None = None
    reasonCode: list[_Concept] = []
    serviceProvider: _Reference | None = None


class _Condition(msgspec.Struct, tag_field="resourceType", tag="Condition"):
    id: str
    meta: _Meta
    subject: _Reference
    code: _Concept | None = None
    verificationStatus: _Concept | None = None
    encounter: _Reference | None = None


class _Observation(msgspec.Struct, tag_field="resourceType", tag="Observation"):
    id: str
    meta: _Meta
    status: str
    code: _Concept
    encounter: _Reference | None = None
    valueQuantity: _Quantity | None = None


def _patient_row(p: _Patient) -> tuple[Any, ...]:
    mrn = next(
        (i.value for i in p.identifier if (i.system or "").startswith(MRN_SYSTEM_PREFIX)), None
    )
    id_number = next((i.value for i in p.identifier if i.system == RESIDENT_ID_SYSTEM), None)
    name = None
    if p.name:
        first = p.name[0]
        name = first.text or ("".join([first.family or "", *first.given]) or None)
    phone = next((t.value for t in p.telecom if t.system == "phone"), None)
    address = street = None
    lat = lon = float("nan")
    if p.address:
        home = next((a for a in p.address if a.use == "home"), p.address[0])
        address = home.text
        for ext in home.extension:
            if ext.url == STREET_CODE_URL:
                street = ext.valueCode
            elif ext.url == GEOLOCATION_URL:
                for part in ext.extension:
                    if part.url == "latitude" and part.valueDecimal is not None:
                        lat = part.valueDecimal
                    elif part.url == "longitude" and part.valueDecimal is not None:
                        lon = part.valueDecimal
    sex = SEX_OF_GENDER.get(p.gender or "", "U")
    return (
        p.id,
        p.meta.lastUpdated,
        mrn,
        id_number,
        name,
        phone,
        sex,
        p.birthDate,
        address,
        street,
        lat,
        lon,
    )


def _encounter_row(e: _Encounter) -> tuple[Any, ...]:
    texts = [
        t
        for t in (
            c.text or next((x.display for x in c.coding if x.display), None) for c in e.reasonCode
        )
        if t
    ]
    return (
        e.id,
        e.meta.lastUpdated,
        e.status,
        e.class_.code,
        e.subject.reference if e.subject else None,
        e.period.start if e.period else None,
        "；".join(texts),
        e.serviceProvider.reference if e.serviceProvider else None,
    )


def _condition_row(c: _Condition) -> tuple[Any, ...]:
    code = None
    if c.code is not None:
        code = next((x.code for x in c.code.coding if x.system == ICD10_SYSTEM and x.code), None)
    verification = (
        c.verificationStatus.coding[0].code
        if c.verificationStatus and c.verificationStatus.coding
        else None
    )
    return (
        c.id,
        c.meta.lastUpdated,
        c.encounter.reference if c.encounter else None,
        code,
        verification,
    )


def _observation_row(o: _Observation) -> tuple[Any, ...]:
    is_temp = any(x.system == LOINC_SYSTEM and x.code == BODY_TEMPERATURE for x in o.code.coding)
    q = o.valueQuantity
    return (
        o.id,
        o.meta.lastUpdated,
        o.encounter.reference if o.encounter else None,
        o.status,
        is_temp,
        q.value if q else None,
        (q.code or q.unit) if q else None,
    )


_FIELDS: dict[
    str, tuple[type[msgspec.Struct], Callable[[Any], tuple[Any, ...]], tuple[str, ...]]
] = {
    "Patient": (
        _Patient,
        _patient_row,
        (
            "id",
            "last_updated",
            "mrn",
            "id_number",
            "name",
            "phone",
            "sex",
            "birth_date",
            "address",
            "residence_code",
            "lat",
            "lon",
        ),
    ),
    "Encounter": (
        _Encounter,
        _encounter_row,
        (
            "id",
            "last_updated",
            "status",
            "class_code",
            "subject",
            "start",
            "chief_complaint",
            "provider",
        ),
    ),
    "Condition": (
        _Condition,
        _condition_row,
        ("id", "last_updated", "encounter", "code", "verification"),
    ),
    "Observation": (
        _Observation,
        _observation_row,
        ("id", "last_updated", "encounter", "status", "is_temperature", "value", "unit"),
    ),
}


@dataclass(frozen=True)
class LineCounts:
    """What became of the non-blank lines of one resource type."""

    lines: int = 0
    used: int = 0
    superseded: int = 0
    rejected: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class FhirExtract:
    """Raw visits of a FHIR export, the lines that could not be used, and the accounting.

    Attributes
    ----------
    visits : DataFrame
        Raw visit records (``RAW_COLUMNS``), one per current Encounter.
    rejected : DataFrame
        ``row_ref``, ``reason`` of every rejected line.
    counts : dict of str to LineCounts
        Per resource type: ``lines == used + superseded + rejected + ignored``.
    """

    visits: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, LineCounts]

    @property
    def lines(self) -> int:
        """Non-blank lines read, all types."""
        return sum(c.lines for c in self.counts.values())


def export_files(folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """The NDJSON files of an export, per resource type, as ``(row_ref prefix, path)``.

    Raises
    ------
    SourceError
        If ``folder`` is not a folder or holds no NDJSON file of the four types.
    """
    if not folder.is_dir():
        raise SourceError(f"FHIR export folder {folder} does not exist or is not a folder")
    dirs = [folder, *sorted(d for d in folder.iterdir() if d.is_dir())]
    files: dict[str, list[tuple[str, Path]]] = {t: [] for t in RESOURCE_TYPES}
    for d in dirs:
        for rtype in RESOURCE_TYPES:
            pattern = re.compile(rf"{rtype}(?:[.-]\d+)?\.ndjson")
            for path in sorted(d.iterdir()):
                if path.is_file() and pattern.fullmatch(path.name):
                    ref = path.name if d == folder else f"{d.name}/{path.name}"
                    files[rtype].append((ref, path))
    if not any(files.values()):
        raise SourceError(
            f"FHIR export folder {folder} holds no Patient/Encounter/Condition/Observation NDJSON file"
        )
    return files


def _fhir_problem(rtype: str, line: bytes) -> str | None:
    """The first ``fhir.resources`` (R4B) validation error of ``line``, None if valid."""
    import pydantic
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(rtype).model_validate_json(line)
    except pydantic.ValidationError as exc:
        # loc and message only: the "input" part would quote identifiers
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(resource)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return None


def _invalid_typed(rtype: str, line: bytes, exc: msgspec.ValidationError) -> str:
    """Why a line that is JSON did not decode as ``rtype`` (no values quoted)."""
    obj = msgspec.json.decode(line)
    if not isinstance(obj, dict):
        return f"not a JSON object (in {rtype} file)"
    found = obj.get("resourceType")
    if found != rtype:
        shown = repr(found)[:40] if isinstance(found, str) else "missing"
        return f"resourceType {shown} in a {rtype} file"
    problem = _fhir_problem(rtype, line)
    if problem is not None:
        return f"invalid {rtype}: {problem}"
    return f"unusable {rtype} (valid for fhir.resources): {exc}"


class _Reader:
    """Decodes the lines of one resource type into a frame; collects rejections."""

    def __init__(self, validate: Validation) -> None:
        self.validate = validate
        self.rejected: list[tuple[str, str, str]] = []
        self.lines: dict[str, int] = {}

    def read(self, rtype: str, files: Iterable[tuple[str, Path]]) -> pd.DataFrame:
        struct, row_of, columns = _FIELDS[rtype]
        decoder = msgspec.json.Decoder(struct)
        rows: list[tuple[Any, ...]] = []
        refs: list[str] = []
        n = 0
        for prefix, path in files:
            data = path.read_bytes()
            try:
                data.decode("utf-8")  # msgspec does not check bytes of skipped fields
                utf8_ok = True
            except UnicodeDecodeError:
                utf8_ok = False
            for lineno, line in enumerate(data.split(b"\n"), start=1):
                if not line or line.isspace():
                    continue
                n += 1
                ref = f"{prefix}:{lineno}"
                reason = None
                try:
                    if not utf8_ok:
                        line.decode("utf-8")
                    res = decoder.decode(line)
                except msgspec.ValidationError as exc:  # (a DecodeError: catch it first)
                    reason = _invalid_typed(rtype, line, exc)
                except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                    reason = f"invalid JSON: {exc}"
                if reason is None and self.validate == "full":
                    problem = _fhir_problem(rtype, line)
                    reason = None if problem is None else f"invalid {rtype}: {problem}"
                if reason is not None:
                    self.rejected.append((ref, reason, rtype))
                    continue
                rows.append(row_of(res))
                refs.append(ref)
        self.lines[rtype] = n
        frame = pd.DataFrame.from_records(rows, columns=list(columns), nrows=len(rows))
        frame["row_ref"] = pd.Series(refs, dtype="str")
        frame["updated"] = parse_local_times(frame["last_updated"].astype("str"))
        return frame

    def reject(self, rtype: str, frame: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
        """Record ``frame`` rows with a reason as rejected; return the others."""
        bad = reasons.notna().to_numpy()
        for ref, reason in zip(frame["row_ref"][bad], reasons[bad], strict=True):
            self.rejected.append((ref, reason, rtype))
        return frame[~bad]


def _split(frame: pd.DataFrame, keep: np.ndarray) -> tuple[pd.DataFrame, int]:
    """The rows of ``frame`` to keep, and how many were left out."""
    return frame[keep], int((~keep).sum())


def _first_reason(frame: pd.DataFrame, checks: list[tuple[Any, str | pd.Series]]) -> pd.Series:
    """Per row, the first reason (text, or a Series of texts) whose condition holds."""
    out = pd.Series(None, index=frame.index, dtype="str")
    for cond, reason in reversed(checks):
        out = out.mask(np.asarray(cond, dtype=bool), reason)
    return out


def _latest(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The latest version per id (later line on equal times) and how many were older."""
    latest = frame.sort_values("updated", kind="stable").drop_duplicates("id", keep="last")
    return latest, len(frame) - len(latest)


def _target(refs: pd.Series, rtype: str) -> pd.Series:
    """Ids of ``<rtype>/<id>`` references (relative or absolute URL), else missing."""
    text = refs.astype("str")
    valid = text.str.contains(rf"(?:^|/){rtype}/[A-Za-z0-9\-.]{{1,64}}$", regex=True, na=False)
    return text.str.replace(rf"^(?:.*/)?{rtype}/", "", regex=True).where(valid)


def _dx_order(ids: pd.Series) -> pd.Series:
    """The ``n`` of ``…-dx<n>`` Condition ids (others after, by id)."""
    text = ids.astype("str")
    numbered = text.str.contains(r"-dx\d{1,9}$", regex=True, na=False)
    n = pd.to_numeric(text.str.replace(r"^.*-dx", "", regex=True).where(numbered))
    return n.astype("float64").fillna(np.inf)


def _joined_codes(cond: pd.DataFrame) -> pd.Series:
    """``;``-joined ICD-10 codes per Encounter id, in ``…-dx<n>`` order."""
    cond = cond.assign(order=_dx_order(cond["id"])).sort_values(["encounter_id", "order", "id"])
    joined: dict[str, str] = {}
    # a dict beats groupby(...).agg(";".join) tenfold: most visits have one code
    for eid, code in zip(cond["encounter_id"].tolist(), cond["code"].tolist(), strict=True):
        prev = joined.get(eid)
        joined[eid] = code if prev is None else f"{prev};{code}"
    return pd.Series(joined, dtype="str")


def _child_fates(
    reader: _Reader,
    rtype: str,
    children: pd.DataFrame,
    encounters: pd.DataFrame,
    rejected_refs: pd.Series,
) -> tuple[pd.DataFrame, int]:
    """Attach Conditions/Observations to their Encounter's latest version.

    Returns the current children (with ``encounter_id``) and how many were left behind by a
    later Encounter version; rejects those pointing to unknown or rejected Encounters.
    """
    enc_id = _target(children["encounter"], "Encounter")
    enc_updated = enc_id.map(encounters.set_index("id")["updated"])
    enc_rejected = enc_id.map(rejected_refs).astype("str")
    reasons = _first_reason(
        children,
        [
            (children["encounter"].isna(), "no encounter reference"),
            (enc_id.isna(), "encounter reference is not Encounter/<id>"),
            (enc_rejected.notna(), "its Encounter was rejected (" + enc_rejected + ")"),
            (enc_updated.isna(), "its Encounter is not in the export"),
            (children["updated"] > enc_updated, "lastUpdated later than its Encounter's"),
        ],
    )
    children = children.assign(encounter_id=enc_id, enc_updated=enc_updated)
    kept = reader.reject(rtype, children, reasons)
    current = kept[kept["updated"] == kept["enc_updated"]]
    return current, len(kept) - len(current)


def extract_fhir_visits(
    folder: Path,
    source: str = "fhir",
    since: datetime | None = None,
    *,
    validate: Validation = "fast",
) -> FhirExtract:
    """Read the visits of a FHIR R4 bulk export (see the module doc for the rules).

    Parameters
    ----------
    folder : pathlib.Path
        The export: NDJSON files directly in it and/or in day subfolders.
    source : str
        Configured source name, written to the ``source`` column.
    since : datetime, optional
        Keep only visits whose ``updated_at`` (latest ``lastUpdated`` of the Encounter and
        its current Conditions/Observations) is after this; naive means Shanghai local.
        Rejections are reported whatever ``since``.
    validate : {"fast", "full"}
        ``"full"`` also validates every line with ``fhir.resources`` (slow).

    Returns
    -------
    FhirExtract
        Raw visit records, rejected lines with reasons, and per-type line counts.

    Raises
    ------
    SourceError
        If ``folder`` is missing or holds no NDJSON file of the four types. Bad lines
        never raise: they are rejected.
    """
    files = export_files(Path(folder))
    reader = _Reader(validate)
    superseded: dict[str, int] = {}
    ignored: dict[str, int] = dict.fromkeys(RESOURCE_TYPES, 0)
    latest: dict[str, pd.DataFrame] = {}
    for rtype in RESOURCE_TYPES:
        frame = reader.read(rtype, files[rtype])
        no_time = _first_reason(
            frame, [(frame["updated"].isna(), "meta.lastUpdated is not an instant")]
        )
        latest[rtype], superseded[rtype] = _latest(reader.reject(rtype, frame, no_time))

    patients = latest["Patient"].set_index("id")
    enc, rejected_enc = _current_encounters(reader, latest["Encounter"], patients)
    cond, stale_cond = _child_fates(
        reader, "Condition", _usable_conditions(reader, latest["Condition"]), enc, rejected_enc
    )
    obs = latest["Observation"]
    is_temp = obs["is_temperature"].astype(bool)
    ignored["Observation"] += int((~is_temp).sum())
    obs, stale_obs = _child_fates(
        reader, "Observation", _usable_temperatures(reader, obs[is_temp]), enc, rejected_enc
    )
    superseded["Condition"] += stale_cond
    superseded["Observation"] += stale_obs

    child_updated = pd.concat([cond[["encounter_id", "updated"]], obs[["encounter_id", "updated"]]])
    newest_child = enc["id"].map(child_updated.groupby("encounter_id")["updated"].max())
    enc = enc.assign(updated_at=pd.concat([enc["updated"], newest_child], axis=1).max(axis=1))
    if since is not None:
        old = enc["updated_at"] <= to_local_naive(since)
        ignored["Encounter"] += int(old.sum())
        enc = enc[~old]
        current = pd.Index(enc["id"])
        cond, gone_cond = _split(cond, current.get_indexer(pd.Index(cond["encounter_id"])) >= 0)
        obs, gone_obs = _split(obs, current.get_indexer(pd.Index(obs["encounter_id"])) >= 0)
        ignored["Condition"] += gone_cond
        ignored["Observation"] += gone_obs

    codes = _joined_codes(cond)
    temps = obs.groupby("encounter_id")["celsius"].max()
    visits = _visits(enc, patients, codes, temps, source)

    n_patients = enc["patient_id"].nunique()
    ignored["Patient"] += len(patients) - n_patients
    used = {
        "Patient": n_patients,
        "Encounter": len(enc),
        "Condition": len(cond),
        "Observation": len(obs),
    }
    rejected = pd.DataFrame(reader.rejected, columns=[*REJECTED_COLUMNS, "type"], dtype="str")
    counts = {
        rtype: LineCounts(
            lines=reader.lines[rtype],
            used=used[rtype],
            superseded=superseded[rtype],
            rejected=int((rejected["type"] == rtype).sum()),
            ignored=ignored[rtype],
        )
        for rtype in RESOURCE_TYPES
    }
    return FhirExtract(visits=visits, rejected=rejected[list(REJECTED_COLUMNS)], counts=counts)


def _current_encounters(
    reader: _Reader, enc: pd.DataFrame, patients: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series]:
    """Usable latest Encounters (with setting, facility, patient, visit time) and the
    ``row_ref`` by id of the rejected ones."""
    patient_id = _target(enc["subject"], "Patient")
    setting = enc["class_code"].map(SETTING_OF_CLASS)
    facility = _target(enc["provider"], "Organization")
    visit_time = parse_local_times(enc["start"])
    reasons = _first_reason(
        enc,
        [
            (
                enc["status"].isin(VOIDED_STATUS),
                "Encounter.status is entered-in-error or cancelled",
            ),
            (enc["subject"].isna(), "no subject: the Patient cannot be resolved"),
            (patient_id.isna(), "subject is not a Patient/<id> reference"),
            (
                patients.index.get_indexer(pd.Index(patient_id)) < 0,
                "subject Patient is not in the export",
            ),
            (setting.isna(), "Encounter.class is not AMB, EMER or IMP"),
            (facility.isna(), "serviceProvider is not an Organization/<id> reference"),
            (visit_time.isna(), "period.start missing or not a dateTime"),
        ],
    )
    enc = enc.assign(
        patient_id=patient_id, setting=setting, facility_id=facility, visit_time=visit_time
    )
    rejected = enc.loc[reasons.notna(), ["id", "row_ref"]].set_index("id")["row_ref"]
    return reader.reject("Encounter", enc, reasons), rejected


def _usable_conditions(reader: _Reader, cond: pd.DataFrame) -> pd.DataFrame:
    """Latest Conditions that carry an ICD-10 code and are not voided."""
    reasons = _first_reason(
        cond,
        [
            (
                cond["verification"].isin(VOIDED_VERIFICATION),
                "Condition.verificationStatus is entered-in-error or refuted",
            ),
            (cond["code"].isna(), f"no ICD-10 coding ({ICD10_SYSTEM})"),
        ],
    )
    return reader.reject("Condition", cond, reasons)


def _usable_temperatures(reader: _Reader, obs: pd.DataFrame) -> pd.DataFrame:
    """Latest body-temperature Observations with a value in a known unit (adds ``celsius``)."""
    unit = obs["unit"].astype("str")
    reasons = _first_reason(
        obs,
        [
            (
                obs["status"].isin(VOIDED_STATUS),
                "Observation.status is entered-in-error or cancelled",
            ),
            (obs["value"].isna(), "no valueQuantity.value"),
            (~unit.isin(CELSIUS_OF_UNIT), "temperature unit is not Cel or [degF]"),
        ],
    )
    obs = reader.reject("Observation", obs, reasons)
    value = obs["value"].astype("float64")
    fahrenheit = obs["unit"] == "[degF]"
    return obs.assign(celsius=value.where(~fahrenheit, (value - 32.0) * 5.0 / 9.0))


def _visits(
    enc: pd.DataFrame, patients: pd.DataFrame, codes: pd.Series, temps: pd.Series, source: str
) -> pd.DataFrame:
    """Raw visit records of the current Encounters joined with their Patient and children."""
    pat = patients.reindex(enc["patient_id"]).set_axis(enc.index)
    raw = pd.DataFrame(
        {
            "source": pd.Series(source, index=enc.index, dtype="str"),
            "row_ref": enc["row_ref"],
            "source_visit_id": enc["id"],
            # without an MRN the Patient resource id is the stable source patient id
            "source_patient_id": pat["mrn"].fillna(enc["patient_id"]),
            "facility_id": enc["facility_id"],
            "visit_time": enc["visit_time"],
            "setting": enc["setting"],
            "name": pat["name"],
            "id_number": pat["id_number"],
            "phone": pat["phone"],
            "sex": pat["sex"],
            "birth_date": pd.to_datetime(pat["birth_date"], format="ISO8601", errors="coerce"),
            "address": pat["address"],
            "residence_code": pat["residence_code"],
            "lat": pat["lat"],
            "lon": pat["lon"],
            "chief_complaint": enc["chief_complaint"],
            "diagnosis_codes": enc["id"].map(codes).fillna(""),
            "temperature_c": enc["id"].map(temps),
            "updated_at": enc["updated_at"],
        }
    )
    return raw[list(RAW_COLUMNS)].astype(_DTYPES).reset_index(drop=True)
