"""Simulator throughput: generation alone, each writer, all writers, and a city-scale day.

Run: .venv/bin/python bench/simulate.py [--days 60] [--out bench/results/simulate.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from sentinel.simulator.engine import SimulationPlan, VisitGenerator, plan_facility_events
from sentinel.simulator.epidemic import plan_outbreaks
from sentinel.simulator.run import RATE_SCALE, SimulationOptions, load_area, simulate


def generation_only(days: int, scale: str = "district") -> tuple[int, float]:
    """Visits generated per second with no writer at all."""
    area = load_area(scale, 0)  # type: ignore[arg-type]
    rng = np.random.default_rng([0, 1])
    start = date(2025, 1, 1)
    plan = SimulationPlan(
        area, start, days, 0, RATE_SCALE[scale],  # type: ignore[index]
        plan_outbreaks(start, days, area.codes, area.adjacency(), rng),
        plan_facility_events(area, start, days, rng),
    )  # fmt: skip
    t = time.perf_counter()
    visits = sum(len(b.visits) for b in VisitGenerator(plan))
    return visits, time.perf_counter() - t


def timed(days: int, formats: tuple[str, ...], scale: str = "district") -> tuple[int, float]:
    out = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    try:
        t = time.perf_counter()
        summary = simulate(
            SimulationOptions(out=out / "o", days=days, scale=scale, formats=formats)
        )  # type: ignore[arg-type]
        return summary.visits, time.perf_counter() - t
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--city-days", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "simulate.json"
    )
    args = parser.parse_args()
    rows = {}
    n, s = generation_only(args.days)
    rows["generation only"] = (n, s)
    for formats in (("his",), ("hl7",), ("fhir",), ("his", "hl7", "fhir")):
        rows["+".join(formats)] = timed(args.days, formats)
    n, s = timed(args.city_days, ("his",), "city")
    rows[f"city scale, {args.city_days} day(s), his"] = (n, s)
    result = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "district_days": args.days,
        "runs": {
            k: {"visits": n, "seconds": round(s, 2), "visits_per_second": round(n / s)}
            for k, (n, s) in rows.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for k, v in result["runs"].items():
        print(
            f"{k:<32} {v['visits']:>9,} visits {v['seconds']:>7.1f} s {v['visits_per_second']:>9,} visits/s"
        )


if __name__ == "__main__":
    main()
