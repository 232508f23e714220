"""Reference prospective space-time scan in plain loops (slow, obviously correct).

Follows SaTScan's conventions as ECOSYSTEM.md lists them, one rule per line, without
numpy's vectorisation or any code of ``geo.scan*``. Used by the tests to check the engine
on random and real inputs (cluster membership, window, observed, expected, LLR).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

EARTH_RADIUS_KM = 6367.0


@dataclass(frozen=True)
class RefCluster:
    centre: int
    members: tuple[int, ...]  # in entry order
    days: int  # window length, ending on the last day
    observed: int
    expected: float
    llr: float


def sphere_point(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    r = EARTH_RADIUS_KM
    return (r * math.cos(phi) * math.cos(lam), r * math.cos(phi) * math.sin(lam), r * math.sin(phi))


def llr_of(c: int, mu: float, n: int) -> float:
    """Poisson LLR for high rates; 0 unless c ≥ 2 and c > μ."""
    if c < 2 or not c > mu:
        return 0.0
    rest = 0.0 if c == n else (n - c) * math.log((n - c) / (n - mu))
    return c * math.log(c / mu) + rest


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b, strict=True)))


def best_per_centre(
    cases: Sequence[Sequence[int]],
    points: Sequence[Sequence[float]],
    *,
    model: str = "permutation",
    population: Sequence[float] | None = None,
    max_days: int = 7,
    max_radius: float | None = None,
    max_size_pct: float = 50.0,
    expected_from: Sequence[Sequence[int]] | None = None,
) -> list[RefCluster]:
    """Each centre's best cylinder (centres with none are left out).

    ``expected_from``: the observed table whose margins (or N) give the expected counts
    and circle sizes, when ``cases`` is a Monte Carlo replicate.
    """
    basis = cases if expected_from is None else expected_from
    n_loc, n_days = len(cases), len(cases[0])
    total = sum(sum(row) for row in basis)
    windows = min(max_days, n_days)
    day_total = [sum(basis[loc][t] for loc in range(n_loc)) for t in range(n_days)]
    if model == "permutation":
        size = [float(sum(row)) for row in basis]
    else:
        assert population is not None
        size = [float(p) for p in population]
    limit = max_size_pct / 100.0 * sum(size)
    # cases of each location in the window of the last d days, d = 1 … W
    recent = [
        [sum(cases[loc][n_days - d :]) for d in range(1, windows + 1)] for loc in range(n_loc)
    ]
    out = []
    for i in range(n_loc):
        order = sorted(range(n_loc), key=lambda j: (_distance(points[i], points[j]), *points[j], j))
        zone: list[int] = []
        running = 0.0
        zone_recent = [0] * windows  # the zone's cases in each window, kept as locations enter
        zone_cases = 0
        zone_pop = 0.0
        best: RefCluster | None = None
        for j in order:
            if max_radius is not None and _distance(points[i], points[j]) > max_radius:
                break
            if running + size[j] > limit:
                break  # the circle stops here, it never skips to a smaller location
            running += size[j]
            zone.append(j)
            zone_cases += sum(basis[j])
            zone_pop += 0.0 if population is None else population[j]
            for d in range(1, windows + 1):
                zone_recent[d - 1] += recent[j][d - 1]
                c = zone_recent[d - 1]
                if model == "permutation":
                    mu = zone_cases * sum(day_total[n_days - d :]) / total
                else:
                    assert population is not None
                    mu = total * zone_pop / sum(population) * d / n_days
                value = llr_of(c, mu, total)
                if value > 0 and (best is None or value > best.llr):  # strictly higher
                    best = RefCluster(i, tuple(zone), d, c, mu, value)
        if best is not None:
            out.append(best)
    return out


def _compare(a: RefCluster, b: RefCluster) -> int:
    if abs(a.llr - b.llr) > 1e-9:
        return -1 if a.llr > b.llr else 1
    # equal within 1e-9: fewer locations first, then the lower centre index
    return -1 if (len(a.members), a.centre) < (len(b.members), b.centre) else 1


def brute_force_scan(
    cases: Sequence[Sequence[int]],
    points: Sequence[Sequence[float]],
    **settings: object,
) -> list[RefCluster]:
    """Most likely cluster first, then secondary clusters sharing no location with a
    cluster kept before them; only LLR ≥ 0.001 (no p-values here)."""
    candidates = best_per_centre(cases, points, **settings)  # type: ignore[arg-type]
    ranked = sorted(candidates, key=functools.cmp_to_key(_compare))
    kept: list[RefCluster] = []
    for cand in ranked:
        if any(set(cand.members) & set(k.members) for k in kept):
            continue
        kept.append(cand)
    return [k for k in kept if k.llr >= 0.001]
