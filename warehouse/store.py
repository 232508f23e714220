"""The warehouse: Parquet files under one root, written atomically by one writer at a time.

See ``warehouse/README.md`` for the contract. Every write validates its DataFrame against
:mod:`warehouse.schema`, takes the writer lock (:mod:`warehouse.lock`), replaces whole
files atomically (:mod:`warehouse.files`) and refreshes the DuckDB catalog
(:mod:`warehouse.catalog`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.catalog import DUCKDB_CONFIG, refresh_catalog
from warehouse.daily import aggregate_syndrome_age_daily, aggregate_syndrome_daily
from warehouse.errors import SchemaError, WarehouseError
from warehouse.files import (
    parquet_source,
    partition_path,
    partition_value,
    remove_atomic,
    table_files,
    write_parquet_atomic,
)
from warehouse.frames import date_of, frame_to_arrow
from warehouse.lock import writer_lock
from warehouse.schema import TABLES, arrow_schema, file_schema
from warehouse.upgrade import upgrade_files
from warehouse.upsert import plan_upsert

__all__ = ["UpsertResult", "Warehouse", "sanitise_location"]

_UNPARTITIONED = tuple(name for name, t in TABLES.items() if t.partition_by is None)
# user:password@ in URLs, and password=… / pwd=… parameters.
# the password may itself hold "@" or "/": mask up to the last "@" of the URL
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*:)\S*@")
_PARAM_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token|access_token|key)=)[^&;\s'\"]*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class UpsertResult:
    """Outcome of :meth:`Warehouse.upsert_visits`.

    Attributes
    ----------
    inserted : int
        Keys that were not stored before.
    replaced : int
        Keys whose stored version was replaced by a later (or equal but different) one.
    unchanged : int
        Keys left as stored: identical re-deliveries and older versions.
        ``inserted + replaced + unchanged`` is the number of distinct keys in the batch.
    dates_touched : tuple of datetime.date
        Visit dates whose partition changed (including the old date of a moved visit),
        sorted; rebuild ``syndrome_daily`` for these.
    """

    inserted: int
    replaced: int
    unchanged: int
    dates_touched: tuple[dt.date, ...]


def sanitise_location(location: str) -> str:
    """Return ``location`` with passwords in URLs and ``password=``, ``token=``, ``key=``…
    parameters masked (also used for the operators' failure messages)."""
    masked = _URL_PASSWORD.sub(r"\g<head>***@", location)
    return _PARAM_PASSWORD.sub(r"\g<head>***", masked)


def _with_column(table_name: str, df: pd.DataFrame, column: str, value: object) -> pd.DataFrame:
    """Return ``df`` with ``column`` set to ``value``; if present, it must already be that."""
    if column not in df.columns:
        filled = df.copy()
        filled[column] = pd.Series([value] * len(df), index=df.index, dtype=object)
        return filled
    present = pd.Series(df[column])
    if isinstance(value, dt.date):
        try:
            present = pd.to_datetime(present).dt.date
        except (ValueError, TypeError):
            raise SchemaError(f"table {table_name!r}, column {column!r}: not dates") from None
    if len(df) and not bool((present == value).all()):
        raise SchemaError(
            f"table {table_name!r}, column {column!r}: rows for another {column} than {value}"
        )
    return df


def _complete_alerts(df: pd.DataFrame) -> pd.DataFrame:
    """Alerts with the nullable columns a detector does not fill, and ``announcement``."""
    if len(df) == 0 and len(df.columns) == 0:
        return arrow_schema("alerts").empty_table().to_pandas()
    missing = [c for c in TABLES["alerts"].columns if c.name not in df.columns]
    out = df.copy() if missing else df
    for column in missing:
        if column.name == "announcement":
            out[column.name] = "new"
        elif column.nullable:
            out[column.name] = None
    return out


def _check_visit_dates(visits: pa.Table) -> None:
    days = pc.cast(visits["visit_time"], pa.date32())
    wrong = pc.sum(pc.not_equal(days, visits["visit_date"])).as_py() or 0
    if wrong:
        raise SchemaError(
            f"table 'visits', column 'visit_date': {wrong} row(s) where it is not the date "
            "of visit_time"
        )


def _check_unique(table_name: str, data: pa.Table, key: Sequence[str]) -> None:
    if data.num_rows and data.group_by(list(key)).aggregate([]).num_rows != data.num_rows:
        raise SchemaError(f"table {table_name!r}: duplicate values of key {', '.join(key)}")


class Warehouse:
    """The Parquet warehouse under ``root`` (``$SENTINEL_HOME/warehouse``).

    Creating one creates the folder and the DuckDB catalog if they are missing (which
    takes the writer lock briefly). All methods that write hold the writer lock and
    replace whole files atomically; reading methods take no lock.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse folder.
    lock_timeout : float
        Seconds a write waits for another writer before raising :class:`WarehouseError`.
    """

    def __init__(self, root: Path, *, lock_timeout: float = 300.0) -> None:
        self.root = Path(root).resolve()
        self.lock_timeout = lock_timeout
        self.root.mkdir(parents=True, exist_ok=True)
        with writer_lock(self.root, timeout=self.lock_timeout):
            upgrade_files(self.root)  # files of an earlier schema get the new columns
            refresh_catalog(self.root)

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r})"

    def refresh_catalog(self) -> bool:
        """Refresh the DuckDB catalog (see :func:`warehouse.catalog.refresh_catalog`)."""
        with writer_lock(self.root, timeout=self.lock_timeout):
            return refresh_catalog(self.root)

    # -- visits ------------------------------------------------------------------------

    def upsert_visits(self, df: pd.DataFrame, batch_id: str) -> UpsertResult:
        """Insert or replace visits by ``visit_key``: the later ``updated_at`` wins.

        Idempotent: loading the same batch again changes no file. Rules in
        :mod:`warehouse.upsert`. Each changed partition is rewritten once, sorted by
        ``(visit_time, visit_key)``, so equal content gives byte-identical files.

        Parameters
        ----------
        df : pandas.DataFrame
            Visits with the columns of ``visits``; ``batch_id`` may be omitted.
        batch_id : str
            The batch delivering them (recorded on inserted and replaced rows).

        Returns
        -------
        UpsertResult
            Counts over the batch's distinct keys and the partitions changed.

        Raises
        ------
        SchemaError
            When ``df`` does not fit the schema (message names the column).
        """
        partition_value(batch_id)  # batch ids name quarantine and batches partitions
        incoming = frame_to_arrow("visits", _with_column("visits", df, "batch_id", batch_id))
        _check_visit_dates(incoming)
        with writer_lock(self.root, timeout=self.lock_timeout):
            plan = plan_upsert(incoming, self._visit_files(), file_schema("visits"))
            for day in plan.write_order:
                path = partition_path(self.root, "visits", day)
                rows = plan.partitions[day]
                if rows.num_rows:
                    write_parquet_atomic(rows, path)
                else:
                    remove_atomic(path)
            refresh_catalog(self.root)
        return UpsertResult(
            inserted=plan.inserted,
            replaced=plan.replaced,
            unchanged=plan.unchanged,
            dates_touched=tuple(sorted(plan.write_order)),
        )

    def _visit_files(self) -> dict[dt.date, Path]:
        return {
            date_of(path.parent.name.split("=", 1)[1]): path
            for path in table_files(self.root, "visits")
        }

    # -- small tables ------------------------------------------------------------------

    def replace_table(self, name: str, df: pd.DataFrame) -> None:
        """Replace the whole content of an unpartitioned table (``streets``, ``facilities``).

        Rows are stored sorted by the table's key, which must be unique. The same content
        again writes nothing.
        """
        if name not in _UNPARTITIONED:
            raise WarehouseError(
                f"replace_table writes {', '.join(_UNPARTITIONED)} only, not {name!r}"
            )
        key = TABLES[name].key
        assert key is not None
        data = frame_to_arrow(name, df)
        _check_unique(name, data, key)
        data = data.sort_by([(k, "ascending") for k in key]).combine_chunks()
        path = partition_path(self.root, name)
        if path.is_file() and pq.read_table(path).equals(data):
            return  # same content: no write, no lock (the hourly DAG refreshes these)
        with writer_lock(self.root, timeout=self.lock_timeout):
            write_parquet_atomic(data, path)
            refresh_catalog(self.root)

    def write_alerts(
        self,
        date: dt.date | str,
        df: pd.DataFrame,
        *,
        replace: Callable[[str], bool] | None = None,
    ) -> None:
        """Replace the alerts of one analysis day (an empty ``df`` removes them).

        ``df`` has the columns of ``alerts`` (or none at all when it is empty); nullable
        columns may be left out, and ``announcement`` defaults to ``new``. ``date`` may be
        omitted and must otherwise equal ``date``. ``alert_id`` must be unique; rows are
        stored sorted by it. ``replace`` limits what is replaced to the earlier alerts
        whose ``detector`` it accepts (the temporal detectors and the space-time scan each
        replace only their own); by default the whole day is replaced.
        """
        self.write_alerts_days({date_of(date): df}, replace=replace)

    def write_alerts_days(
        self,
        frames: Mapping[dt.date, pd.DataFrame],
        *,
        replace: Callable[[str], bool] | None = None,
    ) -> None:
        """Replace the alerts of several analysis days at once (see :meth:`write_alerts`).

        Every frame is checked before anything is written; the catalog is refreshed once.
        """
        tables: dict[dt.date, pa.Table] = {}
        for date, df in frames.items():
            day = date_of(date)
            frame = _complete_alerts(df)
            data = frame_to_arrow("alerts", _with_column("alerts", frame, "date", day))
            _check_unique("alerts", data, ("alert_id",))
            tables[day] = data.drop_columns("date").cast(file_schema("alerts"))
        with writer_lock(self.root, timeout=self.lock_timeout):
            for day, fresh in tables.items():
                path = partition_path(self.root, "alerts", day)
                rows = fresh
                if replace is not None and path.is_file():
                    kept = pq.read_table(path)
                    keep = pa.array([not replace(d) for d in kept["detector"].to_pylist()])
                    rows = pa.concat_tables([kept.filter(keep).cast(fresh.schema), fresh])
                    _check_unique("alerts", rows, ("alert_id",))
                if rows.num_rows:
                    write_parquet_atomic(rows.sort_by("alert_id").combine_chunks(), path)
                else:
                    remove_atomic(path)
            refresh_catalog(self.root)

    def append_quarantine(self, batch_id: str, df: pd.DataFrame) -> int:
        """Add rows to a batch's quarantine; rows already there are not added twice.

        A row is already there when ``source``, ``row_ref``, ``reason`` and ``stage`` are
        equal (the earlier ``quarantined_at`` is kept), so re-running a batch does not
        duplicate its quarantine.

        Returns
        -------
        int
            Rows added.
        """
        partition_value(batch_id)
        new = frame_to_arrow("quarantine", _with_column("quarantine", df, "batch_id", batch_id))
        new = new.drop_columns("batch_id")
        path = partition_path(self.root, "quarantine", batch_id)
        with writer_lock(self.root, timeout=self.lock_timeout):
            old = pq.read_table(path) if path.is_file() else file_schema("quarantine").empty_table()
            both = pa.concat_tables([old.cast(new.schema), new])
            key = ["source", "row_ref", "reason", "stage"]
            merged = (
                both.group_by(key, use_threads=False)
                .aggregate([("quarantined_at", "min")])
                .rename_columns([*key, "quarantined_at"])
                .select(file_schema("quarantine").names)
                .sort_by([("quarantined_at", "ascending"), *((k, "ascending") for k in key)])
            )
            added = merged.num_rows - old.num_rows
            if added:
                self._write_partition("quarantine", batch_id, merged)
        return added

    def record_batch(self, row: Mapping[str, object]) -> None:
        """Record one load in the batch log (``batches/batch_id=…/data.parquet``).

        Recording the same ``batch_id`` again replaces that batch's row (a batch is
        recorded when it starts and again when it ends); other batches are never touched.
        Passwords in ``location`` are masked.
        """
        values = dict(row)
        location = values.get("location")
        if isinstance(location, str):
            values["location"] = sanitise_location(location)
        data = frame_to_arrow("batches", pd.DataFrame({k: [v] for k, v in values.items()}))
        batch_id = data["batch_id"][0].as_py()
        partition_value(batch_id)
        self._write_partition("batches", batch_id, data.drop_columns("batch_id"))

    def _write_partition(self, name: str, value: object, data: pa.Table) -> None:
        path = partition_path(self.root, name, value)
        with writer_lock(self.root, timeout=self.lock_timeout):
            if data.num_rows:
                write_parquet_atomic(data.cast(file_schema(name)).combine_chunks(), path)
            else:
                remove_atomic(path)
            refresh_catalog(self.root)

    # -- syndrome_daily ----------------------------------------------------------------

    def rebuild_syndrome_daily(
        self, dates: Iterable[dt.date | str], syndromes: Sequence[str]
    ) -> int:
        """Recompute ``syndrome_daily`` (and ``syndrome_age_daily``) for ``dates`` from ``visits``.

        For each date: every street (those in ``streets``, or if that table is empty every
        street code found in ``visits``) times every syndrome in ``syndromes``, with
        ``count`` = visits of the street's residents that day classified into the syndrome
        (0 when none) and ``visits`` = all their visits that day. Visits without a street
        code, or with one not in the street list, are not counted. Each date's partition is
        replaced and holds exactly ``syndromes``.

        Returns
        -------
        int
            Rows written.
        """
        if isinstance(syndromes, str):
            raise TypeError("syndromes must be a sequence of names, not one string")
        days = sorted({date_of(d) for d in dates})
        written = 0
        with writer_lock(self.root, timeout=self.lock_timeout):
            known = self.read_arrow("streets")["street_code"].to_pylist()
            files = self._visit_files()
            names = sorted(set(syndromes))
            grid = aggregate_syndrome_daily(files, days, names, known or None)
            by_age = aggregate_syndrome_age_daily(files, days, names, known or None)
            for day in days:
                when = pa.scalar(day, pa.date32())
                part = grid.filter(pc.equal(grid["date"], when))
                self._write_partition("syndrome_daily", day, part.drop_columns("date"))
                aged = by_age.filter(pc.equal(by_age["date"], when))
                self._write_partition("syndrome_age_daily", day, aged.drop_columns("date"))
                written += part.num_rows
        return written

    # -- reading -----------------------------------------------------------------------

    def read_arrow(self, name: str) -> pa.Table:
        """Return a whole table as Arrow, partition column included, in schema column order.

        Reads the Parquet files directly (no catalog, no lock). Row order: partitions in
        path order, rows in file order.
        """
        table = TABLES[name]
        schema = arrow_schema(name)
        files = table_files(self.root, name)
        if not files:
            return schema.empty_table()
        if table.partition_by is None:
            return pq.read_table(files[0]).select(schema.names).cast(schema)
        part = table.column(table.partition_by)
        parts = []
        for path in files:
            data = pq.read_table(path)
            raw = path.parent.name.split("=", 1)[1]
            value = date_of(raw) if pa.types.is_date(part.type) else raw
            column = pa.array([value] * data.num_rows, type=part.type)
            parts.append(data.append_column(part.name, column).select(schema.names))
        return pa.concat_tables(parts).cast(schema)

    def partition_dates(self, name: str) -> list[dt.date]:
        """Dates that have a partition in a date-partitioned table, sorted."""
        table = TABLES[name]
        if table.partition_by is None or not pa.types.is_date(
            table.column(table.partition_by).type
        ):
            raise WarehouseError(f"table {name!r} is not partitioned by date")
        return sorted(date_of(p.parent.name.split("=", 1)[1]) for p in table_files(self.root, name))

    def read_dates(self, name: str, first: dt.date, last: dt.date) -> pa.Table:
        """Rows of a date-partitioned table with ``first <= date <= last`` (Arrow, schema order).

        Reads only those partitions' files (through DuckDB, in parallel); row order is
        the table's key order.
        """
        table = TABLES[name]
        if table.partition_by is None:
            raise WarehouseError(f"table {name!r} is not partitioned")
        files = [
            p
            for p in table_files(self.root, name)
            if first <= date_of(p.parent.name.split("=", 1)[1]) <= last
        ]
        schema = arrow_schema(name)
        if not files:
            return schema.empty_table()
        order = ", ".join(table.key or schema.names)
        con = duckdb.connect(config=DUCKDB_CONFIG)
        try:
            data = con.execute(
                f"SELECT {', '.join(schema.names)} FROM {parquet_source(name, files)} "
                f"ORDER BY {order}"
            ).to_arrow_table()
        finally:
            con.close()
        return data.cast(schema)

    def read_table(self, name: str) -> pd.DataFrame:
        """Return a whole table as a pandas DataFrame (see :meth:`read_arrow`)."""
        return self.read_arrow(name).to_pandas()
