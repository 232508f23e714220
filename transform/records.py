"""The internal raw visit record every source converts to at the edge.

Sources (``extract/``) yield pandas DataFrames with these columns; nothing else crosses
into ``transform/``. Identifier columns are present here and nowhere downstream:
:func:`transform.deidentify.deidentify_visits` drops them.
"""

from __future__ import annotations

RAW_COLUMNS: tuple[str, ...] = (
    "source",  # configured source name, e.g. "his"
    "row_ref",  # where the record came from (table:key, file:line, message id): no identifiers
    "source_visit_id",
    "source_patient_id",  # identifier
    "facility_id",
    "visit_time",  # datetime64, naive local time
    "setting",  # outpatient | emergency | inpatient
    "name",  # identifier
    "id_number",  # identifier
    "phone",  # identifier
    "sex",  # M | F | U or 男 | 女, may be missing
    "birth_date",  # identifier
    "address",  # identifier
    "residence_code",
    "lat",  # identifier
    "lon",  # identifier
    "chief_complaint",
    "diagnosis_codes",  # ";"-separated ICD-10 codes
    "temperature_c",
    "updated_at",  # version time of the record at the source
)

IDENTIFIER_COLUMNS: tuple[str, ...] = (
    "source_patient_id",
    "source_visit_id",
    "name",
    "id_number",
    "phone",
    "birth_date",
    "address",
    "lat",
    "lon",
)
