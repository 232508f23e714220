"""Detection methods registered by name, with their parameters declared once (the signature).

A method is a function ``detect_x(series, *, at=None, <params with defaults>) -> DetectorResult``.
The registry reads parameter names, defaults and types from the signature, so the CLI's
``--param key=value`` strings are checked and converted in one place.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from detectors.result import DetectorResult
from detectors.series import CountSeries, SeriesError

DetectFunction = Callable[..., DetectorResult]
NOT_PARAMS = frozenset({"series", "at", "rng"})


@dataclass(frozen=True)
class Method:
    """A registered method: name, function, parameter defaults and types, one-line summary."""

    name: str
    function: DetectFunction
    defaults: Mapping[str, object]
    types: Mapping[str, object]
    summary: str
    sparse: bool
    """Works on sparse series (few cases a day); warehouse mode falls back to such methods."""
    observed: Literal["count", "score"] = "count"
    """What the upper bound is compared with: the day's count, or the result's ``score``
    (e.g. a 7-day sum for the moving percentile method)."""

    def run(
        self, series: CountSeries, params: Mapping[str, object] | None = None, **kw: Any
    ) -> DetectorResult:
        """Run on ``series`` with ``params`` (already typed, or strings from the command line)."""
        return self.function(series, **self.resolve(params or {}), **kw)

    def resolve(self, params: Mapping[str, object]) -> dict[str, object]:
        """Check parameter names and convert string values to the declared types."""
        out: dict[str, object] = {}
        for key, value in params.items():
            if key not in self.defaults:
                known = ", ".join(self.defaults) or "none"
                raise SeriesError(f"method {self.name} has no parameter {key!r} (known: {known})")
            out[key] = coerce(value, self.types[key], key) if isinstance(value, str) else value
        return out


METHODS: dict[str, Method] = {}


def register(
    name: str, *, sparse: bool = False, observed: Literal["count", "score"] = "count"
) -> Callable[[DetectFunction], DetectFunction]:
    """Register ``function`` under ``name``; its keyword-only parameters are the method's.

    ``observed="score"`` says the upper bound applies to the result's score (a window
    sum), not to the day's count.
    """

    def wrap(function: DetectFunction) -> DetectFunction:
        hints = typing.get_type_hints(function)
        signature = inspect.signature(function)
        defaults: dict[str, object] = {}
        kinds: dict[str, object] = {}
        for p in signature.parameters.values():
            if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.name in NOT_PARAMS:
                continue
            if p.default is inspect.Parameter.empty:
                raise TypeError(f"{function.__name__}: parameter {p.name} needs a default")
            defaults[p.name] = p.default
            kinds[p.name] = hints.get(p.name, type(p.default))
        summary = (inspect.getdoc(function) or name).splitlines()[0]
        METHODS[name] = Method(name, function, defaults, kinds, summary, sparse, observed)
        return function

    return wrap


def get_method(name: str) -> Method:
    """The method registered as ``name``, or a :class:`SeriesError` listing the known ones."""
    _load_methods()
    try:
        return METHODS[name]
    except KeyError:
        raise SeriesError(
            f"unknown method {name!r} (known: {', '.join(sorted(METHODS))})"
        ) from None


def method_names() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_methods()
    return sorted(METHODS)


def _load_methods() -> None:
    # Importing the package registers every method module.
    import detectors  # noqa: F401


def coerce(text: str, kind: object, key: str) -> object:
    """Convert ``text`` to ``kind`` (int, float, bool, str, Literal, tuple, X | None)."""
    origin = get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(text.strip(), get_args(kind), key)
    if origin is Literal:
        return _coerce_literal(text.strip(), get_args(kind), key)
    if origin is tuple:
        return _coerce_tuple(text.strip(), get_args(kind), key)
    reader = _SCALARS.get(kind)
    if reader is None:
        raise SeriesError(f"{key}: cannot read a {kind} from the command line")
    return reader(text.strip(), key)


def _coerce_union(text: str, args: tuple[object, ...], key: str) -> object:
    if text.lower() in ("none", "null", "") and type(None) in args:
        return None
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return coerce(text, arg, key)
        except SeriesError as exc:
            errors.append(str(exc))
    raise SeriesError(errors[0] if errors else f"bad value for {key}: {text!r}")


def _coerce_literal(text: str, options: tuple[object, ...], key: str) -> object:
    for option in options:
        if str(option) == text:
            return option
    raise SeriesError(f"{key} must be one of {', '.join(map(str, options))}; got {text!r}")


def _coerce_tuple(text: str, args: tuple[object, ...], key: str) -> tuple[object, ...]:
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    if len(args) >= 2 and args[1] is not Ellipsis:
        if len(parts) != len(args):
            raise SeriesError(f"{key} takes {len(args)} comma-separated values; got {text!r}")
        return tuple(coerce(p, a, key) for p, a in zip(parts, args, strict=True))
    inner = args[0] if args else float
    return tuple(coerce(p, inner, key) for p in parts)


def _read_bool(text: str, key: str) -> bool:
    low = text.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise SeriesError(f"{key} must be true or false; got {text!r}")


def _read_float(text: str, key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SeriesError(f"{key} must be a number; got {text!r}") from None


def _read_int(text: str, key: str) -> int:
    value = _read_float(text, key)
    if not value.is_integer():
        raise SeriesError(f"{key} must be a whole number; got {text!r}")
    return int(value)


_SCALARS: dict[object, Callable[[str, str], object]] = {
    bool: _read_bool,
    int: _read_int,
    float: _read_float,
    str: lambda text, key: text,
}
