"""Which detector runs on which series in warehouse mode: the ``[detect]`` settings section.

```toml
[detect]
method = "switch"                  # default method for every syndrome
params = { red = 0.001 }           # its parameters
fallback_method = "ewma"           # sparse series, or where the method lacks history
fallback_params = { red = 0.001 }
sparse_below = 1.0                 # mean daily count (last 28 days) below which a series is sparse
history_days = 1200                # history read for each analysis day (mpm: 3 years + 20 days)
reporting_lag_days = 1             # `sentinel detect` without --date analyses today - lag
age_groups = true                  # also run street x syndrome x age-group series
age_group_min_daily = 0.3          # ... where the group's mean daily count reaches this
age_group_params = { red = 0.0001 } # stricter parameters for age-group series (more tests)

[detect.syndromes.ili]             # per-syndrome choice
method = "farrington_flexible"
params = { b = 2 }
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sentinel.errors import UsageError


@dataclass(frozen=True)
class DetectorChoice:
    """A registered method and its parameters (typed, defaults not repeated)."""

    method: str
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def __hash__(self) -> int:
        return hash(self.label())

    def label(self) -> str:
        """``method`` or ``method(k=v, …)`` for logs and tables."""
        if not self.params:
            return self.method
        inner = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.method}({inner})"


# Defaults chosen with `sentinel evaluate` (docs/detection.md holds the evidence).
# ESSENCE's switch at p < 0.001 met the target (≤ 1 false alarm per 100 series-days)
# with the best sensitivity of the methods that work from two weeks of history.
DEFAULT_METHOD = DetectorChoice("switch", MappingProxyType({"red": 0.001}))
DEFAULT_FALLBACK = DetectorChoice("ewma", MappingProxyType({"red": 0.001}))


@dataclass(frozen=True)
class DetectSettings:
    """How warehouse-mode detection chooses methods and series.

    Attributes
    ----------
    method : DetectorChoice
        Default method for every syndrome.
    fallback : DetectorChoice
        Method for sparse series and for days the main method cannot compute (history).
    syndromes : Mapping[str, DetectorChoice]
        Per-syndrome method overriding ``method``.
    sparse_below : float
        A series whose mean daily count over the 28 days before the analysis day is below
        this is sparse and goes to ``fallback``.
    history_days : int
        Days of history read before the analysis day.
    reporting_lag_days : int
        Without ``--date``, the analysis day is today minus this (the latest complete day).
    age_groups : bool
        Also analyse street × syndrome × age-group series.
    age_group_min_daily : float
        Run an age-group series only where its mean daily count over the history reaches this.
    age_group_params : Mapping
        Parameters that override the chosen method's for age-group series (and the
        fallback's, where it has them): each street × syndrome is tested 6 times (all ages
        and 5 groups), so the age-group tests are made stricter to keep the false alarms
        per street-syndrome on target.
    """

    method: DetectorChoice = DEFAULT_METHOD
    fallback: DetectorChoice = DEFAULT_FALLBACK
    syndromes: Mapping[str, DetectorChoice] = field(default_factory=lambda: MappingProxyType({}))
    sparse_below: float = 1.0
    history_days: int = 1200
    reporting_lag_days: int = 1
    age_groups: bool = True
    age_group_min_daily: float = 0.3
    age_group_params: Mapping[str, object] = field(
        default_factory=lambda: MappingProxyType({"red": 0.0001})
    )

    def choice_for(self, syndrome: str, age_group: str | None = None) -> DetectorChoice:
        """The method configured for ``syndrome`` (stricter for an age-group series)."""
        return self._aged(self.syndromes.get(syndrome, self.method), age_group)

    def fallback_for(self, age_group: str | None = None) -> DetectorChoice:
        """The fallback method (stricter for an age-group series)."""
        return self._aged(self.fallback, age_group)

    def _aged(self, choice: DetectorChoice, age_group: str | None) -> DetectorChoice:
        if age_group is None or not self.age_group_params:
            return choice
        from detectors.registry import get_method

        known = get_method(choice.method).defaults
        extra = {k: v for k, v in self.age_group_params.items() if k in known}
        if not extra:
            return choice
        return DetectorChoice(choice.method, MappingProxyType({**choice.params, **extra}))


_KEYS = {
    "method", "params", "fallback_method", "fallback_params", "sparse_below", "history_days",
    "reporting_lag_days", "age_groups", "age_group_min_daily", "age_group_params", "syndromes",
}  # fmt: skip


def parse_detect_settings(data: Mapping[str, Any], where: str) -> DetectSettings:
    """Build :class:`DetectSettings` from the ``[detect]`` table of a settings file.

    Method names and parameters are checked against the registry here, so a typo fails
    when settings load, not in the middle of a nightly run.

    Raises
    ------
    UsageError
        Unknown keys, methods or parameters, or values of the wrong type; names ``where``.
    """
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise UsageError(f"unknown [detect] setting(s) in {where}: {', '.join(unknown)}")
    base = DetectSettings()
    # Parameters not given keep the defaults only when the method is the default one.
    method = _choice(
        data.get("method", base.method.method),
        data.get("params", base.method.params if "method" not in data else {}),
        where,
    )
    fallback = _choice(
        data.get("fallback_method", base.fallback.method),
        data.get("fallback_params", base.fallback.params if "fallback_method" not in data else {}),
        where,
    )
    per_syndrome = data.get("syndromes", {})
    if not isinstance(per_syndrome, Mapping):
        raise UsageError(f"[detect.syndromes] in {where} must be a table")
    syndromes = {}
    for name, spec in per_syndrome.items():
        if not isinstance(spec, Mapping) or "method" not in spec:
            raise UsageError(f"[detect.syndromes.{name}] in {where} needs a method")
        extra = sorted(set(spec) - {"method", "params"})
        if extra:
            raise UsageError(f"unknown key(s) in [detect.syndromes.{name}]: {', '.join(extra)}")
        syndromes[str(name)] = _choice(spec["method"], spec.get("params", {}), where)
    try:
        return DetectSettings(
            method=method,
            fallback=fallback,
            syndromes=MappingProxyType(syndromes),
            sparse_below=float(data.get("sparse_below", base.sparse_below)),
            history_days=_positive_int(data, "history_days", base.history_days),
            reporting_lag_days=_positive_int(
                data, "reporting_lag_days", base.reporting_lag_days, minimum=0
            ),
            age_groups=bool(data.get("age_groups", base.age_groups)),
            age_group_min_daily=float(data.get("age_group_min_daily", base.age_group_min_daily)),
            age_group_params=_age_params(data.get("age_group_params"), base, where),
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad [detect] value in {where}: {exc}") from None


def _age_params(value: object, base: DetectSettings, where: str) -> Mapping[str, object]:
    if value is None:
        return base.age_group_params
    if not isinstance(value, Mapping):
        raise UsageError(f"[detect] age_group_params in {where} must be a table")
    return MappingProxyType(dict(value))


def _positive_int(data: Mapping[str, Any], key: str, default: int, minimum: int = 1) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"[detect] {key} must be a whole number ≥ {minimum}, got {value!r}")
    return value


def _choice(method: object, params: object, where: str) -> DetectorChoice:
    from detectors.registry import get_method
    from detectors.series import SeriesError

    if not isinstance(method, str):
        raise UsageError(f"[detect] method in {where} must be a name, got {method!r}")
    if not isinstance(params, Mapping):
        raise UsageError(f"[detect] params of {method} in {where} must be a table")
    try:
        resolved = get_method(method).resolve(
            {str(k): (v if not isinstance(v, list) else tuple(v)) for k, v in params.items()}
        )
    except SeriesError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return DetectorChoice(method, MappingProxyType(resolved))
