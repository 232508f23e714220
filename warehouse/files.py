"""Parquet files of the warehouse: where they live and how they are written atomically."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.errors import WarehouseError
from warehouse.schema import TABLES, duckdb_type

__all__ = [
    "DATA_FILE",
    "parquet_source",
    "partition_path",
    "partition_value",
    "remove_atomic",
    "sql_literal",
    "table_files",
    "write_parquet_atomic",
]

DATA_FILE = "data.parquet"

# Partition values become folder names that DuckDB parses back: keep them plain.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def partition_value(value: object) -> str:
    """Return the folder-name form of a partition value (dates as ``YYYY-MM-DD``).

    Raises
    ------
    WarehouseError
        When a text value is not a plain name (letters, digits, ``.``, ``_``, ``-``, at
        most 200 characters, starting with a letter or digit).
    """
    if isinstance(value, dt.datetime):
        raise WarehouseError(f"partition value must be a date, not the datetime {value!r}")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    if not _SAFE_VALUE.fullmatch(text):
        raise WarehouseError(
            f"{text!r} cannot name a partition: use letters, digits, '.', '_' and '-' only"
        )
    return text


def partition_path(root: Path, table_name: str, value: object = None) -> Path:
    """Return the path of a table's Parquet file (of one partition, if partitioned)."""
    table = TABLES[table_name]
    if table.partition_by is None:
        return root / table.name / DATA_FILE
    return root / table.name / f"{table.partition_by}={partition_value(value)}" / DATA_FILE


def table_files(root: Path, table_name: str) -> list[Path]:
    """Return the existing Parquet files of a table, sorted by path."""
    table = TABLES[table_name]
    if table.partition_by is None:
        path = root / table.name / DATA_FILE
        return [path] if path.is_file() else []
    return sorted((root / table.name).glob(f"{table.partition_by}=*/{DATA_FILE}"))


def sql_literal(text: str) -> str:
    """Return ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def parquet_source(table_name: str, files: list[Path]) -> str:
    """Return a DuckDB ``read_parquet`` call over some files of a table.

    For a partitioned table the partition column is read from the paths, typed as in the
    schema.
    """
    table = TABLES[table_name]
    paths = ", ".join(sql_literal(str(p)) for p in files)
    if table.partition_by is None:
        return f"read_parquet([{paths}])"
    part = table.column(table.partition_by)
    return (
        f"read_parquet([{paths}], hive_partitioning = true, "
        f"hive_types = {{{sql_literal(part.name)}: {duckdb_type(part)}}})"
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path``: a ``.tmp`` file in the same folder, then ``os.replace``.

    Readers see the old file or the new one, never a partial file. The output is
    byte-for-byte the same for the same rows in the same order (no time stamps are stored).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as sink:
        pq.write_table(table, sink, compression="zstd")
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def remove_atomic(path: Path) -> None:
    """Remove a table file (and its partition folder when that is left empty)."""
    path.unlink(missing_ok=True)
    folder = path.parent
    if "=" in folder.name and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
