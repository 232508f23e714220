"""The DuckDB catalog: ``<root>/sentinel.duckdb``, one view per table over its Parquet files.

The catalog holds views only, no data. A view reads its table's Parquet files through an
absolute glob, so new partitions show up without touching the catalog; the catalog is
rebuilt only when a table goes from no files to some (or back), when the schema changes or
when the warehouse has moved. It is built in a temporary file and moved over the old one,
so the live catalog is never opened read-write: analysts' read-only sessions (which hold a
lock on the file) never block a writer, and keep the catalog they opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import duckdb
import pandas as pd

from warehouse.errors import QueryError, ReadOnlyError, WarehouseError
from warehouse.files import DATA_FILE
from warehouse.lock import writer_lock
from warehouse.schema import TABLES, Table, duckdb_type

__all__ = [
    "CATALOG_FILE",
    "DUCKDB_CONFIG",
    "catalog_statements",
    "connect_readonly",
    "refresh_catalog",
    "run_query",
]

CATALOG_FILE = "sentinel.duckdb"
_STATE_FILE = ".catalog.json"

DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    # Nothing may be downloaded at run time.
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""Settings of every DuckDB connection the warehouse opens."""

_READ_ONLY_MESSAGE = "the warehouse is read-only from `sentinel sql`"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(root: Path, table: Table) -> str | None:
    """Return the ``read_parquet(…)`` call of a table, or ``None`` if it has no file yet."""
    folder = root / table.name
    if table.partition_by is None:
        path = folder / DATA_FILE
        return f"read_parquet({_literal(str(path))})" if path.is_file() else None
    if next(folder.glob("*/*.parquet"), None) is None:
        return None
    part = table.column(table.partition_by)
    return (
        f"read_parquet({_literal(str(folder / '*' / '*.parquet'))}, hive_partitioning = true, "
        f"hive_types = {{{_literal(part.name)}: {duckdb_type(part)}}})"
    )


def _view_column(table: Table, name: str) -> str:
    if name != table.partition_by:
        return _ident(name)
    # DuckDB 1.5.5 fails with an INTERNAL error on min()/max() of a bare hive partition
    # column when one file is left to read (duckdb/duckdb#25629, fixed in 1.5.6). Wrapping
    # the column keeps its type and partition pruning but avoids that code path.
    return f"coalesce({_ident(name)}, NULL) AS {_ident(name)}"


def catalog_statements(root: Path) -> list[str]:
    """Return the SQL that builds the catalog of the warehouse at ``root``, as it is now.

    Parameters
    ----------
    root : pathlib.Path
        Absolute warehouse root.

    Returns
    -------
    list of str
        ``CREATE VIEW`` and ``COMMENT ON`` statements: a view over the Parquet files of each
        table that has some, a typed empty view for each table that has none.
    """
    statements = []
    for table in TABLES.values():
        source = _source(root, table)
        if source is None:
            select = ", ".join(
                f"CAST(NULL AS {duckdb_type(c)}) AS {_ident(c.name)}" for c in table.columns
            )
            statements.append(f"CREATE VIEW {_ident(table.name)} AS SELECT {select} WHERE false")
        else:
            select = ", ".join(_view_column(table, c.name) for c in table.columns)
            statements.append(f"CREATE VIEW {_ident(table.name)} AS SELECT {select} FROM {source}")
        statements.append(f"COMMENT ON VIEW {_ident(table.name)} IS {_literal(table.description)}")
        statements.extend(
            f"COMMENT ON COLUMN {_ident(table.name)}.{_ident(c.name)} IS {_literal(c.description)}"
            for c in table.columns
        )
    return statements


def _check_root(root: Path) -> Path:
    root = root.resolve()
    if any(ch in str(root) for ch in "*?[]{}"):
        # The views glob below the root: glob characters in it would match other folders.
        raise WarehouseError(f"the warehouse path {root} contains glob characters (*?[]{{}})")
    return root


