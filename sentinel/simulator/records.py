"""The simulator's in-memory visit batch: the one shape every source writer consumes.

The simulator produces one :class:`DayBatch` per simulated day, holding what *arrives* in
the source systems on that day (by ``created_at`` / ``updated_at`` date): ``visits`` are
first versions of visits (usually of the same day; late-reporting facilities deliver
visits of earlier days), ``corrections`` are later versions of visits that arrived on this
or an earlier day (same ``visit_id``, later ``updated_at``). Writers (HIS database, HL7 v2
files, FHIR NDJSON) stream the batches in day order; the HIS database keeps only the
latest version of a row, message feeds carry every version. The last batch also carries
whatever arrives after the simulated period.

Columns of ``visits`` and ``corrections`` (pandas DataFrame, one row per visit version):

==================  ==============================================================
visit_id            str, registration number unique across the platform,
                    e.g. ``F03-20260105-00042``
facility_id         str, e.g. ``F03`` (see geo area set facilities)
dept                str, department code: ``GEN`` ``PED`` ``EMR`` ``FEV`` ``DER`` ``OPH`` ``GI``
setting             str, ``outpatient`` | ``emergency``
visit_time          datetime64[us], naive local time (Asia/Shanghai)
patient_id          str, facility medical-record number (source patient id; identifier)
name                str, patient name in Chinese (identifier)
id_number           str, 18-digit resident ID number with valid check digit (identifier)
phone               str, 11-digit mobile number (identifier)
sex                 str, ``M`` | ``F``
birth_date          datetime64[us] (date at midnight) (identifier)
age_years           int
address             str, free-text home address (identifier)
residence_code      str or missing, 12-digit street code where the source records one
true_street_code    str, where the patient really lives (simulator truth, never written
                    into source systems)
lat, lon            float, home coordinates (identifier; written to FHIR only)
chief_complaint     str, free text as the clinician wrote it
diagnosis_codes     str, ICD-10 codes ``;``-separated (may be empty)
diagnosis_names     str, Chinese diagnosis names ``;``-separated, aligned with codes
temperature_c       float or NaN when not measured
created_at          datetime64[us], when the record reached the source system
updated_at          datetime64[us], version time (== created_at for first versions)
category            str, simulator truth: the illness category that generated the visit
outbreak_id         str or missing, the injected outbreak that generated the visit
==================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

VISIT_COLUMNS: tuple[str, ...] = (
    "visit_id",
    "facility_id",
    "dept",
    "setting",
    "visit_time",
    "patient_id",
    "name",
    "id_number",
    "phone",
    "sex",
    "birth_date",
    "age_years",
    "address",
    "residence_code",
    "true_street_code",
    "lat",
    "lon",
    "chief_complaint",
    "diagnosis_codes",
    "diagnosis_names",
    "temperature_c",
    "created_at",
    "updated_at",
    "category",
    "outbreak_id",
)

IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "name",
    "id_number",
    "phone",
    "birth_date",
    "address",
    "lat",
    "lon",
)


@dataclass(frozen=True)
class DayBatch:
    """First versions and corrections of visits that arrive in the sources on ``day``."""

    day: date
    visits: pd.DataFrame
    corrections: pd.DataFrame
