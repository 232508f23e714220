"""The Sentinel warehouse: one schema, Parquet files, a DuckDB catalog of views.

See ``warehouse/README.md`` for the contract and ``docs/warehouse.md`` for the tables.
"""

from warehouse.catalog import connect_readonly, refresh_catalog, run_query
from warehouse.errors import QueryError, ReadOnlyError, SchemaError, WarehouseError
from warehouse.schema import TABLES, Column, Table, arrow_schema, duckdb_type, render_markdown
from warehouse.store import UpsertResult, Warehouse

__all__ = [
    "TABLES",
    "Column",
    "QueryError",
    "ReadOnlyError",
    "SchemaError",
    "Table",
    "UpsertResult",
    "Warehouse",
    "WarehouseError",
    "arrow_schema",
    "connect_readonly",
    "duckdb_type",
    "refresh_catalog",
    "render_markdown",
    "run_query",
]
