"""Bring Parquet files written by an earlier Sentinel up to the current schema.

When a release adds columns to a table, files already in a warehouse lack them and the
catalog's views would fail. On opening, the warehouse compares a fingerprint of the schema
with the one it last upgraded to; only when they differ does it read every file's footer
and rewrite the files that miss columns (nullable columns get nulls, the others their
declared default). Columns are only ever added: a removed or retyped column needs a
hand-written migration, and :func:`upgrade_files` refuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.errors import WarehouseError
from warehouse.files import table_files, write_parquet_atomic
from warehouse.schema import TABLES, file_schema

__all__ = ["SCHEMA_FINGERPRINT", "upgrade_files"]

DEFAULTS: dict[tuple[str, str], object] = {("alerts", "announcement"): "new"}
"""Values for NOT NULL columns added after files were written."""

_STATE = ".schema.json"


def _fingerprint() -> str:
    text = json.dumps({name: str(file_schema(name)) for name in sorted(TABLES)})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


SCHEMA_FINGERPRINT = _fingerprint()


def upgrade_files(root: Path) -> int:
    """Add missing columns to old files under ``root``; return how many files were rewritten.

    Call with the writer lock held. Cheap when nothing changed (one small file read).
    """
    state = root / _STATE
    if state.is_file() and json.loads(state.read_text("utf-8")).get("schema") == SCHEMA_FINGERPRINT:
        return 0
    rewritten = 0
    for name in TABLES:
        want = file_schema(name)
        for path in table_files(root, name):
            have = pq.read_schema(path)
            if have.names == want.names:
                continue
            rewritten += _rewrite(name, path, have, want)
    tmp = state.with_name(state.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA_FINGERPRINT}), encoding="utf-8")
    os.replace(tmp, state)
    return rewritten


def _rewrite(name: str, path: Path, have: pa.Schema, want: pa.Schema) -> int:
    gone = [n for n in have.names if n not in want.names]
    if gone:
        raise WarehouseError(
            f"{path}: column(s) {', '.join(gone)} are no longer in table {name!r}; "
            "this needs a migration, not an automatic upgrade"
        )
    data = pq.read_table(path)
    columns = []
    for field in want:
        if field.name in have.names:
            columns.append(data[field.name].cast(field.type))
            continue
        default = DEFAULTS.get((name, field.name))
        if default is None and not field.nullable:
            raise WarehouseError(
                f"{path}: new NOT NULL column {field.name!r} of {name!r} has no default"
            )
        columns.append(pa.array([default] * data.num_rows, type=field.type))
    write_parquet_atomic(pa.Table.from_arrays(columns, schema=want), path)
    return 1
