"""Aggregate ``visits`` into ``syndrome_daily``: a dense street x syndrome grid per date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.catalog import DUCKDB_CONFIG
from warehouse.files import parquet_source
from warehouse.schema import arrow_schema

__all__ = ["aggregate_syndrome_age_daily", "aggregate_syndrome_daily"]

_EMPTY_VISITS = (
    "SELECT DATE '2000-01-01' AS date, 'x' AS street_code, 'x' AS age_group, "
    "CAST([] AS VARCHAR[]) AS syndromes WHERE false"
)


def aggregate_syndrome_daily(
    visit_files: dict[dt.date, Path],
    days: list[dt.date],
    syndromes: list[str],
    streets: list[str] | None,
) -> pa.Table:
    """Count visits per date, street of residence and syndrome, zeros included.

    Parameters
    ----------
    visit_files : dict
        Every ``visits`` partition file, by date.
    days : list of datetime.date
        Dates to aggregate (dates without visits give rows of zeros).
    syndromes : list of str
        Syndromes of the grid; others found in ``visits.syndromes`` are ignored.
    streets : list of str, optional
        Streets of the grid; ``None`` takes every street code found in ``visits``.

    Returns
    -------
    pyarrow.Table
        Rows of ``syndrome_daily`` sorted by ``(date, street_code, syndrome)``: ``count`` is
        the number of visits of the street's residents that day whose ``syndromes`` contain
        the syndrome, ``visits`` all their visits that day. Visits without a street code,
        or with one outside the grid, are not counted.
    """
    con = duckdb.connect(config=DUCKDB_CONFIG)
    try:
        con.register("days", pa.table({"date": pa.array(days, pa.date32())}))
        con.register("names", pa.table({"syndrome": pa.array(syndromes, pa.string())}))
        if streets is None:
            source = parquet_source("visits", list(visit_files.values())) if visit_files else None
            found = (
                con.execute(
                    f"SELECT DISTINCT street_code FROM {source} WHERE street_code IS NOT NULL"
                ).to_arrow_table()["street_code"]
                if source
                else pa.array([], pa.string())
            )
            con.register("street_list", pa.table({"street_code": found}))
        else:
            con.register("street_list", pa.table({"street_code": pa.array(streets, pa.string())}))
        day_files = [visit_files[d] for d in days if d in visit_files]
        visits_sql = (
            f"SELECT visit_date AS date, street_code, age_group, syndromes FROM "
            f"{parquet_source('visits', day_files)} WHERE street_code IS NOT NULL"
            if day_files
            else _EMPTY_VISITS
        )
        grid = con.execute(
            f"WITH v AS ({visits_sql}), "
            "totals AS (SELECT date, street_code, count(*) AS visits FROM v GROUP BY ALL), "
            "counts AS (SELECT date, street_code, syndrome, count(*) AS count FROM "
            "(SELECT date, street_code, unnest(list_distinct(syndromes)) AS syndrome FROM v) "
            "GROUP BY ALL) "
            "SELECT d.date, s.street_code, n.syndrome, coalesce(c.count, 0) AS count, "
            "coalesce(t.visits, 0) AS visits "
            "FROM days d CROSS JOIN (SELECT DISTINCT street_code FROM street_list) s "
            "CROSS JOIN names n "
            "LEFT JOIN counts c ON c.date = d.date AND c.street_code = s.street_code "
            "AND c.syndrome = n.syndrome "
            "LEFT JOIN totals t ON t.date = d.date AND t.street_code = s.street_code "
            "ORDER BY d.date, s.street_code, n.syndrome"
        ).to_arrow_table()
        return grid.cast(arrow_schema("syndrome_daily"))
    finally:
        con.close()


def aggregate_syndrome_age_daily(
    visit_files: dict[dt.date, Path],
    days: list[dt.date],
    syndromes: list[str],
    streets: list[str] | None,
) -> pa.Table:
    """Count visits per date, street, age group and syndrome; non-zero counts only.

    Same rules as :func:`aggregate_syndrome_daily`; visits without an age group are left out.
    Rows are sorted by ``(date, street_code, age_group, syndrome)``.
    """
    day_files = [visit_files[d] for d in days if d in visit_files]
    if not day_files or not syndromes:
        return arrow_schema("syndrome_age_daily").empty_table()
    con = duckdb.connect(config=DUCKDB_CONFIG)
    try:
        con.register("names", pa.table({"syndrome": pa.array(syndromes, pa.string())}))
        street_filter = ""
        if streets is not None:
            con.register("street_list", pa.table({"street_code": pa.array(streets, pa.string())}))
            street_filter = "AND street_code IN (SELECT street_code FROM street_list)"
        table = con.execute(
            "SELECT date, street_code, age_group, syndrome, count(*) AS count FROM ("
            "  SELECT visit_date AS date, street_code, age_group, "
            "         unnest(list_distinct(syndromes)) AS syndrome "
            f"  FROM {parquet_source('visits', day_files)} "
            f"  WHERE street_code IS NOT NULL AND age_group IS NOT NULL {street_filter}"
            ") WHERE syndrome IN (SELECT syndrome FROM names) GROUP BY ALL "
            "ORDER BY date, street_code, age_group, syndrome"
        ).to_arrow_table()
        return table.cast(arrow_schema("syndrome_age_daily"))
    finally:
        con.close()
