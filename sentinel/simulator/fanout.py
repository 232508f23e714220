"""Source writers in child processes, so generating and writing a year use both cores.

The generator runs in the calling process; each group of writers runs in a child
process started as ``python -m sentinel.simulator.fanout`` and receives every
:class:`DayBatch` pickled through its stdin pipe (length-prefixed). The pipe's buffer
gives back-pressure, so memory stays bounded to a few days in flight. Children report
``ready``, ``done`` or the error on their stdout. Plain subprocesses rather than
``multiprocessing``: spawn/forkserver re-import the caller's ``__main__`` (breaking
scripts without a main guard) and fork copies a process that may hold Arrow threads.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sentinel.errors import SentinelError, UsageError
from sentinel.simulator.records import DayBatch
from transform.pipe import receive_pickled, send_pickled


@dataclass(frozen=True)
class WriterSpec:
    """How to build one writer inside a child process."""

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


def _child() -> None:
    """Body of a writer process: build writers, write every batch, close."""
    inbox, outbox = sys.stdin.buffer, sys.stdout
    try:
        specs: list[WriterSpec] = receive_pickled(inbox)
        writers = [_build(s) for s in specs]
        print("ready", file=outbox, flush=True)
        while (batch := receive_pickled(inbox)) is not None:
            for w in writers:
                w.write(batch)
        for w in writers:
            w.close()
        print("done", file=outbox, flush=True)
    except UsageError as exc:
        print("usage " + " ".join(str(exc).split()), file=outbox, flush=True)
    except Exception as exc:  # reported to the parent, which raises it
        print(f"error {type(exc).__name__}: " + " ".join(str(exc).split()), file=outbox, flush=True)


class WriterPool:
    """Child processes, each running a group of writers over the same batches."""

    def __init__(self, groups: list[list[WriterSpec]]) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "sentinel.simulator.fanout"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=False,
            )
            for _ in groups
        ]
        try:
            for proc, group in zip(self.procs, groups, strict=True):
                send_pickled(proc.stdin, group)  # type: ignore[arg-type]
            for proc in self.procs:
                self._expect(proc, "ready")
        except BaseException:
            self.abort()
            raise

    def _expect(self, proc: subprocess.Popen[bytes], status: str) -> None:
        line = proc.stdout.readline().decode("utf-8", "replace").strip()  # type: ignore[union-attr]
        if line == status:
            return
        self.abort()
        if line.startswith("usage "):
            raise UsageError(line.removeprefix("usage "))
        detail = line.removeprefix("error ") or f"exit code {proc.wait()}"
        raise SentinelError(f"writing the simulated sources failed: {detail}")

    def submit(self, batch: DayBatch) -> None:
        """Hand ``batch`` to every child (blocks while a child is behind)."""
        for proc in self.procs:
            try:
                send_pickled(proc.stdin, batch)  # type: ignore[arg-type]
            except BrokenPipeError:
                self._expect(proc, "ready")  # reads the child's error and raises it

    def close(self) -> None:
        """Finish: every writer flushes and closes; raises if any failed."""
        for proc in self.procs:
            send_pickled(proc.stdin, None)  # type: ignore[arg-type]
            proc.stdin.close()  # type: ignore[union-attr]
        for proc in self.procs:
            self._expect(proc, "done")
            proc.wait()

    def abort(self) -> None:
        """Stop the children without waiting for pending batches."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


if __name__ == "__main__":
    _child()
