"""How the nightly space-time scan runs: the ``[scan]`` settings section.

```toml
[scan]
model = "permutation"        # space-time permutation (no population needed), or poisson
study_days = 90              # days of counts before and including the analysis day
max_days = 7                 # longest cluster window, ending on the analysis day
max_radius_km = 0            # 0: no radius cap (the size cap applies)
max_size_pct = 50            # largest circle: % of the study period's cases (or population)
reps = 999                   # Monte Carlo replications
min_recurrence_days = 100    # alert when a cluster's recurrence interval reaches this
syndromes = []               # empty: every syndrome
seed = 0
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sentinel.errors import UsageError

ScanModel = Literal["permutation", "poisson"]


@dataclass(frozen=True)
class ScanSettings:
    """Settings of the warehouse-mode space-time scan.

    Attributes
    ----------
    model : {"permutation", "poisson"}
        Space-time permutation (Kulldorff 2005; needs no population, adjusts for purely
        spatial and purely temporal variation) or space-time Poisson (population at risk).
    study_days : int
        Days of counts scanned, ending on the analysis day. The permutation model compares
        each street's recent share of cases with its share over this period: long enough
        for a stable baseline, short enough that seasons do not shift the streets' shares.
    max_days : int
        Longest cluster window (days, ending on the analysis day).
    max_radius_km : float or None
        Radius cap of the circles; None: only the size cap.
    max_size_pct : float
        Largest circle as a percentage of the study period's cases (permutation) or of
        the population (Poisson).
    reps : int
        Monte Carlo replications (999: p-values down to 0.001, recurrence to 1,000 days).
    min_recurrence_days : float
        A cluster becomes an alert when its recurrence interval (1/p days) reaches this;
        100 days is NYC DOHMH's threshold for daily analyses.
    syndromes : tuple of str
        Syndromes to scan; empty: every syndrome of ``syndrome_daily``.
    seed : int
        Seed of the replications (with the day and syndrome, so every scan is repeatable).
    """

    model: ScanModel = "permutation"
    study_days: int = 90
    max_days: int = 7
    max_radius_km: float | None = None
    max_size_pct: float = 50.0
    reps: int = 999
    min_recurrence_days: float = 100.0
    syndromes: tuple[str, ...] = field(default_factory=tuple)
    seed: int = 0


_INTS = ("study_days", "max_days", "reps", "seed")
_FLOATS = ("max_radius_km", "max_size_pct", "min_recurrence_days")


def parse_scan_settings(data: Mapping[str, Any], where: str) -> ScanSettings:
    """Build :class:`ScanSettings` from the ``[scan]`` table of a settings file.

    Raises
    ------
    UsageError
        Unknown keys or values out of range; names ``where``.
    """
    known = {"model", "syndromes", *_INTS, *_FLOATS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"unknown [scan] setting(s) in {where}: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    model = data.get("model", "permutation")
    if model not in ("permutation", "poisson"):
        raise UsageError(f"[scan] model in {where} must be permutation or poisson, got {model!r}")
    values["model"] = model
    for key in _INTS:
        if key in data:
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"[scan] {key} in {where} must be a whole number ≥ 0")
            values[key] = value
    for key in _FLOATS:
        if key in data:
            value = data[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise UsageError(f"[scan] {key} in {where} must be a number ≥ 0")
            values[key] = float(value)
    if values.get("max_radius_km") == 0.0:
        values["max_radius_km"] = None
    syndromes = data.get("syndromes", [])
    if not isinstance(syndromes, list) or not all(isinstance(s, str) for s in syndromes):
        raise UsageError(f"[scan] syndromes in {where} must be a list of names")
    values["syndromes"] = tuple(syndromes)
    settings = ScanSettings(**values)
    if settings.max_days < 1 or settings.study_days < settings.max_days:
        raise UsageError(f"[scan] in {where}: need 1 ≤ max_days ≤ study_days")
    if settings.reps < 9 or not 0 < settings.max_size_pct <= 50:
        raise UsageError(f"[scan] in {where}: reps ≥ 9 and 0 < max_size_pct ≤ 50")
    return settings
