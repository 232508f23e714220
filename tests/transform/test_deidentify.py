import numpy as np
import pandas as pd

from geo.areas import load_area_set
from transform.deidentify import deidentify_visits
from transform.records import IDENTIFIER_COLUMNS, RAW_COLUMNS

KEY = b"test-key"


def _raw(n: int = 3, **over: list[object]) -> pd.DataFrame:
    row = {
        "source": "his", "row_ref": "registrations:R1", "source_visit_id": "R1", "source_patient_id": "P1",
        "facility_id": "F01", "visit_time": pd.Timestamp("2025-03-01 09:30"), "setting": "outpatient",
        "name": "欧阳明华", "id_number": "310105201503011236", "phone": "13912345678", "sex": None,
        "birth_date": None, "address": "茅台路1号", "residence_code": None, "lat": np.nan, "lon": np.nan,
        "chief_complaint": "欧阳明华，电话13912345678，发热2天", "diagnosis_codes": "j11.1; R50.9",
        "temperature_c": 38.5, "updated_at": pd.Timestamp("2025-03-01 09:40"),
    }  # fmt: skip
    frame = pd.DataFrame([row] * n)
    for k, v in over.items():
        frame[k] = v
    return frame[list(RAW_COLUMNS)]


def test_identifiers_dropped_and_text_scrubbed() -> None:
    out = deidentify_visits(_raw(1), KEY, load_area_set()).visits
    assert not set(IDENTIFIER_COLUMNS) & set(out.columns)
    text = " ".join(str(v) for v in out.iloc[0].to_numpy())
    for secret in ("欧阳明华", "13912345678", "310105201503011236", "茅台路", "P1"):
        assert secret not in text
    assert out.loc[0, "chief_complaint"].endswith("发热2天")
    assert out.loc[0, "diagnosis_codes"] == ["J11.1", "R50.9"]


def test_sex_and_age_from_id_number_when_missing() -> None:
    out = deidentify_visits(_raw(1), KEY, load_area_set()).visits
    # born 2015-03-01, sequence digit 3 (odd): male, exactly 10 on the visit day
    assert out.loc[0, "sex"] == "M"
    assert out.loc[0, "age_years"] == 10 and out.loc[0, "age_group"] == "5-14"
    assert (
        out.loc[0, "street_code"] == "310105008000" and out.loc[0, "residence_method"] == "address"
    )


def test_keys_are_keyed_hashes() -> None:
    area = load_area_set()
    raw = _raw(2, source_visit_id=["R1", "R2"], source_patient_id=["P1", "P1"])
    a = deidentify_visits(raw, KEY, area).visits
    b = deidentify_visits(raw, b"other-key", area).visits
    assert a.loc[0, "patient_key"] == a.loc[1, "patient_key"]  # same patient, same key
    assert a.loc[0, "visit_key"] != a.loc[1, "visit_key"]
    assert a.loc[0, "patient_key"] != b.loc[0, "patient_key"]  # secret matters
    assert len(a.loc[0, "patient_key"]) == 64


def test_rows_without_time_or_facility_are_quarantined_with_reason() -> None:
    raw = _raw(3, visit_time=[pd.Timestamp("2025-03-01 09:30"), None, pd.Timestamp("2025-03-01")],
               facility_id=["F01", "F01", ""], source_visit_id=["R1", "R2", "R3"])  # fmt: skip
    out = deidentify_visits(raw, KEY, load_area_set())
    assert len(out.visits) == 1 and len(out.quarantine) == 2
    assert set(out.quarantine["reason"]) == {"visit time missing or not a date", "facility missing"}
    assert "欧阳" not in out.quarantine.to_string()
