"""Prospective space-time scan statistic (SaTScan-equivalent): permutation and Poisson.

:func:`scan_space_time` takes a location × day table of case counts, the locations'
coordinates (and population for the Poisson model) and returns the most likely cluster and
the secondary clusters that share no location with a more likely one, each with its
Monte Carlo p-value and recurrence interval. It does no I/O; :mod:`sentinel.scanning`
reads and writes the files of ``sentinel scan``.

The candidate cylinders, their expectations and the Monte Carlo replicates are built in
:mod:`geo.scan_zones`, :mod:`geo.scan_stats` and :mod:`geo.scan_montecarlo`; this module
validates the input, picks each centre's best cylinder and ranks and reports clusters with
SaTScan's rules (``docs/scan.md``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.scan_montecarlo import replicate_maxima
from geo.scan_stats import Expectation, ScanModel, expectation, window_counts, zone_counts
from geo.scan_zones import (
    Locations,
    ScanInputError,
    ZoneSet,
    build_zones,
    locations_from_lat_lon,
    locations_from_xy,
)

__all__ = ["Cluster", "ScanInputError", "ScanModel", "ScanResult", "scan_space_time"]

RANK_TOLERANCE = 1e-9
"""LLRs closer than this rank as equal (then fewer locations, then lower centre index)."""
MIN_REPORTED_LLR = 0.001
MAX_REPORTED_P = 0.999


@dataclass(frozen=True)
class Cluster:
    """One reported space-time cluster.

    Attributes
    ----------
    locations : tuple of int
        Indices (rows of the input) of the cluster's locations, ascending.
    location_ids : tuple of str
        Their ids, sorted.
    centre, centre_id
        The location the circle is centred on (index and id).
    radius_km : float
        Distance from the centre to the farthest member (along the surface for lat/lon).
    start_day, end_day : int
        The time window as day indices of the study period (end_day is always the last).
    observed : int
    expected : float
    relative_risk : float
        (c / μ) / ((N − c) / (N − μ)), SaTScan's definition; infinite when c = N.
    llr : float
        Log-likelihood ratio.
    p_value : float
        (1 + replicates whose maximum LLR ≥ this LLR) / (reps + 1); NaN without replicates.
    recurrence_interval_days : float
        1 / p for a daily prospective analysis.
    """

    locations: tuple[int, ...]
    location_ids: tuple[str, ...]
    centre: int
    centre_id: str
    radius_km: float
    start_day: int
    end_day: int
    observed: int
    expected: float
    relative_risk: float
    llr: float
    p_value: float
    recurrence_interval_days: float


@dataclass(frozen=True)
class ScanResult:
    """Clusters (most likely first) and what produced them."""

    clusters: tuple[Cluster, ...]
    params: Mapping[str, object]
    n_cases: int
    n_days: int
    n_zones: int
    replicate_maxima: NDArray[np.float64] = field(repr=False)


@dataclass(frozen=True)
class _Best:
    llr: float
    size: int
    centre: int
    row: int
    window: int


def _as_counts(cases: ArrayLike) -> NDArray[np.int64]:
    raw = np.asarray(cases)
    if raw.ndim != 2 or raw.shape[0] == 0 or raw.shape[1] == 0:
        raise ScanInputError(
            f"cases must be a non-empty locations × days table, got shape {raw.shape}"
        )
    if not np.issubdtype(raw.dtype, np.number) or not np.isfinite(raw).all():
        raise ScanInputError("cases must be finite numbers")
    if (raw < 0).any():
        raise ScanInputError("cases must not be negative")
    if (raw % 1 != 0).any():
        raise ScanInputError("cases must be whole numbers")
    counts = raw.astype(np.int64)
    if counts.sum() == 0:
        raise ScanInputError("there are no cases in the study period")
    return counts


def _locations(xy_km: ArrayLike | None, lat_lon: ArrayLike | None, n: int) -> Locations:
    if (xy_km is None) == (lat_lon is None):
        raise ScanInputError("give exactly one of xy_km and lat_lon")
    given = np.asarray(xy_km if xy_km is not None else lat_lon, dtype=np.float64)
    if given.shape != (n, 2):
        raise ScanInputError(f"coordinates must have shape ({n}, 2), got {given.shape}")
    if xy_km is not None:
        return locations_from_xy(given[:, 0], given[:, 1])
    return locations_from_lat_lon(given[:, 0], given[:, 1])


def _population(
    model: ScanModel, population: ArrayLike | None, counts: NDArray[np.int64]
) -> NDArray[np.float64] | None:
    if model != "poisson":
        return None
    if population is None:
        raise ScanInputError("the Poisson model needs the population of every location")
    pop = np.asarray(population, dtype=np.float64)
    if pop.shape != (counts.shape[0],):
        raise ScanInputError(f"population must have one value per location ({counts.shape[0]})")
    if not np.isfinite(pop).all() or (pop < 0).any() or pop.sum() <= 0:
        raise ScanInputError("population must be finite, non-negative and not all zero")
    if (counts.sum(axis=1)[pop == 0] > 0).any():
        raise ScanInputError("a location with zero population has cases")
    return pop


def _check_settings(
    model: str, max_days: int, max_radius_km: float | None, max_size_pct: float, reps: int
) -> None:
    if model not in get_args(ScanModel):
        raise ScanInputError(
            f"model must be one of {', '.join(get_args(ScanModel))}, got {model!r}"
        )
    if int(max_days) != max_days or max_days < 1:
        raise ScanInputError(f"max_days must be a whole number ≥ 1, got {max_days}")
    if max_radius_km is not None and not max_radius_km > 0:
        raise ScanInputError(f"max_radius_km must be positive, got {max_radius_km}")
    if not 0 < max_size_pct <= 50:
        raise ScanInputError(f"max_size_pct must be in (0, 50] as in SaTScan, got {max_size_pct}")
    if int(reps) != reps or reps < 0:
        raise ScanInputError(f"reps must be a whole number ≥ 0, got {reps}")


def _best_per_centre(llr: NDArray[np.float64], zones: ZoneSet) -> list[_Best]:
    # Per centre, scanning circles from small to large and windows from short to long, a
    # cylinder replaces the best so far only with a strictly higher LLR: the first maximum
    # in that order, which is what argmax over the (circle, window) ravel returns.
    found = []
    for centre in range(zones.starts.size - 1):
        first, stop = int(zones.starts[centre]), int(zones.starts[centre + 1])
        if first == stop:
            continue
        block = llr[:, first:stop].T  # (circle size, window)
        flat = int(np.argmax(block))
        k, w = divmod(flat, block.shape[1])
        if block[k, w] > 0:
            found.append(_Best(float(block[k, w]), k + 1, centre, first + k, w))
    return found


def _rank(a: _Best, b: _Best) -> int:
    if abs(a.llr - b.llr) > RANK_TOLERANCE:
        return -1 if a.llr > b.llr else 1
    key_a, key_b = (a.size, a.centre), (b.size, b.centre)
    return (key_a > key_b) - (key_a < key_b)


def scan_space_time(
    cases: ArrayLike,
    *,
    rng: np.random.Generator,
    xy_km: ArrayLike | None = None,
    lat_lon: ArrayLike | None = None,
    population: ArrayLike | None = None,
    model: ScanModel = "permutation",
    max_days: int = 7,
    max_radius_km: float | None = None,
    max_size_pct: float = 50.0,
    reps: int = 999,
    location_ids: Sequence[str] | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Prospective space-time scan for clusters of high rates ending on the last day.

    Parameters
    ----------
    cases : array_like of int, shape (n_locations, n_days)
        Cases per location and day of the study period (the last column is the analysis
        day).
    rng : numpy.random.Generator
        Source of the Monte Carlo replicates.
    xy_km, lat_lon : array_like, shape (n_locations, 2)
        Exactly one: planar coordinates in km, or latitude/longitude in degrees (points on
        a sphere of radius 6367 km, chord distances, as SaTScan).
    population : array_like, shape (n_locations,), optional
        Population at risk per location; required by the Poisson model.
    model : {"permutation", "poisson"}
        Space-time permutation (expected from the margins) or Poisson (from population).
    max_days : int
        Longest time window in days (windows last 1 … max_days, capped at n_days).
    max_radius_km : float, optional
        Largest circle radius in km (inclusive).
    max_size_pct : float
        Largest circle as a percentage of all cases (permutation: a location's size is its
        case total over the study period) or of the population (Poisson); at most 50.
    reps : int
        Monte Carlo replicates (0: no p-values).
    location_ids : sequence of str, optional
        Labels of the locations (default: their indices).
    workers : int, optional
        Threads for the replicates (default: the CPUs available).

    Returns
    -------
    ScanResult
        Clusters most likely first; only those with LLR ≥ 0.001 and p ≤ 0.999.

    Raises
    ------
    ScanInputError
        If the input or a setting is invalid (the message names it).

    Notes
    -----
    For a cylinder with c cases and μ expected out of N, LLR = c ln(c/μ) + (N − c)
    ln((N − c)/(N − μ)) when c ≥ 2 and c > μ. Permutation: μ = n_z · n_d / N; Poisson:
    μ = N · (P_z / P) · d / T. p = (1 + #{replicate maxima ≥ LLR}) / (reps + 1).

    References
    ----------
    Kulldorff M. A spatial scan statistic. Commun Stat Theory Methods 1997;26:1481–96.
    Kulldorff M. Prospective time periodic geographical disease surveillance using a scan
    statistic. J R Stat Soc A 2001;164:61–72.
    Kulldorff M, Heffernan R, Hartman J, Assunção R, Mostashari F. A space-time
    permutation scan statistic for disease outbreak detection. PLoS Med 2005;2:e59.
    """
    _check_settings(model, max_days, max_radius_km, max_size_pct, reps)
    counts = _as_counts(cases)
    n_loc, n_days = counts.shape
    locations = _locations(xy_km, lat_lon, n_loc)
    pop = _population(model, population, counts)
    ids = (
        tuple(str(i) for i in range(n_loc))
        if location_ids is None
        else tuple(map(str, location_ids))
    )
    if len(ids) != n_loc or len(set(ids)) != n_loc:
        raise ScanInputError(f"location_ids must be {n_loc} distinct labels")
    n_windows = min(int(max_days), n_days)
    sizes = counts.sum(axis=1) if pop is None else pop
    zones = build_zones(
        locations, sizes, max_size=max_size_pct / 100.0 * sizes.sum(), max_radius=max_radius_km
    )
    expect = expectation(model, counts, zones, n_windows, pop)
    observed = zone_counts(window_counts(counts, n_windows), zones)  # (W, Z)
    llr = expect.llr(observed)
    maxima = replicate_maxima(model, counts, zones, expect, int(reps), rng, pop, workers)
    fast = expect.llr_fast(observed)

    ranked = sorted(_best_per_centre(llr, zones), key=functools.cmp_to_key(_rank))
    taken: set[int] = set()
    clusters = []
    for best in ranked:
        first = int(zones.starts[best.centre])
        members = zones.members[first : best.row + 1]
        if taken.intersection(members.tolist()):
            continue
        taken.update(members.tolist())
        cluster = _cluster(
            best, members, observed, expect, fast, maxima, zones, locations, ids, n_days
        )
        if cluster.llr >= MIN_REPORTED_LLR and not cluster.p_value > MAX_REPORTED_P:
            clusters.append(cluster)
    params = {
        "model": model,
        "max_days": int(max_days),
        "max_radius_km": max_radius_km,
        "max_size_pct": float(max_size_pct),
        "reps": int(reps),
        "coordinates": "lat_lon" if locations.spherical else "xy_km",
    }
    return ScanResult(
        clusters=tuple(clusters),
        params=MappingProxyType(params),
        n_cases=int(counts.sum()),
        n_days=n_days,
        n_zones=zones.n_zones,
        replicate_maxima=maxima,
    )


