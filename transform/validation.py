"""Validate a raw batch with Great Expectations before anything is de-identified or written.

Two suites run against pandas DataFrames in one ephemeral, in-memory GX context that is
built once per process (analytics off, no progress bars, no files, no network):

- the *structure* suite (``ExpectColumnToExist`` for every column of
  :data:`transform.records.RAW_COLUMNS`), followed by dtype checks in plain pandas. A
  failure rejects the whole batch with :class:`BatchRejected`; nothing is published.
- the *row* suite, run once over the whole batch on a frame of derived check columns
  (normalised codes, parsed times, flags). Every failing record goes to quarantine with one
  reason listing all its problems.

Reasons and the report are fixed texts, column and expectation names and counts: GX
results carry the offending values (``partial_unexpected_list``, ``unexpected_list``) and
those never leave this module.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from transform.records import RAW_COLUMNS
from warehouse.schema import TIME_ZONE

__all__ = [
    "CLOCK_SKEW",
    "EARLIEST_VISIT",
    "BatchRejected",
    "RawValidation",
    "validate_raw_batch",
]

CLOCK_SKEW = timedelta(hours=1)
"""How far after ``now`` a visit time may lie before it counts as "in the future"."""

EARLIEST_VISIT = datetime(2000, 1, 1)
"""Visit times before this are taken for data-entry errors."""

UPDATE_LEAD = timedelta(days=1)
"""How far before the visit time a record's ``updated_at`` may lie (pre-registration)."""

SETTINGS = ("outpatient", "emergency", "inpatient")
SEXES = ("M", "F", "U", "男", "女")
ICD10 = r"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?"
RESIDENCE_CODE = r"^\d{12}$"

DATETIME_COLUMNS = ("visit_time", "updated_at")
NUMERIC_COLUMNS = ("temperature_c", "lat", "lon")
_CONTENT_COLUMNS = [c for c in RAW_COLUMNS if c != "row_ref"]
_SUITE = "raw_visits"
# pandas.api.types.infer_dtype kinds accepted as numbers ("empty": all missing)
_NUMBERS = frozenset({"floating", "integer", "mixed-integer-float", "decimal", "empty"})


class BatchRejected(Exception):
    """A batch whose structure is wrong (missing columns, wrong types): reject it whole.

    The message names the columns and the problem, never a value of the batch.
    """


