"""Load raw visit records into the warehouse: de-identify, quarantine, upsert, log the batch.

Every batch reconciles: ``extracted = loaded + quarantined``, recorded in ``batches``.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from geo.areas import AreaSet
from transform.prepare import prepare_batch
from transform.residence import Gazetteer
from transform.syndromes import Definitions, load_definitions
from transform.validation import BatchRejected
from warehouse.store import Warehouse

log = logging.getLogger("sentinel.ingest")


@functools.cache
def default_definitions() -> Definitions:
    """The shipped syndrome definitions, loaded once per process."""
    return load_definitions()


@dataclass(frozen=True)
class IngestResult:
    """What one batch did."""

    batch_id: str
    extracted: int
    loaded: int
    quarantined: int
    inserted: int
    replaced: int
    unchanged: int
    dates: tuple[str, ...]


def ingest_raw_visits(
    raw: pd.DataFrame,
    *,
    warehouse: Warehouse,
    area: AreaSet,
    key: bytes,
    source: str,
    location: str,
    gazetteer: Gazetteer | None = None,
    rejected: pd.DataFrame | None = None,
    definitions: Definitions | None = None,
    workers: int = 2,
    parallel_from: int = 200_000,
    batch_id: str | None = None,
) -> IngestResult:
    """De-identify ``raw`` and upsert it into ``warehouse`` as one logged batch.

    ``location`` must already be safe to record (no passwords). ``rejected`` holds the
    records the extract stage could not read (``row_ref``, ``reason``): they are
    quarantined with this batch and counted as extracted. Visits are classified into
    syndromes with ``definitions`` (default: the current version shipped with Sentinel),
    and ``syndrome_daily`` is rebuilt for every date the batch touched. Batches of at
    least ``parallel_from`` rows are validated, de-identified and classified in
    ``workers`` processes. ``batch_id`` names the batch (default: a random id); a
    scheduled pull gives one derived from its source and window, so running it again
    replaces its own log row and quarantine instead of adding a second batch.
    """
    definitions = definitions or default_definitions()
    batch_id = batch_id or uuid.uuid4().hex
    started = datetime.now()
    try:
        prepared = prepare_batch(
            raw, key=key, area=area, gazetteer=gazetteer, definitions=definitions, now=started,
            workers=workers if len(raw) >= parallel_from else 1,
        )  # fmt: skip
    except BatchRejected:
        # nothing is published; the rejection itself is logged as a batch
        warehouse.record_batch(
            {
                "batch_id": batch_id, "source": source, "location": location,
                "extracted": len(raw) + (0 if rejected is None else len(rejected)),
                "loaded": 0, "quarantined": 0, "replaced": 0, "started": started,
                "finished": datetime.now(), "status": "rejected",
            }
        )  # fmt: skip
        raise
    visits = prepared.visits.assign(batch_id=batch_id)
    upsert = warehouse.upsert_visits(visits, batch_id)
    parts = [
        prepared.validation_quarantine.assign(stage="validate"),
        prepared.deidentify_quarantine.assign(stage="deidentify"),
    ]
    if rejected is not None and len(rejected):
        parts.append(rejected[["row_ref", "reason"]].assign(stage="extract"))
    quarantine = pd.concat(parts, ignore_index=True)
    quarantined = len(quarantine)
    extracted = len(raw) + (0 if rejected is None else len(rejected))
    if quarantined:
        q = quarantine.assign(batch_id=batch_id, source=source, quarantined_at=started)
        warehouse.append_quarantine(batch_id, q)
    dates = sorted(str(d) for d in upsert.dates_touched)
    if upsert.dates_touched:
        warehouse.rebuild_syndrome_daily(sorted(upsert.dates_touched), definitions.syndrome_names)
    warehouse.record_batch(
        {
            "batch_id": batch_id,
            "source": source,
            "location": location,
            "extracted": extracted,
            "loaded": len(visits),
            "quarantined": quarantined,
            "replaced": upsert.replaced,
            "started": started,
            "finished": datetime.now(),
            "status": "loaded",
        }
    )
    log.info(
        "batch_loaded",
        extra={
            "fields": {
                "batch_id": batch_id, "source": source, "extracted": extracted, "loaded": len(visits),
                "quarantined": quarantined, "inserted": upsert.inserted, "replaced": upsert.replaced,
                "unchanged": upsert.unchanged,
                "validation_failed": prepared.failed_expectations, "dates": len(dates),
            }
        },
    )  # fmt: skip
    return IngestResult(
        batch_id,
        extracted,
        len(visits),
        quarantined,
        upsert.inserted,
        upsert.replaced,
        upsert.unchanged,
        tuple(dates),
    )
