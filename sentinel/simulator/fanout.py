"""Source writers in worker processes, so generating and writing a year use both cores.

The generator runs in the calling process; each group of writers runs in its own
process and receives every :class:`DayBatch` through a bounded queue (memory stays
bounded: at most a few days in flight). A writer's error comes back as the exception
message and stops the simulation.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sentinel.errors import SentinelError, UsageError
from sentinel.simulator.records import DayBatch

QUEUE_DAYS = 4
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class WriterSpec:
    """How to build one writer inside a worker process."""

    kind: str  # his | hl7 | fhir
    target: str  # SQLAlchemy URL or output folder
    facilities: pd.DataFrame | None = None


def _build(spec: WriterSpec) -> Any:
    if spec.kind == "his":
        from sentinel.simulator.his import HisDatabaseWriter

        return HisDatabaseWriter(spec.target, spec.facilities)  # type: ignore[arg-type]
    if spec.kind == "hl7":
        from sentinel.simulator.hl7v2 import Hl7FileWriter

        return Hl7FileWriter(Path(spec.target))
    from sentinel.simulator.fhir import FhirNdjsonWriter

    return FhirNdjsonWriter(Path(spec.target))


def _work(specs: list[WriterSpec], inbox: Any, outbox: Any) -> None:
    writers: list[Any] = []
    try:
        writers = [_build(s) for s in specs]
        outbox.put(("ready", None))
        while (batch := inbox.get()) is not None:
            for w in writers:
                w.write(batch)
        for w in writers:
            w.close()
        outbox.put(("done", None))
    except UsageError as exc:
        outbox.put(("usage", str(exc)))
    except Exception as exc:
        outbox.put(("error", f"{type(exc).__name__}: {exc}"))


class WriterPool:
    """Worker processes, each running a group of writers over the same batches."""

    def __init__(self, groups: list[list[WriterSpec]]) -> None:
        ctx = mp.get_context("spawn")
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue(maxsize=QUEUE_DAYS) for _ in groups]
        self.procs = [
            ctx.Process(target=_work, args=(g, q, self.outbox), daemon=True, name=f"writer-{i}")
            for i, (g, q) in enumerate(zip(groups, self.inboxes, strict=True))
        ]
        for p in self.procs:
            p.start()
        for _ in self.procs:
            self._expect("ready")

    def _expect(self, status: str) -> None:
        while True:
            try:
                kind, message = self.outbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if any(not p.is_alive() for p in self.procs):
                    self.abort()
                    raise SentinelError("a source writer process died unexpectedly") from None
                continue
            if kind == status:
                return
            self.abort()
            if kind == "usage":
                raise UsageError(message)
            raise SentinelError(f"writing the simulated sources failed: {message}")

    def submit(self, batch: DayBatch) -> None:
        """Hand ``batch`` to every worker (blocks while a worker is a few days behind)."""
        for inbox in self.inboxes:
            while True:
                try:
                    inbox.put(batch, timeout=POLL_SECONDS)
                    break
                except queue.Full:
                    self._check()

    def _check(self) -> None:
        try:
            kind, message = self.outbox.get_nowait()
        except queue.Empty:
            if any(not p.is_alive() for p in self.procs):
                self.abort()
                raise SentinelError("a source writer process died unexpectedly") from None
            return
        self.abort()
        raise (UsageError if kind == "usage" else SentinelError)(
            f"writing the simulated sources failed: {message}"
        )

    def close(self) -> None:
        """Finish: every writer flushes and closes; raises if any failed."""
        for inbox in self.inboxes:
            inbox.put(None)
        for _ in self.procs:
            self._expect("done")
        for p in self.procs:
            p.join()

    def abort(self) -> None:
        """Stop the workers without waiting for pending batches."""
        for p in self.procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
