"""The ``alert_reviews`` table: an append-only history of alert reviews.

Alerts are rewritten whenever a detector re-analyses a day, so what CDC staff decide about
an alert (status, outcome, assignee, notes) is kept apart, keyed by ``alert_id``. Rows are
only ever added; the current review is the latest row. The rules of the review lifecycle
live in :mod:`reports.lifecycle`; this module only stores and reads rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.catalog import refresh_catalog
from warehouse.files import partition_path, write_parquet_atomic
from warehouse.frames import frame_to_arrow
from warehouse.lock import writer_lock
from warehouse.schema import arrow_schema

__all__ = ["append_review", "read_reviews"]

_TABLE = "alert_reviews"
_TICK = dt.timedelta(microseconds=1)


def read_reviews(root: Path) -> pd.DataFrame:
    """Return every review row under warehouse ``root``, in the order they were added.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse folder.

    Returns
    -------
    pandas.DataFrame
        The columns of ``alert_reviews``; no rows when nothing was reviewed yet.
    """
    path = partition_path(Path(root), _TABLE)
    schema = arrow_schema(_TABLE)
    data = pq.read_table(path).select(schema.names).cast(schema) if path.is_file() else None
    return (schema.empty_table() if data is None else data).to_pandas()


def append_review(root: Path, row: Mapping[str, object], *, lock_timeout: float = 300.0) -> dict:
    """Add one review row (under the writer lock) and refresh the catalog.

    ``updated_at`` defaults to now; if an earlier row of the same alert has the same or a
    later time (a clock step, two changes within a microsecond) it is moved just after it,
    so the latest row by time is always the one added last.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse folder.
    row : mapping
        Values of the columns of ``alert_reviews``; nullable ones may be left out.
    lock_timeout : float
        Seconds to wait for another writer.

    Returns
    -------
    dict
        The row as stored.

    Raises
    ------
    warehouse.errors.SchemaError
        When the row does not fit the schema (unknown status or outcome, missing id).
    """
    root = Path(root)
    values: dict[str, object] = {c: None for c in arrow_schema(_TABLE).names}
    values.update(row)
    if values["updated_at"] is None:
        values["updated_at"] = dt.datetime.now().replace(tzinfo=None)
    path = partition_path(root, _TABLE)
    with writer_lock(root, timeout=lock_timeout):
        schema = arrow_schema(_TABLE)
        old = pq.read_table(path).cast(schema) if path.is_file() else schema.empty_table()
        earlier = [r["updated_at"] for r in old.to_pylist() if r["alert_id"] == values["alert_id"]]
        if earlier:
            stamp = pd.Timestamp(values["updated_at"]).to_pydatetime()  # type: ignore[arg-type]
            values["updated_at"] = max(stamp, max(earlier) + _TICK)
        new = frame_to_arrow(_TABLE, pd.DataFrame([values]))
        write_parquet_atomic(pa.concat_tables([old, new]).combine_chunks(), path)
        refresh_catalog(root)
    return new.to_pylist()[0]
