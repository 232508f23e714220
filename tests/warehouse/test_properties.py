"""Property: the stored visits are the latest version per key, whatever the load order."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.store import Warehouse

KEYS = ["k0", "k1", "k2", "k3", "k4"]
BASE = dt.date(2026, 1, 5)
_counter = itertools.count()

# A version is (key, hour of updated_at). Its content is a function of the version, as it
# is in a source system: two deliveries of one version are identical.
versions = st.tuples(st.sampled_from(KEYS), st.integers(min_value=0, max_value=5))
batches = st.lists(st.lists(versions, max_size=6), min_size=1, max_size=4)


def _content(key: str, hour: int) -> tuple[dt.date, str]:
    day = BASE + dt.timedelta(days=(KEYS.index(key) * 7 + hour) % 3)
    return day, f"{key}@{hour}"


def _frame(batch: list[tuple[str, int]], visit_row: Any, visits_frame: Any) -> Any:
    rows = []
    for key, hour in batch:
        day, complaint = _content(key, hour)
        stamp = dt.datetime(2026, 1, 10, hour)
        rows.append(visit_row(key, day, stamp, hour=KEYS.index(key), complaint=complaint))
    return visits_frame(rows)


def _table(warehouse: Warehouse) -> list[dict[str, Any]]:
    rows = warehouse.read_arrow("visits").drop_columns("batch_id").to_pylist()
    return sorted(rows, key=lambda r: r["visit_key"])


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=batches, order=st.randoms(use_true_random=False))
def test_final_visits_are_the_latest_version_in_any_load_order(
    tmp_path: Path, visit_row: Any, visits_frame: Any, batches: list[Any], order: Any
) -> None:
    case = tmp_path / f"case{next(_counter)}"
    latest: dict[str, int] = {}
    for key, hour in itertools.chain.from_iterable(batches):
        latest[key] = max(hour, latest.get(key, hour))

    loaded = Warehouse(case / "in_order")
    for i, batch in enumerate(batches):
        result = loaded.upsert_visits(_frame(batch, visit_row, visits_frame), f"b{i}")
        assert result.inserted + result.replaced + result.unchanged == len(
            {key for key, _ in batch}
        )

    rows = _table(loaded)
    assert [r["visit_key"] for r in rows] == sorted(latest)
    for row in rows:
        hour = latest[row["visit_key"]]
        assert row["updated_at"] == dt.datetime(2026, 1, 10, hour)
        assert (row["visit_date"], row["chief_complaint"]) == _content(row["visit_key"], hour)

    shuffled = list(enumerate(batches))
    order.shuffle(shuffled)
    reordered = Warehouse(case / "shuffled")
    for i, batch in shuffled:
        reordered.upsert_visits(_frame(batch, visit_row, visits_frame), f"b{i}")
    assert _table(reordered) == rows

    # Loading everything again is a no-op.
    for i, batch in enumerate(batches):
        again = loaded.upsert_visits(_frame(batch, visit_row, visits_frame), f"b{i}")
        assert (again.inserted, again.replaced, again.dates_touched) == (0, 0, ())
