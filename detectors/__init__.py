"""Temporal outbreak detection: pure, vectorised methods over count series, registered by name.

Importing the package registers every method (see :mod:`detectors.registry`).
"""

from __future__ import annotations

from detectors.registry import METHODS, Method, get_method, method_names, register
from detectors.result import DetectorResult
from detectors.series import CountSeries, SeriesError, make_series

__all__ = [
    "METHODS",
    "CountSeries",
    "DetectorResult",
    "Method",
    "SeriesError",
    "get_method",
    "make_series",
    "method_names",
    "register",
]

# Method modules register themselves on import; listed here as they land.
_METHOD_MODULES = ("ears", "cusum", "farrington", "essence", "nbglm", "mpm")


def _import_methods() -> None:
    import importlib
    import importlib.util

    for name in _METHOD_MODULES:
        if importlib.util.find_spec(f"detectors.{name}") is not None:
            importlib.import_module(f"detectors.{name}")


_import_methods()
