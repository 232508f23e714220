"""Run a simulation: plan it, stream the days through the source-system writers, record truth."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geo.areas import AreaSet, build_city_area_set, load_area_set
from sentinel.errors import UsageError
from sentinel.simulator.engine import (
    FacilityEvent,
    SimulationPlan,
    VisitGenerator,
    plan_facility_events,
)
from sentinel.simulator.epidemic import Outbreak, plan_outbreaks
from sentinel.simulator.fanout import WriterPool, WriterSpec
from sentinel.simulator.records import DayBatch

Scale = Literal["district", "city"]
Format = Literal["his", "hl7", "fhir"]
FORMATS: tuple[Format, ...] = ("his", "hl7", "fhir")
DEFAULT_START = date(2025, 1, 1)
# The district default models the surveillance-relevant visits of ~20 facilities (about
# 2,000 a day); the city scale counts every outpatient visit (~300,000 a day for 25 M).
RATE_SCALE: dict[Scale, float] = {"district": 1.0, "city": 4.6}
MANIFEST = "manifest.json"
OUTPUTS = (
    "his.sqlite",
    "hl7",
    "fhir",
    "truth",
    "ground_truth.csv",
    "facility_events.csv",
    MANIFEST,
)


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate and where to write it (validated by :func:`check_options`)."""

    out: Path
    days: int = 365
    start: date = DEFAULT_START
    seed: int = 0
    scale: Scale = "district"
    his_url: str | None = None
    formats: tuple[Format, ...] = FORMATS


@dataclass
class SimulationSummary:
    """Counts of what was written, for the manifest and the command's report."""

    visits: int = 0
    corrections: int = 0
    outbreaks: int = 0
    outbreak_visits: int = 0
    streets: int = 0
    facilities: int = 0
    by_day: list[int] = field(default_factory=list)


def check_options(opts: SimulationOptions) -> None:
    """Refuse impossible options before anything is written."""
    if opts.days < 1 or opts.days > 3660:
        raise UsageError(f"--days must be between 1 and 3660, got {opts.days}")
    if opts.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {opts.seed}")
    unknown = [f for f in opts.formats if f not in FORMATS]
    if unknown or not opts.formats:
        raise UsageError(f"--formats takes a comma-separated subset of {', '.join(FORMATS)}")
    out = opts.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise UsageError(
            f"output folder {out} is not empty and holds no earlier simulation; choose an empty folder"
        )
    ensure_writable(out, "output folder")


def ensure_writable(folder: Path, what: str) -> None:
    """Raise a usage error unless ``folder`` exists and is writable or can be created.

    Probes by creating and removing a temporary folder in the nearest existing ancestor,
    so it is right even for root and read-only file systems, and leaves nothing behind.
    """
    parent = folder.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {folder} cannot be created: {parent} is a file")
    try:
        probe = tempfile.mkdtemp(prefix=".sentinel-probe-", dir=parent)
    except OSError as exc:
        raise UsageError(f"{what} {folder} is not writable ({exc.strerror})") from None
    os.rmdir(probe)


def load_area(scale: Scale, seed: int) -> AreaSet:
    """The area set of a scale: the shipped district or the synthetic city."""
    return load_area_set("changning") if scale == "district" else build_city_area_set(seed)


