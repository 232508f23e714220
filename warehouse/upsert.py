"""Merge a batch of visit versions into the ``visits`` partitions: "later version wins".

The merge is planned in an in-memory DuckDB connection over the Parquet files; the caller
writes the partitions the plan changes. Rules, by ``visit_key``:

- within the batch, the version with the latest ``updated_at`` is kept (on a tie, the last
  one in the batch);
- a key not stored yet is *inserted*;
- a later ``updated_at`` than the stored version *replaces* it, wherever it is stored (a
  correction that changes ``visit_date`` moves the row to its new partition);
- an equal ``updated_at`` with the same content (``batch_id`` aside) leaves the stored row
  as it is (*unchanged*); with different content it replaces it;
- an earlier ``updated_at`` never overwrites; it is counted as unchanged.

Extra copies of a key found in the partitions read (left by a crash between two partition
writes) are dropped, keeping the latest version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from warehouse.catalog import DUCKDB_CONFIG
from warehouse.files import parquet_source
from warehouse.schema import TABLES

__all__ = ["UpsertPlan", "plan_upsert"]

_VISITS = TABLES["visits"]
_COLUMNS = ", ".join(_VISITS.column_names)
# batch_id says which batch delivered a version; it is not part of the version's content.
_CONTENT = [c for c in _VISITS.column_names if c not in ("visit_key", "batch_id")]


@dataclass
class UpsertPlan:
    """What an upsert does: counts, and the new content of every partition it changes.

    Attributes
    ----------
    inserted, replaced, unchanged : int
        Counts over the distinct keys of the batch.
    partitions : dict
        New rows of each changed ``visit_date`` partition, sorted by
        ``(visit_time, visit_key)`` and without the ``visit_date`` column; an empty table
        means the partition is now empty.
    write_order : list of datetime.date
        Partitions that gain rows first, then those that only lose rows, so an interrupted
        upsert leaves a moved visit twice (healed by the next load of it) rather than
        nowhere.
    """

    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0
    partitions: dict[dt.date, pa.Table] = field(default_factory=dict)
    write_order: list[dt.date] = field(default_factory=list)


def _dates(con: duckdb.DuckDBPyConnection, sql: str) -> set[dt.date]:
    return {row[0] for row in con.execute(sql).fetchall()}


def _files_source(files: dict[dt.date, Path], days: Iterable[dt.date]) -> str | None:
    chosen = [files[d] for d in sorted(days) if d in files]
    return parquet_source("visits", chosen) if chosen else None


def _count_actions(con: duckdb.DuckDBPyConnection, plan: UpsertPlan) -> None:
    rows = con.execute("SELECT action, count(*) FROM decision GROUP BY action").fetchall()
    for action, n in rows:
        if action == "insert":
            plan.inserted = n
        elif action == "replace":
            plan.replaced = n
        else:
            plan.unchanged += n


def _split_by_date(rows: pa.Table, file_schema: pa.Schema) -> dict[dt.date, pa.Table]:
    """Split rows sorted by ``visit_date`` into one table per date (without that column)."""
    days = rows["visit_date"].to_numpy()
    body = rows.drop_columns("visit_date").cast(file_schema)
    if not len(days):
        return {}
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], len(days)]
    return {
        days[a].astype(object): body.slice(a, b - a).combine_chunks()
        for a, b in zip(starts, ends, strict=True)
    }


def plan_upsert(
    incoming: pa.Table, files: dict[dt.date, Path], file_schema: pa.Schema
) -> UpsertPlan:
    """Plan the merge of ``incoming`` visits into the stored partitions.

    Only the key, date and version of stored rows are read to find where the incoming
    keys are; whole rows are read for the versions that need a content comparison (equal
    ``updated_at``) and for the partitions that change.

    Parameters
    ----------
    incoming : pyarrow.Table
        Validated visits (schema of ``visits``, ``visit_date`` included).
    files : dict
        The existing partition files, by ``visit_date``.
    file_schema : pyarrow.Schema
        Schema of a partition file (``visits`` without ``visit_date``).

    Returns
    -------
    UpsertPlan
        Counts and the partitions to rewrite.
    """
    con = duckdb.connect(config=DUCKDB_CONFIG)
    try:
        ordinal = pa.array(range(incoming.num_rows), type=pa.int64())
        con.register("incoming_raw", incoming.append_column("_ord", ordinal))
        con.execute(
            f"CREATE TEMP TABLE incoming AS SELECT {_COLUMNS} FROM incoming_raw "
            "QUALIFY row_number() OVER (PARTITION BY visit_key ORDER BY updated_at DESC, "
            "_ord DESC) = 1"
        )
        everything = _files_source(files, files)
        located = (
            f"SELECT visit_key, visit_date, updated_at FROM {everything} "
            "WHERE visit_key IN (SELECT visit_key FROM incoming)"
            if everything
            else "SELECT visit_key, visit_date, updated_at FROM incoming WHERE false"
        )
        # Where each incoming key is stored, best (latest) copy first.
        con.execute(
            "CREATE TEMP TABLE located AS SELECT *, row_number() OVER (PARTITION BY "
            f"visit_key ORDER BY updated_at DESC, visit_date DESC) AS _rank FROM ({located})"
        )
        con.execute(
            "CREATE TEMP TABLE versions AS SELECT i.visit_key, i.visit_date AS new_date, "
            "s.visit_date AS old_date, i.updated_at AS new_at, s.updated_at AS old_at "
            "FROM incoming i LEFT JOIN (SELECT * FROM located WHERE _rank = 1) s "
            "USING (visit_key)"
        )
        tie_dates = _dates(con, "SELECT DISTINCT old_date FROM versions WHERE new_at = old_at")
        ties = _files_source(files, tie_dates)
        if ties:
            con.execute(
                f"CREATE TEMP TABLE tied AS SELECT {_COLUMNS} FROM {ties} WHERE visit_key IN "
                "(SELECT visit_key FROM versions WHERE new_at = old_at)"
            )
        else:
            con.execute(f"CREATE TEMP TABLE tied AS SELECT {_COLUMNS} FROM incoming WHERE false")
        same = " AND ".join(f"i.{c} IS NOT DISTINCT FROM t.{c}" for c in _CONTENT)
        con.execute(
            "CREATE TEMP TABLE decision AS SELECT v.*, CASE "
            "WHEN v.old_at IS NULL THEN 'insert' "
            "WHEN v.new_at > v.old_at THEN 'replace' "
            "WHEN v.new_at < v.old_at THEN 'older' "
            f"WHEN {same} THEN 'unchanged' "
            "ELSE 'replace' END AS action "
            "FROM versions v JOIN incoming i USING (visit_key) "
            "LEFT JOIN tied t ON t.visit_key = v.visit_key AND t.visit_date = v.old_date"
        )
        plan = UpsertPlan()
        _count_actions(con, plan)
        # Stored rows that go: replaced versions, and extra copies of a key.
        con.execute(
            "CREATE TEMP TABLE removed AS "
            "SELECT visit_key, old_date AS visit_date FROM decision WHERE action = 'replace' "
            "UNION ALL SELECT visit_key, visit_date FROM located WHERE _rank > 1"
        )
        gaining = _dates(
            con, "SELECT DISTINCT new_date FROM decision WHERE action IN ('insert', 'replace')"
        )
        losing = _dates(con, "SELECT DISTINCT visit_date FROM removed")
        plan.write_order = sorted(gaining) + sorted(losing - gaining)
        changed = _files_source(files, plan.write_order)
        kept = (
            f"SELECT {_COLUMNS} FROM {changed} s ANTI JOIN removed r "
            "ON s.visit_key = r.visit_key AND s.visit_date = r.visit_date"
            if changed
            else f"SELECT {_COLUMNS} FROM incoming WHERE false"
        )
        rows = con.execute(
            f"SELECT {_COLUMNS} FROM ({kept}) UNION ALL SELECT {_COLUMNS} FROM incoming "
            "WHERE visit_key IN (SELECT visit_key FROM decision WHERE action IN "
            "('insert', 'replace')) ORDER BY visit_date, visit_time, visit_key"
        ).to_arrow_table()
        plan.partitions = {d: file_schema.empty_table() for d in plan.write_order}
        plan.partitions.update(_split_by_date(rows, file_schema))
        return plan
    finally:
        con.close()
