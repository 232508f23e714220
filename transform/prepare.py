"""One batch from raw records to warehouse rows: validate, de-identify, classify.

:func:`prepare_batch` is pure (no I/O) and can split a large batch over two processes:
rows are divided by a hash of (facility, visit id), so every version of a visit, and
every conflicting duplicate, stays in one part; the second part runs in a child process
(``python -m transform.prepare``) fed through a pipe, while this process does the first.
The result is the same as in one process (a test checks it).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from geo.areas import AreaSet
from transform.deidentify import deidentify_visits
from transform.pipe import receive_pickled, send_pickled
from transform.residence import Gazetteer
from transform.syndromes import Definitions, classify_visits, load_definitions
from transform.validation import validate_raw_batch


@dataclass(frozen=True)
class Prepared:
    """Warehouse rows (without ``batch_id``) and what was held back, by stage."""

    visits: pd.DataFrame
    validation_quarantine: pd.DataFrame
    deidentify_quarantine: pd.DataFrame
    failed_expectations: int


def _prepare_one(
    raw: pd.DataFrame, key: bytes, area: AreaSet, gazetteer: Gazetteer | None,
    definitions: Definitions, now: datetime,
) -> Prepared:  # fmt: skip
    checked = validate_raw_batch(raw, now=now)
    result = deidentify_visits(checked.valid, key, area, gazetteer)
    visits = result.visits
    visits["syndromes"] = classify_visits(visits, definitions).to_list()
    failed = sum(1 for e in checked.report["expectations"] if not e["success"])
    return Prepared(visits, checked.quarantine, result.quarantine, failed)


def prepare_batch(
    raw: pd.DataFrame,
    *,
    key: bytes,
    area: AreaSet,
    definitions: Definitions,
    now: datetime,
    gazetteer: Gazetteer | None = None,
    workers: int = 1,
) -> Prepared:
    """Validate, de-identify and classify ``raw`` (in ``workers`` ∈ {1, 2} processes).

    Raises
    ------
    transform.validation.BatchRejected
        When the batch fails the structural checks (in either process).
    """
    if workers < 2 or len(raw) < 2:
        return _prepare_one(raw, key, area, gazetteer, definitions, now)
    ids = raw["facility_id"].astype("str") + "|" + raw["source_visit_id"].astype("str")
    second = (pd.util.hash_pandas_object(ids, index=False).to_numpy() % np.uint64(2)) == 1
    child = subprocess.Popen(
        [sys.executable, "-m", "transform.prepare"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        # the key crosses a private pipe to our own child, never a file or the command line
        # definitions hold compiled rules: the child reloads them from their file
        send_pickled(child.stdin, (raw[second], key, area, gazetteer, definitions.source, now))  # type: ignore[arg-type]
        child.stdin.close()  # type: ignore[union-attr]
        mine = _prepare_one(raw[~second], key, area, gazetteer, definitions, now)
        status, theirs = receive_pickled(child.stdout)  # type: ignore[arg-type]
    except BaseException:
        child.kill()
        raise
    finally:
        child.wait()
    if status == "error":
        raise theirs
    other: Prepared = theirs
    return Prepared(
        pd.concat([mine.visits, other.visits], ignore_index=True),
        pd.concat([mine.validation_quarantine, other.validation_quarantine], ignore_index=True),
        pd.concat([mine.deidentify_quarantine, other.deidentify_quarantine], ignore_index=True),
        max(mine.failed_expectations, other.failed_expectations),
    )


def _child() -> None:
    raw, key, area, gazetteer, definitions_file, now = receive_pickled(sys.stdin.buffer)
    try:
        definitions = load_definitions(definitions_file)
        answer: tuple[str, object] = (
            "ok",
            _prepare_one(raw, key, area, gazetteer, definitions, now),
        )
    except Exception as exc:  # returned to the parent, which raises it
        answer = ("error", exc)
    send_pickled(sys.stdout.buffer, answer)


if __name__ == "__main__":
    # run the importable module's copy, so what the child pickles is
    # transform.prepare.Prepared, not __main__.Prepared
    from transform.prepare import _child as child_main

    child_main()
