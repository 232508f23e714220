"""`sentinel ingest`: one pull from a source into the warehouse, with its watermark."""

from __future__ import annotations

import logging
from datetime import timedelta

from sentinel.console import console, progress_bar
from sentinel.errors import UsageError
from sentinel.logs import configure_logging, log_event
from sentinel.settings import Settings

log = logging.getLogger("sentinel.ingest")


def ingest_source(
    settings: Settings, spec: str, *, full: bool = False, lookback_hours: float = 2.0
) -> None:
    """Pull ``spec`` (``KIND:LOCATION``), load it as one batch and advance the watermark."""
    from extract.sources import extract_source, parse_source, safe_location
    from extract.watermark import WatermarkStore
    from geo.areas import load_area_set
    from sentinel.simulator.categories import SYNDROMIC
    from transform.ingest import ingest_raw_visits
    from warehouse.store import Warehouse

    if not settings.hmac_key:
        raise UsageError(
            "SENTINEL_HMAC_KEY is not set: patient keys need a secret (only `sentinel demo` runs without)"
        )
    if lookback_hours < 0:
        raise UsageError(f"--lookback-hours must not be negative, got {lookback_hours}")
    try:
        kind, location = parse_source(spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    safe = safe_location(kind, location)
    configure_logging(settings.logs_dir)
    marks = WatermarkStore(settings.home / "state" / "watermarks.json")
    source_id = f"{kind}:{safe}"
    mark = None if full or kind != "sql" else marks.get(source_id)
    since = None if mark is None else mark - timedelta(hours=lookback_hours)
    with progress_bar() as bar:
        task = bar.add_task(f"Ingesting {kind}", total=2, note="extract")
        extracted = extract_source(kind, location, since)
        bar.update(task, advance=1, note=f"{len(extracted.visits):,} read · de-identify and load")
        result = ingest_raw_visits(
            extracted.visits,
            warehouse=Warehouse(settings.warehouse_dir),
            area=load_area_set(settings.area_set),
            key=settings.hmac_key.encode(),
            source=kind,
            location=safe,
            syndromes=SYNDROMIC,
            rejected=extracted.rejected,
        )
        bar.update(task, advance=1, note=f"{result.loaded:,} loaded")
    if kind == "sql" and len(extracted.visits):
        marks.set(source_id, extracted.visits["updated_at"].max().to_pydatetime())
    log_event(log, "ingest_finished", source=kind, batch_id=result.batch_id, since=since)
    console.print(
        f"Batch {result.batch_id[:8]} from {kind}: extracted {result.extracted:,} = loaded {result.loaded:,} "
        f"+ quarantined {result.quarantined:,}; new {result.inserted:,}, replaced {result.replaced:,}, "
        f"unchanged {result.unchanged:,}; {len(result.dates)} days touched."
    )