@dataclass(frozen=True)
class RawValidation:
    """Outcome of :func:`validate_raw_batch`.

    Attributes
    ----------
    valid : DataFrame
        The rows of the input that passed every row-level check, unchanged, with the
        caller's index.
    quarantine : DataFrame
        ``row_ref`` and ``reason`` (checks failed, joined by ``"; "``), one row per failing
        record, in input order.
    report : dict
        Counts and, per expectation, its name, column, check, success and unexpected
        count: free of identifiers, suitable for logging.
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict[str, Any]


@dataclass(frozen=True)
class _Gx:
    """The cached GX objects: one batch definition, the two suites, a lock around them."""

    batch_definition: Any
    structure: Any
    rows: Any
    lock: threading.Lock


def _row_expectations() -> list[Any]:
    """The row-level expectations, in the order their reasons are listed.

    Each carries ``meta = {"check": reason, "column": raw column}``; columns are the
    derived check columns built by :func:`_check_frame`.
    """
    import great_expectations.expectations as gxe

    def meta(check: str, column: str) -> dict[str, str]:
        return {"check": check, "column": column}

    codes = rf"^{ICD10}(?:;{ICD10})*$"
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="source_visit_id", meta=meta("source_visit_id missing", "source_visit_id")
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="facility_id", meta=meta("facility_id missing", "facility_id")
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="visit_time", meta=meta("visit_time missing or not a date", "visit_time")
        ),
        # time bounds as flag columns: GX compares datetimes one Python object at a time
        gxe.ExpectColumnValuesToBeInSet(
            column="visit_time_in_future",
            value_set=[False],
            meta=meta("visit_time in the future", "visit_time"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="visit_time_too_early",
            value_set=[False],
            meta=meta(f"visit_time before {EARLIEST_VISIT:%Y-%m-%d}", "visit_time"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="updated_at_unreadable",
            value_set=[False],
            meta=meta("updated_at not a date", "updated_at"),
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="updated_at",
            column_B="earliest_updated_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=meta("updated_at more than 1 day before visit_time", "updated_at"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="temperature_c",
            min_value=30,
            max_value=45,
            meta=meta("temperature_c outside 30-45 °C", "temperature_c"),
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="residence_code",
            regex=RESIDENCE_CODE,
            meta=meta("residence_code not a 12-digit code", "residence_code"),
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="diagnosis_codes",
            regex=codes,
            meta=meta("diagnosis_codes not ICD-10", "diagnosis_codes"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="setting",
            value_set=list(SETTINGS),
            meta=meta("setting missing or not outpatient, emergency or inpatient", "setting"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="sex", value_set=list(SEXES), meta=meta("sex not M, F, U, 男 or 女", "sex")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="conflicting_duplicate",
            value_set=[False],
            meta=meta("duplicate visit id with conflicting content", "source_visit_id"),
        ),
    ]


@functools.cache
def _gx() -> _Gx:
    """Build the GX context, batch definition and suites once per process.

    GX is imported here, not at module level: it takes seconds to import, and importing
    :mod:`transform.ingest` (and so the CLI) should not pay for it.
    """
    # Offline: no usage statistics. Set before GX is imported, and again in the config.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_definition = (
        context.data_sources.add_pandas("sentinel")
        .add_dataframe_asset("raw_visits")
        .add_batch_definition_whole_dataframe("batch")
    )
    structure = gx.ExpectationSuite(f"{_SUITE}_structure")
    for column in RAW_COLUMNS:
        structure.add_expectation(gxe.ExpectColumnToExist(column=column))
    rows = gx.ExpectationSuite(f"{_SUITE}_rows")
    for expectation in _row_expectations():
        rows.add_expectation(expectation)
    return _Gx(
        batch_definition,
        context.suites.add(structure),
        context.suites.add(rows),
        threading.Lock(),
    )


def _run(suite: Any, frame: pd.DataFrame, parameters: dict[str, Any] | None = None) -> list[Any]:
    """Validate ``frame`` against ``suite`` in one GX run; results in suite order."""
    gx = _gx()
    with gx.lock:
        batch = gx.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            suite,
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
            expectation_parameters=parameters or {},
        )
    return list(result.results)


def _local_times(values: pd.Series) -> pd.Series:
    """Naive local (Asia/Shanghai) ``datetime64[us]``; unparseable values become ``NaT``.

    Time-zone aware values are converted; text is read as ISO 8601.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(TIME_ZONE).dt.tz_localize(None).astype("datetime64[us]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.astype("datetime64[us]")
    if pd.api.types.infer_dtype(values, skipna=True) in ("datetime", "datetime64", "date"):
        kwargs: dict[str, Any] = {}
    else:
        values = values.astype("str").str.strip()
        kwargs = {"format": "ISO8601"}
    try:
        parsed = pd.to_datetime(values, errors="coerce", **kwargs)
    except ValueError:  # mixed offsets: compare in one zone
        parsed = pd.to_datetime(values, errors="coerce", utc=True, **kwargs)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(TIME_ZONE).dt.tz_localize(None)
    return parsed.astype("datetime64[us]")


def _text(values: pd.Series) -> pd.Series:
    """Stripped strings, missing or blank values as ``NaN``."""
    if pd.api.types.is_float_dtype(values.dtype):
        whole = values.dropna()
        if bool(
            (np.isfinite(whole) & (whole == np.floor(whole))).all()
        ):  # a code read as a number: 3.1e11 → "31…"
            values = values.astype("Int64")
    text = values.astype("str").str.strip()
    return text.where(text != "")


def _check_structure(raw: pd.DataFrame) -> dict[str, pd.Series]:
    """Reject a batch with missing columns or wrong types; return the parsed times.

    Column presence is the GX structure suite. Types are checked in pandas: GX's type
    expectations test dtype names or Python types value by value, and cannot say "a
    number, or nothing at all" or "dates, possibly written as text".
    """
    results = _run(_gx().structure, raw.iloc[:0])
    missing = [r.expectation_config.kwargs["column"] for r in results if not r.success]
    if missing:
        raise BatchRejected(f"batch rejected: missing column(s) {', '.join(missing)}")
    problems = []
    for column in NUMERIC_COLUMNS:
        values = raw[column]
        if pd.api.types.infer_dtype(values, skipna=True) not in _NUMBERS:
            problems.append(f"column {column} has type {values.dtype}, expected a number")
    times = {}
    for column in DATETIME_COLUMNS:
        values = raw[column]
        dtype = values.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or values.isna().all():
            times[column] = _local_times(values)
            continue
        if pd.api.types.infer_dtype(values, skipna=True) in _NUMBERS | {"boolean"}:
            problems.append(f"column {column} has type {dtype}, expected datetimes")
            continue
        parsed = _local_times(values)
        if parsed.isna().all():
            problems.append(
                f"column {column} has type {dtype}, expected datetimes (no value parses as one)"
            )
        times[column] = parsed
    if problems:
        raise BatchRejected("batch rejected: " + "; ".join(problems))
    return times


def _conflicting_duplicates(
    raw: pd.DataFrame, visit_id: pd.Series, facility: pd.Series, updated: np.ndarray
) -> np.ndarray:
    """Rows whose visit id and ``updated_at`` repeat within the batch with other content.

    Plain pandas: GX's uniqueness expectations cannot tell exact copies (harmless: the
    warehouse upsert keeps one) from two different versions claiming the same time.
    """
    content = pd.util.hash_pandas_object(raw[_CONTENT_COLUMNS], index=False).to_numpy()
    keys = pd.DataFrame(
        {"facility": facility.to_numpy(), "visit": visit_id.to_numpy(), "updated": updated}
    )
    keys["content"] = content
    versions = keys.groupby(["facility", "visit", "updated"], dropna=False)["content"].transform(
        "nunique"
    )
    return ((versions > 1) & visit_id.notna().to_numpy()).to_numpy()


def _unreadable(values: pd.Series, parsed: pd.Series) -> np.ndarray:
    """Rows with a value that did not parse as a time (a datetime column has none)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return np.zeros(len(values), dtype=bool)
    return parsed.isna().to_numpy() & _text(values.reset_index(drop=True)).notna().to_numpy()


def _check_frame(raw: pd.DataFrame, times: dict[str, pd.Series]) -> pd.DataFrame:
    """The derived columns the row suite checks, on a ``RangeIndex``; no identifiers but ids."""
    raw = raw.reset_index(drop=True)
    visit_time = times["visit_time"].reset_index(drop=True)
    updated = times["updated_at"].reset_index(drop=True)
    visit_id = _text(raw["source_visit_id"])
    facility = _text(raw["facility_id"])
    codes = (
        _text(raw["diagnosis_codes"])
        .str.upper()
        .str.replace(r"\s*[;,]\s*", ";", regex=True)
        .str.replace(r";{2,}", ";", regex=True)
        .str.strip(";")
    )
    return pd.DataFrame(
        {
            "source_visit_id": visit_id,
            "facility_id": facility,
            "visit_time": visit_time,
            "updated_at": updated,
            "updated_at_unreadable": _unreadable(raw["updated_at"], updated),
            "earliest_updated_at": visit_time - UPDATE_LEAD,
            "temperature_c": pd.to_numeric(raw["temperature_c"], errors="coerce").astype("float64"),
            "residence_code": _text(raw["residence_code"]),
            "diagnosis_codes": codes.where(codes != ""),
            "setting": _text(raw["setting"]).str.lower().fillna(""),
            "sex": _text(raw["sex"]),
            "conflicting_duplicate": _conflicting_duplicates(
                raw, visit_id, facility, updated.to_numpy()
            ),
        }
    )


def _local_naive(now: datetime) -> datetime:
    if now.tzinfo is None:
        return now
    return pd.Timestamp(now).tz_convert(TIME_ZONE).tz_localize(None).to_pydatetime()


def validate_raw_batch(
    raw: pd.DataFrame, *, now: datetime, clock_skew: timedelta = CLOCK_SKEW
) -> RawValidation:
    """Check a raw batch's structure and rows; split it into valid and quarantined rows.

    Parameters
    ----------
    raw : DataFrame
        Raw visit records (:data:`transform.records.RAW_COLUMNS`; extra columns ignored).
    now : datetime
        The reference time for "in the future": naive local (Asia/Shanghai) time, or
        time-zone aware (converted). Pass the batch's start time.
    clock_skew : timedelta
        Visit times up to ``now + clock_skew`` are accepted.

    Returns
    -------
    RawValidation
        ``valid`` rows (unchanged, caller's index), ``quarantine`` (``row_ref``,
        ``reason``) and an identifier-free ``report``;
        ``len(valid) + len(quarantine) == len(raw)``.

    Raises
    ------
    BatchRejected
        A column of :data:`~transform.records.RAW_COLUMNS` is missing; ``visit_time`` or
        ``updated_at`` is neither datetimes nor text that parses as dates; or
        ``temperature_c``, ``lat`` or ``lon`` is not numeric (all-null columns pass).

    Notes
    -----
    Row-level checks, as GX expectations over derived columns (reason in quotes):
    ``source_visit_id``, ``facility_id`` (blank counts as missing) and ``visit_time``
    present; ``visit_time`` ≤ ``now + clock_skew`` ("in the future") and ≥ 2000-01-01;
    ``updated_at`` readable when given and ≥ ``visit_time`` − 1 day; ``temperature_c`` in
    [30, 45] when present; ``residence_code`` 12 digits when present; every diagnosis code
    (split on ``;`` or ``,``, stripped, upper-cased) ICD-10 shaped, none at all allowed;
    ``setting`` (stripped, lower-cased) outpatient, emergency or inpatient (missing fails:
    de-identification would otherwise guess outpatient); ``sex`` M, F, U, 男, 女 or
    missing.

    Duplicates are found in plain pandas and checked as a flag column: rows sharing
    facility, ``source_visit_id`` and ``updated_at`` but differing in any other column
    except ``row_ref`` are all quarantined ("duplicate visit id with conflicting
    content"): no version can be preferred. The facility is part of the key because visit
    ids are issued per facility (it is in the warehouse ``visit_key``). Exact copies pass:
    the warehouse upsert keeps one. Different ``updated_at`` are successive versions and
    pass; the upsert keeps the latest.

    Every check runs on every row: a record failing several gets one reason listing them,
    in the order above.
    """
    times = _check_structure(raw)
    checks = _check_frame(raw, times)
    latest = pd.Timestamp(_local_naive(now) + clock_skew)
    checks["visit_time_in_future"] = (checks["visit_time"] > latest).to_numpy()
    checks["visit_time_too_early"] = (
        checks["visit_time"] < pd.Timestamp(EARLIEST_VISIT)
    ).to_numpy()
    results = _run(_gx().rows, checks, {})

    failed = np.zeros((len(checks), len(results)), dtype=bool)
    summary = []
    for i, result in enumerate(results):
        meta = result.expectation_config.meta
        if result.exception_info.get("raised_exception"):
            # The message may quote values; name the check only.
            raise BatchRejected(f"batch rejected: check '{meta['check']}' could not run")
        index = result.result.get("unexpected_index_list") or []
        if len(index) != result.result.get("unexpected_count", 0):
            # Failures that cannot be tied to rows must not pass silently.
            raise BatchRejected(f"batch rejected: check '{meta['check']}' gave no row indices")
        failed[np.asarray(index, dtype=np.int64), i] = True
        summary.append(
            {
                "expectation": result.expectation_config.type,
                "column": meta["column"],
                "check": meta["check"],
                "success": bool(result.success),
                "unexpected_count": int(failed[:, i].sum()),
            }
        )

    bad = failed.any(axis=1)
    checks_text = [str(r.expectation_config.meta["check"]) for r in results]
    reasons = [
        "; ".join(c for c, f in zip(checks_text, row, strict=True) if f) for row in failed[bad]
    ]
    quarantine = pd.DataFrame(
        {
            "row_ref": raw["row_ref"].to_numpy()[bad],
            "reason": pd.Series(reasons, dtype="str"),
        }
    ).astype({"row_ref": "str"})
    valid = raw.iloc[np.flatnonzero(~bad)]
    report: dict[str, Any] = {
        "suite": _SUITE,
        "rows": len(raw),
        "valid": len(valid),
        "quarantined": len(quarantine),
        "success": not bool(bad.any()),
        "expectations": summary,
    }
    return RawValidation(valid, quarantine, report)