def _read_state(root: Path) -> dict[str, str]:
    try:
        state = json.loads((root / _STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def refresh_catalog(root: Path) -> bool:
    """(Re)create the catalog's views if the warehouse changed shape; cheap otherwise.

    Takes the writer lock. The new catalog is built in a temporary file and moved over
    ``<root>/sentinel.duckdb``; a fingerprint of the statements in ``<root>/.catalog.json``
    makes a refresh that would change nothing a few ``stat`` calls. Run it after moving
    ``SENTINEL_HOME``: the views hold absolute paths.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse root (created if missing).

    Returns
    -------
    bool
        Whether the catalog file was rebuilt.
    """
    root = _check_root(root)
    with writer_lock(root):
        statements = catalog_statements(root)
        text = "\n".join([duckdb.__version__, *statements])
        fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()
        catalog = root / CATALOG_FILE
        state = {"root": str(root), "fingerprint": fingerprint}
        if catalog.is_file() and _read_state(root) == state:
            return False
        tmp = root / f".{CATALOG_FILE}.{os.getpid()}.tmp"
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        con = duckdb.connect(str(tmp), config=DUCKDB_CONFIG)
        try:
            for statement in statements:
                con.execute(statement)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, catalog)
        state_tmp = root / (_STATE_FILE + ".tmp")
        state_tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(state_tmp, root / _STATE_FILE)
        return True


def connect_readonly(
    root: Path, *, attempts: int = 5, wait: float = 0.2
) -> duckdb.DuckDBPyConnection:
    """Open the catalog read-only.

    The connection is a private in-memory DuckDB session with the catalog attached
    ``READ_ONLY`` as ``sentinel`` and selected (``USE sentinel``), so the views answer by
    their plain names. Being private, settings changed on it (as :func:`run_query` does)
    never leak into other connections of the process, and it never clashes with another
    connection of the process that opened the catalog file with other settings.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse root.
    attempts : int
        Tries while another process holds the catalog open read-write.
    wait : float
        Seconds between tries.

    Returns
    -------
    duckdb.DuckDBPyConnection
        The connection; close it when done.

    Raises
    ------
    WarehouseError
        No warehouse at ``root``, a catalog built for another location (moved warehouse),
        or the catalog still locked after ``attempts`` tries.
    """
    root = _check_root(root)
    catalog = root / CATALOG_FILE
    if not catalog.is_file():
        raise WarehouseError(f"no warehouse at {root}; run `sentinel demo` or an ingest first")
    built_for = _read_state(root).get("root")
    if built_for is not None and built_for != str(root):
        raise WarehouseError(
            f"the catalog at {catalog} was built for {built_for}; run "
            f"warehouse.catalog.refresh_catalog on {root} after moving a warehouse"
        )
    con = duckdb.connect(":memory:", config=DUCKDB_CONFIG)
    try:
        for attempt in range(attempts):
            try:
                con.execute(f"ATTACH {_literal(str(catalog))} AS sentinel (READ_ONLY)")
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise WarehouseError(f"cannot open {catalog}: {exc}") from None
                if attempt == attempts - 1:
                    raise WarehouseError(
                        f"{catalog} is held open read-write by another process; open it "
                        "with `duckdb -readonly` (analysts) or retry later"
                    ) from None
                time.sleep(wait)
        con.execute("USE sentinel")
    except BaseException:
        con.close()
        raise
    return con


_ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT})
# Leading comments, EXPLAIN and its options: what is left must be a plain query.
_EXPLAIN_PREFIX = re.compile(
    r"^(?:\s+|--[^\n]*\n|/\*.*?\*/)*EXPLAIN\s+(?:ANALY[SZ]E\s+|\([^)]*\)\s*)?",
    re.IGNORECASE | re.DOTALL,
)


def _check_statement(con: duckdb.DuckDBPyConnection, statement: duckdb.Statement) -> None:
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement: EXPLAIN ANALYZE COPY … TO would write.
        match = _EXPLAIN_PREFIX.match(statement.query)
        inner = statement.query[match.end() :] if match else ""
        try:
            inner_statements = con.extract_statements(inner) if inner.strip() else []
        except duckdb.Error:
            inner_statements = []
        if inner_statements and all(s.type in _ALLOWED_STATEMENTS for s in inner_statements):
            return
        raise ReadOnlyError(f"{_READ_ONLY_MESSAGE}: only EXPLAIN of a SELECT is allowed")
    if kind not in _ALLOWED_STATEMENTS:
        raise ReadOnlyError(
            f"{_READ_ONLY_MESSAGE}: {kind.name} statements are refused; "
            "only queries (SELECT, FROM, WITH, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN) run here"
        )


def _sandbox(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Let the connection read the warehouse's Parquet files and nothing else."""
    folders = ", ".join(_literal(str(root / name) + "/") for name in TABLES)
    con.execute(f"SET allowed_directories = [{folders}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run_query(root: Path, sql: str) -> pd.DataFrame:
    """Run read-only SQL against the warehouse views and return the last result.

    Only queries run: every statement must be a SELECT (including FROM, WITH, SHOW,
    DESCRIBE, SUMMARIZE, PRAGMA listings) or an EXPLAIN of one. Besides, the connection is
    read-only, file access is limited to the warehouse's table folders and the
    configuration is locked, so a write would fail in DuckDB too.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse root.
    sql : str
        One or more statements separated by ``;``.

    Returns
    -------
    pandas.DataFrame
        Result of the last statement.

    Raises
    ------
    ReadOnlyError
        For any statement that would write (INSERT, CREATE, COPY, ATTACH, INSTALL, LOAD,
        SET…) or reach files outside the warehouse.
    QueryError
        For syntax errors, unknown tables or columns and other query failures, with
        DuckDB's message.
    WarehouseError
        When there is no warehouse at ``root`` (see :func:`connect_readonly`).
    """
    root = _check_root(root)
    con = connect_readonly(root)
    try:
        _sandbox(con, root)
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        if not statements:
            raise QueryError("no SQL statement given")
        for statement in statements:
            _check_statement(con, statement)
        try:
            result = None
            for statement in statements:
                result = con.execute(statement)
            assert result is not None
            return result.df()
        except duckdb.PermissionException as exc:
            raise ReadOnlyError(f"{_READ_ONLY_MESSAGE}: {exc}") from None
        except duckdb.Error as exc:
            if "read-only" in str(exc):
                raise ReadOnlyError(f"{_READ_ONLY_MESSAGE}: {exc}") from None
            raise QueryError(str(exc)) from None
    finally:
        con.close()
