"""Ingest throughput per stage on at least a million simulated visits.

Stages: extract (HIS database over SQLAlchemy), validate (Great Expectations suite),
de-identify (keys, ages, street codes,
scrubbing), classify (syndromes), write (warehouse upsert + syndrome_daily). Reports
visits per second for each stage and end to end.

Run: .venv/bin/python bench/ingest.py [--days 3] [--scale city] [--out bench/results/ingest.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from extract.his import extract_his_visits
from geo.areas import build_city_area_set, load_area_set
from sentinel.simulator.run import SimulationOptions, simulate
from transform.deidentify import deidentify_visits
from transform.ingest import default_definitions, ingest_raw_visits
from transform.syndromes import classify_visits
from transform.validation import validate_raw_batch
from warehouse.store import Warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--scale", choices=["district", "city"], default="city")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "ingest.json"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sentinel-bench-ingest-"))
    try:
        simulate(
            SimulationOptions(out=work / "src", days=args.days, scale=args.scale, formats=("his",))
        )
        area = load_area_set() if args.scale == "district" else build_city_area_set(0)
        stages: dict[str, float] = {}
        t = time.perf_counter()
        raw = extract_his_visits(f"sqlite:///{work / 'src' / 'his.sqlite'}", source="sql")
        stages["extract"] = time.perf_counter() - t
        t = time.perf_counter()
        checked = validate_raw_batch(raw, now=datetime.now())
        stages["validate"] = time.perf_counter() - t
        t = time.perf_counter()
        deid = deidentify_visits(checked.valid, b"bench-key", area)
        stages["de-identify"] = time.perf_counter() - t
        definitions = default_definitions()
        t = time.perf_counter()
        visits = deid.visits.assign(
            batch_id="bench", syndromes=classify_visits(deid.visits, definitions).to_list()
        )
        stages["classify"] = time.perf_counter() - t
        t = time.perf_counter()
        wh = Warehouse(work / "warehouse")
        result = wh.upsert_visits(visits, "bench")
        wh.rebuild_syndrome_daily(sorted(result.dates_touched), definitions.syndrome_names)
        stages["write"] = time.perf_counter() - t
        n = len(raw)
        total = sum(stages.values())
        # the real path: the library's one-batch ingest, transform stages over 2 processes
        t = time.perf_counter()
        ingest_raw_visits(
            raw, warehouse=Warehouse(work / "warehouse2"), area=area, key=b"bench-key",
            source="sql", location="bench", workers=2,
        )  # fmt: skip
        parallel = stages["extract"] + time.perf_counter() - t
        report = {
            "machine": f"{platform.machine()} Python {platform.python_version()}",
            "scale": args.scale,
            "days": args.days,
            "visits": n,
            "stages": {
                k: {"seconds": round(v, 2), "visits_per_second": round(n / v)}
                for k, v in stages.items()
            },
            "end_to_end_one_process": {
                "seconds": round(total, 2),
                "visits_per_second": round(n / total),
            },
            "end_to_end_two_processes": {
                "seconds": round(parallel, 2),
                "visits_per_second": round(n / parallel),
            },
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        for k, v in report["stages"].items():
            print(f"{k:<12} {v['seconds']:>7.1f} s {v['visits_per_second']:>10,} visits/s")
        print(
            f"{'end to end, 1 process':<24} {total:>7.1f} s {round(n / total):>10,} visits/s ({n:,} visits)"
        )
        print(
            f"{'end to end, 2 processes':<24} {parallel:>7.1f} s {round(n / parallel):>10,} visits/s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
