"""The writer lock: one writing process at a time per warehouse.

Writers take an exclusive ``fcntl.flock`` on ``<root>/.lock`` for the whole of a write
(validation aside): the Parquet rewrite and the catalog refresh. Readers never take it;
they see each file either before or after an atomic replace. The lock is re-entrant within
a thread (a store method may refresh the catalog while holding it) and excludes other
threads of the same process as well as other processes. ``flock`` locks are advisory and
work on local file systems; on NFS use one writer (an Airflow pool of size 1).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warehouse.errors import WarehouseError

__all__ = ["LOCK_FILE", "writer_lock"]

LOCK_FILE = ".lock"

_local = threading.local()


def _held() -> dict[str, int]:
    held: dict[str, int] | None = getattr(_local, "held", None)
    if held is None:
        held = {}
        _local.held = held
    return held


@contextmanager
def writer_lock(root: Path, *, timeout: float = 300.0) -> Iterator[None]:
    """Hold the warehouse's exclusive writer lock for the duration of the block.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse root; created if missing.
    timeout : float
        Seconds to wait for another writer before giving up.

    Raises
    ------
    WarehouseError
        When another writer holds the lock for longer than ``timeout``.
    """
    key = str(root.resolve())
    held = _held()
    if held.get(key, 0):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                    raise WarehouseError(
                        f"the warehouse at {root} is locked by another writer "
                        f"(pid {holder}); gave up after {timeout:g} s"
                    ) from None
                time.sleep(0.05)
        # The holder's pid, for the message above; informative only.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        held[key] = 1
        try:
            yield
        finally:
            held[key] = 0
    finally:
        os.close(fd)  # closing the descriptor releases the flock
