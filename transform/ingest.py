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
from transform.deidentify import deidentify_visits
from transform.residence import Gazetteer
from transform.syndromes import Definitions, classify_visits, load_definitions
from transform.validation import BatchRejected, validate_raw_batch
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
) -> IngestResult:
    """De-identify ``raw`` and upsert it into ``warehouse`` as one logged batch.

    ``location`` must already be safe to record (no passwords). ``rejected`` holds the
    records the extract stage could not read (``row_ref``, ``reason``): they are
    quarantined with this batch and counted as extracted. Visits are classified into
    syndromes with ``definitions`` (default: the current version shipped with Sentinel),
    and ``syndrome_daily`` is rebuilt for every date the batch touched.
    """
    definitions = definitions or default_definitions()
    batch_id = uuid.uuid4().hex
    started = datetime.now()
    try:
        checked = validate_raw_batch(raw, now=started)
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
    result = deidentify_visits(checked.valid, key, area, gazetteer)
    visits = result.visits.assign(batch_id=batch_id)
    visits["syndromes"] = classify_visits(visits, definitions).to_list()
    upsert = warehouse.upsert_visits(visits, batch_id)
    parts = [
        checked.quarantine.assign(stage="validate"),
        result.quarantine.assign(stage="deidentify"),
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
                "validation_failed": sum(
                    1 for e in checked.report["expectations"] if not e["success"]
                ), "dates": len(dates),
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