def simulate(
    opts: SimulationOptions, on_day: Callable[[int, int, DayBatch], None] | None = None
) -> SimulationSummary:
    """Simulate the platform and write its source systems and ground truth under ``opts.out``.

    Same options → byte-identical files (nothing depends on the clock or the machine).
    """
    check_options(opts)
    area = load_area(opts.scale, opts.seed)
    rng = np.random.default_rng([opts.seed, 1])
    outbreaks = plan_outbreaks(opts.start, opts.days, area.codes, area.adjacency(), rng)
    events = plan_facility_events(area, opts.start, opts.days, rng)
    plan = SimulationPlan(
        area, opts.start, opts.days, opts.seed, RATE_SCALE[opts.scale], outbreaks, events
    )
    _clear(opts.out)
    opts.out.mkdir(parents=True, exist_ok=True)
    pool = WriterPool(_writer_groups(opts, area))
    truth_writer: pq.ParquetWriter | None = None
    summary = SimulationSummary(
        outbreaks=len(outbreaks), streets=len(area.codes), facilities=len(area.facilities)
    )
    realised: dict[str, int] = {o.outbreak_id: 0 for o in outbreaks}
    (opts.out / "truth").mkdir(exist_ok=True)
    finished = False
    try:
        for i, batch in enumerate(VisitGenerator(plan)):
            pool.submit(batch)
            summary.visits += len(batch.visits)
            summary.corrections += len(batch.corrections)
            summary.by_day.append(len(batch.visits))
            if not batch.visits.empty:
                counts = batch.visits["outbreak_id"].value_counts()
                for k, n in counts.items():
                    realised[str(k)] += int(n)
                table = pa.Table.from_pandas(
                    _truth(batch.visits), preserve_index=False, schema=TRUTH_SCHEMA
                )
                if truth_writer is None:
                    truth_writer = pq.ParquetWriter(
                        opts.out / "truth" / "visits.parquet", TRUTH_SCHEMA
                    )
                truth_writer.write_table(table)
            if on_day is not None:
                on_day(i, opts.days, batch)
        pool.close()
        finished = True
    finally:
        if not finished:
            pool.abort()
        if truth_writer is not None:
            truth_writer.close()
    summary.outbreak_visits = sum(realised.values())
    _write_truth(opts.out, outbreaks, realised, events)
    manifest = {
        "generator": "sentinel simulate",
        "options": {
            **{k: v for k, v in asdict(opts).items() if k != "out"},
            "start": opts.start.isoformat(),
        },
        "area_set": area.name,
        "summary": {k: v for k, v in asdict(summary).items() if k != "by_day"},
    }
    (opts.out / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return summary


TRUTH_SCHEMA = pa.schema(
    [
        ("visit_id", pa.string()),
        ("visit_date", pa.date32()),
        ("true_street_code", pa.string()),
        ("category", pa.string()),
        ("outbreak_id", pa.string()),
    ]
)


def _truth(v: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "visit_id": v["visit_id"],
            "visit_date": v["visit_time"].dt.date,
            "true_street_code": v["true_street_code"],
            "category": v["category"],
            "outbreak_id": v["outbreak_id"],
        }
    )


def _writer_groups(opts: SimulationOptions, area: AreaSet) -> list[list[WriterSpec]]:
    """The HIS database in one worker process, the message files in another."""
    groups: list[list[WriterSpec]] = []
    if "his" in opts.formats:
        url = opts.his_url or f"sqlite:///{(opts.out / 'his.sqlite').absolute()}"
        groups.append([WriterSpec("his", url, area.facilities)])
    files = [WriterSpec(f, str(opts.out / f)) for f in ("hl7", "fhir") if f in opts.formats]
    if files:
        groups.append(files)
    return groups


def _clear(out: Path) -> None:
    """Remove the outputs of an earlier simulation in ``out`` (only ours)."""
    if not (out / MANIFEST).exists():
        return
    for name in OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _write_truth(
    out: Path, outbreaks: list[Outbreak], realised: dict[str, int], events: list[FacilityEvent]
) -> None:
    rows = [
        {
            "outbreak_id": o.outbreak_id,
            "syndrome": o.category,
            "street_codes": ";".join(o.street_codes),
            "start": o.start.isoformat(),
            "end": o.end.isoformat(),
            "extra_cases": realised.get(o.outbreak_id, 0),
            "expected_cases": round(o.expected_cases, 1),
            "description_zh": o.description_zh,
            "description_en": o.description_en,
        }
        for o in outbreaks
    ]
    cols = ["outbreak_id", "syndrome", "street_codes", "start", "end", "extra_cases", "expected_cases",
            "description_zh", "description_en"]  # fmt: skip
    pd.DataFrame(rows, columns=cols).to_csv(
        out / "ground_truth.csv", index=False, lineterminator="\n"
    )
    ev = pd.DataFrame(
        [
            {"facility_id": e.facility_id, "kind": e.kind, "start": e.start.isoformat(), "end": e.end.isoformat(),
             "description": e.description}
            for e in events
        ],
        columns=["facility_id", "kind", "start", "end", "description"],
    )  # fmt: skip
    ev.to_csv(out / "facility_events.csv", index=False, lineterminator="\n")
