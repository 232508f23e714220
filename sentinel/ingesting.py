"""`sentinel ingest`: one pull from a source into the warehouse, with its watermark."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
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
    import pandas as pd
    import sqlalchemy as sa

    from extract.errors import SourceError
    from extract.his import HisMapping
    from extract.sources import extract_source, parse_source, safe_location
    from extract.watermark import WatermarkStore
    from geo.areas import load_area_set
    from transform.ingest import ingest_raw_visits
    from transform.validation import BatchRejected
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
    try:
        mapping = HisMapping.from_settings(settings.his) if kind == "sql" else None
    except ValueError as exc:
        raise UsageError(f"{exc} (sentinel.toml [his])") from None
    configure_logging(settings.logs_dir)
    marks = WatermarkStore(settings.home / "state" / "watermarks.json")
    source_id = f"{kind}:{safe}"
    mark = None if full or kind != "sql" else marks.get(source_id)
    since = None if mark is None else mark - timedelta(hours=lookback_hours)
    with progress_bar() as bar:
        task = bar.add_task(f"Ingesting {kind}", total=2, note="extract")
        try:
            extracted = extract_source(kind, location, since, his_mapping=mapping)
        except SourceError as exc:
            raise UsageError(f"batch rejected, nothing loaded: {exc}") from None
        except ImportError as exc:
            raise UsageError(f"cannot read {safe}: database driver missing ({exc.name})") from None
        except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
            cause = (
                exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) and exc.__cause__ else exc
            )
            first = str(cause).splitlines()[0]
            raise UsageError(f"cannot read {safe}: {first}") from None
        bar.update(task, advance=1, note=f"{len(extracted.visits):,} read · de-identify and load")
        try:
            result = ingest_raw_visits(
                extracted.visits,
                warehouse=Warehouse(settings.warehouse_dir),
                area=load_area_set(settings.area_set, home=settings.home),
                key=settings.hmac_key.encode(),
                source=kind,
                location=safe,
                rejected=extracted.rejected,
            )
        except BatchRejected as exc:
            raise UsageError(f"{exc}; nothing loaded") from None
        bar.update(task, advance=1, note=f"{result.loaded:,} loaded")
    if kind == "sql" and len(extracted.visits):
        marks.set(source_id, extracted.visits["updated_at"].max().to_pydatetime())
    log_event(log, "ingest_finished", source=kind, batch_id=result.batch_id, since=since)
    console.print(
        f"Batch {result.batch_id[:8]} from {kind}: extracted {result.extracted:,} = loaded {result.loaded:,} "
        f"+ quarantined {result.quarantined:,}; new {result.inserted:,}, replaced {result.replaced:,}, "
        f"unchanged {result.unchanged:,}; {len(result.dates)} days touched."
    )


def listen_mllp(
    settings: Settings,
    address: str,
    *,
    flush_seconds: float = 2.0,
    batch_size: int = 1000,
    stop: threading.Event | None = None,
    on_bound: Callable[[int], None] | None = None,
) -> int:
    """Receive HL7 v2 over MLLP and load what arrives in small batches until stopped.

    Messages are acknowledged (``AA``) once parsed and buffered; the buffer is loaded
    every ``flush_seconds`` or ``batch_size`` messages, and on shutdown (SIGINT/SIGTERM).
    A crash loses at most the acknowledged messages of the last ``flush_seconds``.
    Returns the number of messages loaded.
    """
    from extract.hl7v2 import records_frame
    from extract.mllp import serve_mllp
    from geo.areas import load_area_set
    from transform.ingest import ingest_raw_visits
    from warehouse.store import Warehouse

    if not settings.hmac_key:
        raise UsageError(
            "SENTINEL_HMAC_KEY is not set: patient keys need a secret (only `sentinel demo` runs without)"
        )
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--listen-mllp must look like HOST:PORT, got {address!r}")
    configure_logging(settings.logs_dir)
    key = settings.hmac_key.encode()
    area = load_area_set(settings.area_set, home=settings.home)
    warehouse = Warehouse(settings.warehouse_dir)
    buffer: list[dict[str, object]] = []
    lock = threading.Lock()
    stop = stop or threading.Event()
    ready = threading.Event()
    loaded = 0

    def handler(record: dict[str, object]) -> None:
        with lock:
            buffer.append(record)

    def flush() -> None:
        nonlocal loaded
        with lock:
            records = buffer[:]
            buffer.clear()
        if not records:
            return
        result = ingest_raw_visits(
            records_frame(records), warehouse=warehouse, area=area, key=key, source="hl7",
            location=f"mllp://{address}",
        )  # fmt: skip
        loaded += result.loaded
        console.print(
            f"MLLP batch {result.batch_id[:8]}: {result.extracted} received, {result.loaded} loaded"
        )

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if threading.current_thread() is threading.main_thread():
        for s in previous:
            signal.signal(s, lambda *_: stop.set())
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            serve_mllp(host, int(port_text), handler, ready=ready, stop=stop, on_bound=on_bound)
        except OSError as exc:
            errors.append(exc)
            stop.set()

    server = threading.Thread(target=serve, name="mllp", daemon=True)
    server.start()
    try:
        ready.wait(timeout=10)
        if errors:
            raise UsageError(f"cannot listen on {address}: {errors[0]}")
        log_event(log, "mllp_listening", address=address)
        console.print(f"Listening for HL7 v2 (MLLP) on {address}; Ctrl-C to stop.")
        last = time.monotonic()
        while not stop.wait(0.2):
            if len(buffer) >= batch_size or time.monotonic() - last >= flush_seconds:
                flush()
                last = time.monotonic()
        server.join(timeout=10)
        flush()
    finally:
        if threading.current_thread() is threading.main_thread():
            for s, h in previous.items():
                signal.signal(s, h)
    if errors:
        raise UsageError(f"cannot listen on {address}: {errors[0]}")
    log_event(log, "mllp_stopped", address=address, loaded=loaded)
    return loaded
