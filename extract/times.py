"""Local time of the sources: naive Asia/Shanghai datetimes, whatever offset came in."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

LOCAL_TZ = "Asia/Shanghai"
_OFFSET = r"[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def to_local_naive(moment: datetime) -> pd.Timestamp:
    """``moment`` as a naive Shanghai local time (naive input is taken as local already)."""
    ts = pd.Timestamp(moment)
    return ts if ts.tzinfo is None else ts.tz_convert(LOCAL_TZ).tz_localize(None)


def parse_local_times(values: pd.Series) -> pd.Series:
    """Parse ISO 8601 date-times to naive Shanghai local time (``datetime64[us]``).

    Values with an offset (``+08:00``, ``+0800``, ``Z``…) are converted to Shanghai
    time; values without one are taken as Shanghai time already. Datetime columns pass
    through (converted if time-zone aware). Unparseable or empty values become ``NaT``.

    Parameters
    ----------
    values : Series
        Strings (missing allowed) or a datetime column.

    Returns
    -------
    Series
        ``datetime64[us]``, aligned with ``values``.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).astype("datetime64[us]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.astype("datetime64[us]")
    text = values.astype("str").str.strip()
    if len(text) and bool(text.str.endswith("+08:00").all()):
        # the common case (a FHIR export written in Shanghai): no conversion needed
        return pd.to_datetime(text.str[:-6], format="ISO8601", errors="coerce").astype(
            "datetime64[us]"
        )
    aware = text.str.contains(_OFFSET, regex=True, na=False)
    naive = pd.to_datetime(text.where(~aware), format="ISO8601", errors="coerce")
    out = naive.astype("datetime64[us]")
    if aware.any():
        converted = pd.to_datetime(text.where(aware), format="ISO8601", errors="coerce", utc=True)
        local = converted.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None).astype("datetime64[us]")
        out = out.where(~aware, local)
    return out
