"""Extract visits from a line list (CSV or Parquet) in the DESIGN.md line-list contract.

One row per visit: ``visit_id, facility_id, visit_time, setting, patient_id, name,
id_number, phone, sex, birth_date, address, residence_code, lat, lon, chief_complaint,
diagnosis_codes, temperature_c, updated_at``. A file without a required column (or
without any column that locates the patient) is refused whole with
:class:`~extract.errors.SchemaError`; a row with a bad value is rejected with a reason
(``row_ref`` = ``<file name>:<line>``, the physical CSV line where the row starts, or the
1-based row number in a Parquet file) and the others are kept.

CSV is read as UTF-8 (a byte-order mark is allowed); a file that is not UTF-8 is read as
GB18030 (what Chinese spreadsheet software writes) and the extract says so.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from extract.errors import SchemaError
from extract.times import parse_local_times
from transform.records import RAW_COLUMNS

log = logging.getLogger("sentinel.extract")

REQUIRED_COLUMNS: tuple[str, ...] = (
    "visit_id",
    "facility_id",
    "visit_time",
    "setting",
    "patient_id",
    "chief_complaint",
    "diagnosis_codes",
    "sex",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "name",
    "id_number",
    "phone",
    "birth_date",
    "address",
    "residence_code",
    "lat",
    "lon",
    "temperature_c",
    "updated_at",
)
LOCATING_COLUMNS: tuple[tuple[str, ...], ...] = (("residence_code",), ("lat", "lon"), ("address",))
REQUIRED_VALUES: tuple[str, ...] = ("visit_id", "facility_id", "patient_id")
SETTINGS: frozenset[str] = frozenset({"outpatient", "emergency", "inpatient"})
SEX_OF_VALUE: dict[str, str] = {"M": "M", "F": "F", "U": "U", "男": "M", "女": "F", "": "U"}
REJECTED_COLUMNS: tuple[str, ...] = ("row_ref", "reason")


@dataclass(frozen=True)
class LinelistExtract:
    """Raw visits of a line list and the rows that could not be used.

    Attributes
    ----------
    visits : DataFrame
        Raw visit records (:data:`transform.records.RAW_COLUMNS`).
    rejected : DataFrame
        ``row_ref``, ``reason`` of every rejected row.
    encoding : str
        ``utf-8``, ``utf-8-sig`` (with BOM), ``gb18030`` (fallback) or ``parquet``.
    rows : int
        Data rows read: ``rows == len(visits) + len(rejected) + duplicates``.
    duplicates : int
        Rows dropped as exact repeats of an earlier row (same visit, same content).
    """

    visits: pd.DataFrame
    rejected: pd.DataFrame
    encoding: str
    rows: int
    duplicates: int


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """Text of a CSV file and the encoding it was read with."""
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"line list is neither UTF-8 nor GB18030 text (byte {exc.start})", ref=path.name
        ) from None
    log.warning("linelist_not_utf8", extra={"fields": {"file": path.name, "read_as": "gb18030"}})
    return text, "gb18030"


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[str], list[tuple[str, str]], str]:
    """All-string frame of the rows, their line refs, malformed rows, and the encoding."""
    text, encoding = _decode(path, path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    rows: list[list[str]] = []
    refs: list[str] = []
    bad: list[tuple[str, str]] = []
    start = reader.line_num + 1
    for row in reader:
        ref = f"{path.name}:{start}"
        start = reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            bad.append((ref, f"{len(row)} fields where the header has {len(header)}"))
            continue
        rows.append(row)
        refs.append(ref)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(header)
    frame = pd.DataFrame(
        {h: pd.Series(c, dtype="str") for h, c in zip(header, columns, strict=True)}
    )
    return frame, refs, bad, encoding


def _read_parquet(path: Path) -> tuple[pd.DataFrame, list[str]]:
    frame = pq.read_table(path).to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True), [f"{path.name}:{i + 1}" for i in range(len(frame))]


def _check_columns(path: Path, columns: pd.Index) -> None:
    present = set(columns)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if not any(all(c in present for c in group) for group in LOCATING_COLUMNS):
        missing.append("one of residence_code, lat+lon, address")
    if missing:
        raise SchemaError(f"line list lacks required columns: {', '.join(missing)}", ref=path.name)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as stripped strings, empty as missing (absent column: all missing)."""
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    out = frame[column].astype("str").str.strip()
    return out.where(out != "")


