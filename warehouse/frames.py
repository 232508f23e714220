"""Check a pandas DataFrame against a table's schema and convert it to Arrow.

Conversions are strict where a silent one would corrupt data: text is never parsed into
numbers or dates, time-zone-aware timestamps are refused (the warehouse holds naive local
time, and Arrow would silently shift them to UTC), a date column refuses times other than
midnight, integers must fit the column type. Whole-valued floats are accepted for integer
columns because pandas turns integer columns with gaps into floats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.errors import SchemaError
from warehouse.schema import TABLES, Column, Table, arrow_schema

__all__ = ["frame_to_arrow"]

# What kind of values a pandas column holds, as far as conversion is concerned.
_ACCEPTED_KINDS: dict[str, frozenset[str]] = {
    "string": frozenset({"string"}),
    "integer": frozenset({"integer", "floating"}),
    "floating": frozenset({"integer", "floating"}),
    "date": frozenset({"date", "datetime"}),
    "timestamp": frozenset({"datetime"}),
    "list": frozenset({"list"}),
}

_INFERRED_KINDS: dict[str, str] = {
    "string": "string",
    "integer": "integer",
    "floating": "floating",
    "mixed-integer-float": "floating",
    "date": "date",
    "datetime": "datetime",
    "datetime64": "datetime",
    "empty": "empty",
    "boolean": "boolean",
}


def _target_kind(type_: pa.DataType) -> str:
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_):
        return "floating"
    if pa.types.is_date(type_):
        return "date"
    if pa.types.is_timestamp(type_):
        return "timestamp"
    if pa.types.is_list(type_):
        return "list"
    raise TypeError(f"unsupported column type {type_}")


def _arrow_kind(type_: pa.DataType) -> str:
    if pa.types.is_timestamp(type_):
        return "datetime" if type_.tz is None else "datetime-with-zone"
    if pa.types.is_boolean(type_):
        return "boolean"
    if pa.types.is_null(type_):
        return "empty"
    return _target_kind(type_)


def _is_list_like(value: object) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


# pandas dtypes with one kind of value, checked in order (bool before integer: numpy
# treats bool as an integer type).
_DTYPE_KINDS: tuple[tuple[Callable[[Any], bool], str], ...] = (
    (lambda d: isinstance(d, pd.DatetimeTZDtype), "datetime-with-zone"),
    (pd.api.types.is_bool_dtype, "boolean"),
    (pd.api.types.is_integer_dtype, "integer"),
    (pd.api.types.is_float_dtype, "floating"),
    (pd.api.types.is_datetime64_dtype, "datetime"),
    (lambda d: isinstance(d, pd.StringDtype), "string"),
)


def _object_kind(s: pd.Series) -> str:
    values = [v for v in s.tolist() if not _is_missing(v)]
    if all(_is_list_like(v) for v in values):
        return "list"
    kind = _INFERRED_KINDS.get(pd.api.types.infer_dtype(values, skipna=True), "mixed")
    if kind == "datetime" and any(getattr(v, "tzinfo", None) is not None for v in values):
        return "datetime-with-zone"
    return kind


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and bool(np.isnan(value))


def _series_kind(s: pd.Series) -> str:
    if len(s) == 0 or bool(s.isna().all()):
        # An all-missing column is acceptable for any type (pandas makes it float or object).
        return "empty"
    dtype = s.dtype
    if isinstance(dtype, pd.ArrowDtype):
        return _arrow_kind(dtype.pyarrow_dtype)
    for applies, kind in _DTYPE_KINDS:
        if applies(dtype):
            return kind
    if pd.api.types.is_object_dtype(dtype):
        return _object_kind(s)
    return str(dtype)


def _convert(table: Table, column: Column, s: pd.Series) -> pa.Array:
    target = _target_kind(column.type)
    kind = _series_kind(s)
    where = f"table {table.name!r}, column {column.name!r}"
    if kind != "empty" and kind not in _ACCEPTED_KINDS[target]:
        raise SchemaError(
            f"{where}: expected {column.type} values, got {kind} ({s.dtype}); "
            "convert the column before writing"
        )
    if target == "date" and kind == "datetime":
        stamps = pd.to_datetime(s)
        if bool((stamps.dropna() != stamps.dropna().dt.normalize()).any()):
            raise SchemaError(f"{where}: expected dates, got timestamps with a time of day")
        s = stamps
    if kind == "empty":
        s = pd.Series([None] * len(s), dtype=object)
    try:
        array = pa.array(s, type=column.type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        detail = str(exc).splitlines()[0]
        raise SchemaError(f"{where}: cannot convert to {column.type}: {detail}") from None
    if not column.nullable and array.null_count:
        raise SchemaError(f"{where}: {array.null_count} missing value(s) in a NOT NULL column")
    if column.values is not None:
        allowed = pa.array(column.values, type=pa.string())
        bad = pc.filter(array, pc.invert(pc.is_in(array, value_set=allowed)))
        bad = pc.drop_null(bad)
        if len(bad):
            examples = ", ".join(repr(v) for v in pc.unique(bad).to_pylist()[:5])
            raise SchemaError(f"{where}: value(s) {examples} not among {', '.join(column.values)}")
    return array


def frame_to_arrow(table_name: str, df: pd.DataFrame) -> pa.Table:
    """Validate a DataFrame against a table's schema and convert it to Arrow.

    Parameters
    ----------
    table_name : str
        A key of :data:`warehouse.schema.TABLES`.
    df : pandas.DataFrame
        One row per table row, with exactly the table's columns (any order, any index).

    Returns
    -------
    pyarrow.Table
        The rows, cast to :func:`warehouse.schema.arrow_schema` (columns in schema order).

    Raises
    ------
    SchemaError
        Missing or extra columns, a type that does not convert, missing values in a NOT
        NULL column, or a code outside the column's allowed values. The message names the
        table and the column.
    """
    table = TABLES[table_name]
    names = list(df.columns)
    expected = table.column_names
    missing = [c for c in expected if c not in names]
    extra = [str(c) for c in names if c not in expected]
    if missing:
        raise SchemaError(f"table {table_name!r}: missing column(s) {', '.join(missing)}")
    if extra:
        raise SchemaError(f"table {table_name!r}: unexpected column(s) {', '.join(extra)}")
    if len(set(names)) != len(names):
        raise SchemaError(f"table {table_name!r}: duplicate column names")
    frame = df.reset_index(drop=True)
    arrays = [_convert(table, c, frame[c.name]) for c in table.columns]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(table_name))


def date_of(value: dt.date | str) -> dt.date:
    """Return ``value`` as a :class:`datetime.date` (ISO ``YYYY-MM-DD`` text accepted)."""
    if isinstance(value, dt.datetime):
        raise TypeError(f"expected a date, got the datetime {value!r}")
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)
