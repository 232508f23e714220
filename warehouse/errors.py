"""Typed errors of the warehouse.

Every error the warehouse raises on purpose derives from :class:`WarehouseError`, so callers
(the ``sentinel`` command, DAG tasks) can catch one class and print a one-line message.
Messages name the table and column or the statement concerned, never a row's identifiers.
"""

from __future__ import annotations

__all__ = ["QueryError", "ReadOnlyError", "SchemaError", "WarehouseError"]


class WarehouseError(Exception):
    """Base class of every error raised by :mod:`warehouse`."""


class SchemaError(WarehouseError):
    """A DataFrame does not fit the schema of the table it is written to."""


class ReadOnlyError(WarehouseError):
    """A query tried to change the warehouse (or reach outside it) through a read-only path."""


class QueryError(WarehouseError):
    """A read-only query failed: syntax error, unknown table or column, bad types."""