def _number(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """A numeric column, and where a value was given but is not a number."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index), pd.Series(False, index=frame.index)
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64"), pd.Series(False, index=frame.index)
    text = _text(frame, column)
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    return number, text.notna() & number.isna()


def _times(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """A date-time column as local naive times, and where a value did not parse."""
    if column not in frame:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]"), pd.Series(
            False, index=frame.index
        )
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return parse_local_times(values), pd.Series(False, index=frame.index)
    text = _text(frame, column)
    parsed = parse_local_times(text)
    return parsed, text.notna() & parsed.isna()


def _codes(values: pd.Series) -> pd.Series:
    """``;``-separated codes, tidy: full-width separators and blanks removed."""
    out = values.fillna("").str.replace("；", ";").str.replace(r"\s*;[\s;]*", ";", regex=True)
    return out.str.strip(";").str.strip()


def extract_linelist(path: Path, source: str = "linelist") -> LinelistExtract:
    """Read a line-list file (CSV or Parquet) into raw visit records.

    Parameters
    ----------
    path : pathlib.Path
        ``.parquet`` / ``.pq`` files are read as Parquet, anything else as CSV.
    source : str
        Configured source name, written to the ``source`` column.

    Returns
    -------
    LinelistExtract
        Raw visit records and rejected rows (unparseable ``visit_time``, ``birth_date``
        or ``updated_at``, unknown ``setting`` or ``sex``, non-numeric ``temperature_c``
        / ``lat`` / ``lon``, a missing id, a ``visit_id`` repeated with different
        content, a row with the wrong number of fields).

    Raises
    ------
    SchemaError
        If the file cannot be decoded or lacks required columns (the whole file is
        refused); the message names the file and the columns.
    """
    path = Path(path)
    bad: list[tuple[str, str]] = []
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame, refs = _read_parquet(path)
        encoding = "parquet"
    else:
        frame, refs, bad, encoding = _read_csv(path)
    malformed = len(bad)
    _check_columns(path, frame.columns)
    frame.index = pd.RangeIndex(len(frame))
    row_ref = pd.Series(refs, index=frame.index, dtype="str")

    visit_time, _ = _times(frame, "visit_time")
    updated_at, bad_updated = _times(frame, "updated_at")
    birth, bad_birth = _times(frame, "birth_date")
    temperature, bad_temp = _number(frame, "temperature_c")
    lat, bad_lat = _number(frame, "lat")
    lon, bad_lon = _number(frame, "lon")
    setting = _text(frame, "setting").str.lower()
    sex = _text(frame, "sex").fillna("").str.upper().map(SEX_OF_VALUE)
    checks: list[tuple[pd.Series, str]] = [
        (_text(frame, c).isna(), f"missing {c}") for c in REQUIRED_VALUES
    ]
    checks += [
        (visit_time.isna(), "visit_time missing or not an ISO 8601 date-time"),
        (~setting.isin(SETTINGS), "setting is not outpatient, emergency or inpatient"),
        (sex.isna(), "sex is not M, F, U, 男 or 女"),
        (bad_temp, "temperature_c is not a number"),
        (bad_lat | bad_lon, "lat/lon is not a number"),
        (bad_birth, "birth_date is not a date"),
        (bad_updated, "updated_at is not an ISO 8601 date-time"),
    ]
    reason = np.select(
        [c.to_numpy(dtype=bool) for c, _ in checks], [r for _, r in checks], default=""
    )
    raw = pd.DataFrame(
        {
            "source": pd.Series(source, index=frame.index, dtype="str"),
            "row_ref": row_ref,
            "source_visit_id": _text(frame, "visit_id"),
            "source_patient_id": _text(frame, "patient_id"),
            "facility_id": _text(frame, "facility_id"),
            "visit_time": visit_time,
            "setting": setting,
            "name": _text(frame, "name"),
            "id_number": _text(frame, "id_number"),
            "phone": _text(frame, "phone"),
            "sex": sex,
            "birth_date": birth.dt.normalize(),
            "address": _text(frame, "address"),
            "residence_code": _text(frame, "residence_code"),
            "lat": lat,
            "lon": lon,
            "chief_complaint": _text(frame, "chief_complaint").fillna(""),
            "diagnosis_codes": _codes(_text(frame, "diagnosis_codes")),
            "temperature_c": temperature,
            "updated_at": updated_at,
        }
    )[list(RAW_COLUMNS)]
    good = raw[reason == ""]
    bad += list(zip(row_ref[reason != ""], reason[reason != ""], strict=True))

    content = [c for c in RAW_COLUMNS if c != "row_ref"]
    repeated = good.duplicated(content, keep="first")
    distinct = good[~repeated]
    clash = distinct["source_visit_id"].duplicated(keep=False)
    unit = "rows" if encoding == "parquet" else "lines"
    for _, refs_of_id in distinct[clash].groupby("source_visit_id", sort=False)["row_ref"]:
        at = ", ".join(r.rsplit(":", 1)[1] for r in refs_of_id)
        why = f"visit_id repeated with different content ({unit} {at})"
        bad += [(r, why) for r in refs_of_id]
    visits = distinct[~clash].reset_index(drop=True)
    rejected = pd.DataFrame(bad, columns=list(REJECTED_COLUMNS), dtype="str")
    return LinelistExtract(
        visits=visits,
        rejected=rejected,
        encoding=encoding,
        rows=len(refs) + malformed,
        duplicates=int(repeated.sum()),
    )
