"""Prospective space-time scan: seconds for 10, 215 and 2,000 locations, 999 replicates.

Each analysis: 30 days of cases (about one case per location per day, spread by
population, no cluster), windows of 1 … 7 days ending on the last day, circles up to 50 %
of the cases (permutation) or of the population (Poisson), no radius cap unless stated,
999 Monte Carlo replicates, all the machine's cores (``workers``). Locations: Changning's
10 streets, the synthetic city's 215 streets (``geo.areas.build_city_area_set(0)``), and
2,000 synthetic locations uniform in a 60 × 60 km square with log-normal populations.
Reports wall seconds (best of ``--repeats``), candidate circles, cylinders evaluated per
replicate and nanoseconds per cylinder-replicate, and the growth with the number of
locations (the exponent of a power law through the timings). Writes
``bench/results/scan.json``.

Run: .venv/bin/python bench/scan.py [--repeats 3] [--out bench/results/scan.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from geo.areas import build_city_area_set, load_area_set
from geo.scan import scan_space_time

DAYS = 30
MAX_DAYS = 7
REPS = 999


def _geographies() -> dict[int, tuple[np.ndarray, np.ndarray, str]]:
    out: dict[int, tuple[np.ndarray, np.ndarray, str]] = {}
    for area, label in (
        (load_area_set("changning"), "Changning streets"),
        (build_city_area_set(0), "synthetic city streets"),
    ):
        xy = area.centroids_km()[["x", "y"]].to_numpy()
        pop = area.streets.set_index("street_code").loc[area.codes, "population"].to_numpy(float)
        out[len(pop)] = (xy, pop, label)
    rng = np.random.default_rng(2000)
    xy = rng.uniform(0.0, 60.0, (2000, 2))
    pop = np.round(rng.lognormal(10.0, 0.5, 2000))
    out[2000] = (xy, pop, "synthetic points, 60 km square")
    return out


def _time(
    xy: np.ndarray,
    pop: np.ndarray,
    model: str,
    repeats: int,
    max_radius_km: float | None = None,
) -> dict[str, Any]:
    rng = np.random.default_rng(len(pop))
    cases = rng.poisson(np.outer(pop / pop.sum() * len(pop), np.ones(DAYS)))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = scan_space_time(
            cases,
            xy_km=xy,
            population=pop,
            model=model,  # type: ignore[arg-type]
            max_days=MAX_DAYS,
            max_radius_km=max_radius_km,
            reps=REPS,
            rng=np.random.default_rng(1),
        )
        best = min(best, time.perf_counter() - start)
    cylinders = result.n_zones * MAX_DAYS
    return {
        "locations": len(pop),
        "model": model,
        "max_radius_km": max_radius_km,
        "cases": int(cases.sum()),
        "seconds": round(best, 3),
        "circles": result.n_zones,
        "cylinders_per_replicate": cylinders,
        "ns_per_cylinder_replicate": round(best / (cylinders * (REPS + 1)) * 1e9, 2),
        "clusters_reported": len(result.clusters),
    }


def _exponent(runs: list[dict[str, Any]], model: str, key: str) -> float:
    """Exponent b of value ∝ locations^b between 215 and 2,000 locations (no radius cap)."""
    by_n = {
        int(r["locations"]): float(r[key])
        for r in runs
        if r["model"] == model and r["max_radius_km"] is None
    }
    return round(math.log(by_n[2000] / by_n[215]) / math.log(2000 / 215), 2)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scan.json")
    args = parser.parse_args()
    geos = _geographies()
    runs: list[dict[str, Any]] = []
    for n, (xy, pop, label) in geos.items():
        repeats = 1 if n >= 2000 else args.repeats
        for model in ("permutation", "poisson"):
            run = _time(xy, pop, model, repeats)
            run["geography"] = label
            runs.append(run)
            print(
                f"{n:>5} locations {model:<11} {run['seconds']:>8.2f} s  {run['circles']:>9,} circles  {run['ns_per_cylinder_replicate']:>6} ns/cylinder-replicate"
            )
    xy, pop, label = geos[2000]
    capped = _time(xy, pop, "permutation", 1, max_radius_km=5.0)
    capped["geography"] = label
    runs.append(capped)
    print(
        f" 2000 locations permutation, radius ≤ 5 km {capped['seconds']:>8.2f} s  {capped['circles']:>9,} circles"
    )
    growth = {
        model: {
            "seconds_exponent_215_to_2000": _exponent(runs, model, "seconds"),
            "circles_exponent_215_to_2000": _exponent(runs, model, "circles"),
        }
        for model in ("permutation", "poisson")
    }
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpu": _cpu(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "settings": {
            "days": DAYS,
            "max_days": MAX_DAYS,
            "reps": REPS,
            "max_size_pct": 50,
            "cases": "Poisson, about one per location per day, by population; no cluster",
            "timing": (
                "wall seconds of scan_space_time (zones, observed scan, replicates), "
                "best of --repeats (one run for 2,000 locations)"
            ),
        },
        "runs": runs,
        "growth": growth,
        "target": "215 locations x 7-day windows x 999 replicates under 5 s on 2 cores",
        "target_met": all(r["seconds"] < 5 for r in runs if r["locations"] == 215),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(growth))


if __name__ == "__main__":
    main()