def _cluster(
    best: _Best,
    members: NDArray[np.intp],
    observed: NDArray[np.int64],
    expect: Expectation,
    fast: NDArray[np.float64],
    maxima: NDArray[np.float64],
    zones: ZoneSet,
    locations: Locations,
    ids: tuple[str, ...],
    n_days: int,
) -> Cluster:
    c = int(observed[best.window, best.row])
    mu = float(expect.mu[best.window, best.row])
    n = expect.total
    reps = maxima.size
    if reps:
        p = (1 + int(np.count_nonzero(maxima >= fast[best.window, best.row]))) / (reps + 1)
    else:
        p = float("nan")
    rest = (n - c) / (n - mu)
    radius = float(locations.reported_km(zones.distance[best.row : best.row + 1])[0])
    return Cluster(
        locations=tuple(sorted(int(m) for m in members)),
        location_ids=tuple(sorted(ids[m] for m in members)),
        centre=best.centre,
        centre_id=ids[best.centre],
        radius_km=radius,
        start_day=n_days - 1 - best.window,
        end_day=n_days - 1,
        observed=c,
        expected=mu,
        relative_risk=(c / mu) / rest if rest > 0 else float("inf"),
        llr=best.llr,
        p_value=p,
        recurrence_interval_days=1.0 / p,
    )
