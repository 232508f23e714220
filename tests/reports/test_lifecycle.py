"""Alert review lifecycle: state machine, grouping of continuing alerts, detector PPV."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reports.lifecycle import closed_on, list_alerts, show_alert, update_alert
from reports.outcomes import OUTCOME_COLUMNS, detector_outcomes, ppv_interval
from sentinel.errors import UsageError
from sentinel.settings import Settings
from warehouse.catalog import run_query
from warehouse.reviews import read_reviews
from warehouse.store import Warehouse

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)


def _alert(alert_id: str, day: dt.date, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "alert_id": alert_id,
        "date": day,
        "syndrome": "ili",
        "street_codes": ["310105001000"],
        "age_group": None,
        "detector": "scan_permutation",
        "observed": 12.0,
        "expected": 4.0,
        "p_value": 0.01,
        "severity": "medium",
        "status": "new",
        "created_at": dt.datetime(2026, 3, 4, 6, 0),
        "announcement": "new",
        "continues": None,
    }
    return row | fields


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A warehouse with a chain a1 ← a2 ← a3, an unrelated b1 and an orphan c1."""
    settings = Settings(home=tmp_path)
    warehouse = Warehouse(settings.warehouse_dir)
    warehouse.write_alerts(D1, pd.DataFrame([_alert("a1", D1)]))
    warehouse.write_alerts(
        D2,
        pd.DataFrame(
            [
                _alert("a2", D2, continues="a1", announcement="ongoing"),
                _alert("b1", D2, syndrome="gi", detector="ewma", severity="high"),
            ]
        ),
    )
    warehouse.write_alerts(
        D3,
        pd.DataFrame(
            [
                _alert("a3", D3, continues="a2", announcement="grown"),
                _alert("c1", D3, continues="gone", detector="ewma", announcement="ongoing"),
            ]
        ),
    )
    return settings


def test_continuing_alerts_are_grouped_under_their_root(settings: Settings) -> None:
    listed = list_alerts(settings)
    groups = dict(zip(listed["alert_id"], listed["group_id"], strict=True))
    assert groups == {"a1": "a1", "a2": "a1", "a3": "a1", "b1": "b1", "c1": "c1"}
    order = listed["alert_id"].tolist()
    # Groups latest first; within a group the root comes first, then its continuations.
    assert order == ["c1", "b1", "a1", "a2", "a3"]
    assert "patient_key" not in listed.columns
    assert set(listed["status"]) == {"new"}


def test_list_filters(settings: Settings) -> None:
    assert list_alerts(settings, since=D2, until=D2)["alert_id"].tolist() == ["b1", "a2"]
    assert list_alerts(settings, syndrome="gi")["alert_id"].tolist() == ["b1"]
    # The group id is known even when the root is outside the window.
    assert list_alerts(settings, since=D3, syndrome="ili")["group_id"].tolist() == ["c1", "a1"]
    with pytest.raises(UsageError, match="unknown status"):
        list_alerts(settings, status="open")
    with pytest.raises(UsageError, match="after"):
        list_alerts(settings, since=D3, until=D1)


def test_a_review_applies_to_the_whole_group(settings: Settings) -> None:
    update_alert(settings, "a3", status="investigating", assignee="张三", user="li")
    listed = list_alerts(settings).set_index("alert_id")
    assert listed.loc[["a1", "a2", "a3"], "status"].tolist() == ["investigating"] * 3
    assert listed.loc[["a1", "a2", "a3"], "assignee"].tolist() == ["张三"] * 3
    assert listed.loc["b1", "status"] == "new"
    assert list_alerts(settings, status="investigating")["alert_id"].tolist() == ["a1", "a2", "a3"]

    update_alert(settings, "a1", status="closed", outcome="true_outbreak", note="确认聚集")
    shown = show_alert(settings, "a2")
    assert shown["group_id"] == "a1"
    assert [a["alert_id"] for a in shown["group"]] == ["a1", "a2", "a3"]
    assert [h["status"] for h in shown["history"]] == ["investigating", "closed"]
    assert shown["review"]["outcome"] == "true_outbreak"
    assert shown["review"]["assignee"] == "张三"  # carried over
    assert shown["review"]["note"] == "确认聚集"
    assert shown["alert"]["street_codes"] == ["310105001000"]


def test_reviews_survive_a_detector_rerun(settings: Settings) -> None:
    update_alert(settings, "b1", status="closed", outcome="false_alarm")
    Warehouse(settings.warehouse_dir).write_alerts(
        D2,
        pd.DataFrame(
            [
                _alert("a2", D2, continues="a1", announcement="ongoing", observed=13.0),
                _alert("b1", D2, syndrome="gi", detector="ewma", severity="high"),
            ]
        ),
    )
    assert list_alerts(settings, syndrome="gi")["status"].tolist() == ["closed"]
    history = run_query(settings.warehouse_dir, "SELECT alert_id, outcome FROM alert_reviews")
    assert history.to_dict("records") == [{"alert_id": "b1", "outcome": "false_alarm"}]


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ([{"status": "closed"}], "closing needs an outcome"),
        ([{"status": "investigating"}, {"status": "closed"}], "closing needs an outcome"),
        ([{"status": "new"}], "cannot be set back to new"),
        ([{"status": "investigating", "outcome": "false_alarm"}], "outcome is given when"),
        ([{"outcome": "true_outbreak"}], "outcome is given when"),
        ([{"status": "done"}], "unknown status"),
        ([{"status": "closed", "outcome": "maybe"}], "unknown outcome"),
        ([{"status": "closed", "outcome": "undetermined"}, {"status": "new"}], "closed to new"),
        ([{}], "nothing to update"),
    ],
)
def test_invalid_changes_are_refused(
    settings: Settings, steps: list[dict[str, Any]], error: str
) -> None:
    *allowed, refused = steps
    for step in allowed:
        update_alert(settings, "b1", **step)
    before = len(show_alert(settings, "b1")["history"])
    with pytest.raises(UsageError, match=error):
        update_alert(settings, "b1", **refused)
    assert len(show_alert(settings, "b1")["history"]) == before


def test_unknown_alert(settings: Settings) -> None:
    with pytest.raises(UsageError, match="no alert with id 'zz'"):
        update_alert(settings, "zz", status="investigating")
    with pytest.raises(UsageError, match="no alert"):
        show_alert(settings, "zz")


def test_close_reopen_and_correct(settings: Settings) -> None:
    update_alert(settings, "b1", status="closed", outcome="false_alarm")
    update_alert(settings, "b1", outcome="undetermined", note="复核")  # correct while closed
    assert show_alert(settings, "b1")["review"]["outcome"] == "undetermined"
    reopened = update_alert(settings, "b1", status="investigating", note="新病例")
    assert reopened["outcome"] is None
    assert reopened["status"] == "investigating"
    update_alert(settings, "b1", note="只加备注")  # keeps the status
    assert show_alert(settings, "b1")["review"]["status"] == "investigating"
    times = [h["updated_at"] for h in show_alert(settings, "b1")["history"]]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_detector_outcomes_count_episodes_and_ppv(settings: Settings) -> None:
    update_alert(settings, "a2", status="closed", outcome="true_outbreak")
    update_alert(settings, "b1", status="closed", outcome="false_alarm")
    update_alert(settings, "c1", status="closed", outcome="true_outbreak")
    table = detector_outcomes(settings)
    assert list(table.columns) == list(OUTCOME_COLUMNS)
    # Per detector: its total row first, then its syndromes.
    assert list(zip(table["detector"], table["syndrome"], strict=True)) == [
        ("ewma", "all"),
        ("ewma", "gi"),
        ("ewma", "ili"),
        ("scan_permutation", "all"),
        ("scan_permutation", "ili"),
    ]
    rows = {(r["detector"], r["syndrome"]): r for r in table.to_dict("records")}
    scan = rows[("scan_permutation", "all")]
    # a1 ← a2 ← a3 is one episode, closed once through a2.
    assert (scan["alerts"], scan["episodes"], scan["open"]) == (3, 1, 0)
    assert (scan["true_outbreaks"], scan["false_alarms"], scan["ppv"]) == (1, 0, 1.0)
    # One true out of one: the lower bound solves p = 0.025.
    assert (scan["ppv_low"], scan["ppv_high"]) == (pytest.approx(0.025), 1.0)
    ewma = rows[("ewma", "all")]
    assert (ewma["alerts"], ewma["episodes"], ewma["true_outbreaks"]) == (2, 2, 1)
    assert ewma["ppv"] == pytest.approx(0.5)
    assert rows[("ewma", "gi")]["ppv"] == 0.0
    assert rows[("ewma", "ili")]["ppv"] == 1.0
    only = detector_outcomes(settings, detectors=["ewma"])
    assert set(only["detector"]) == {"ewma"}


@pytest.fixture
def reviewed(tmp_path: Path) -> Settings:
    """Detector ``ewma``: a 3-day episode and six single alerts, reviewed as below."""
    settings = Settings(home=tmp_path)
    warehouse = Warehouse(settings.warehouse_dir)
    warehouse.write_alerts(D1, pd.DataFrame([_alert("t1", D1, detector="ewma")]))
    warehouse.write_alerts(D2, pd.DataFrame([_alert("t1b", D2, detector="ewma", continues="t1")]))
    singles = ["t2", "t3", "f1", "u1", "o1", "n1"]
    warehouse.write_alerts(
        D3,
        pd.DataFrame(
            [_alert("t1c", D3, detector="ewma", continues="t1b")]
            + [
                _alert(a, D3, detector="ewma", street_codes=[f"31010500{k}000"])
                for k, a in enumerate(singles)
            ]
        ),
    )
    # Closed through the last alert of the episode; reviewed once, counted once.
    update_alert(settings, "t1c", status="closed", outcome="true_outbreak")
    update_alert(settings, "t2", status="closed", outcome="true_outbreak")
    update_alert(settings, "t3", status="investigating")
    update_alert(settings, "t3", status="closed", outcome="true_outbreak")
    update_alert(settings, "f1", status="closed", outcome="false_alarm")
    update_alert(settings, "u1", status="closed", outcome="undetermined")
    update_alert(settings, "o1", status="investigating", assignee="张三")
    return settings


def test_ppv_three_true_one_false(reviewed: Settings) -> None:
    table = detector_outcomes(reviewed)
    total = table[table["syndrome"] == "all"].iloc[0]
    assert (total["alerts"], total["episodes"], total["open"]) == (9, 7, 2)
    counts = (total["true_outbreaks"], total["false_alarms"], total["undetermined"])
    assert counts == (3, 1, 1)
    assert total["ppv"] == pytest.approx(0.75)  # undetermined left out: 3 / (3 + 1)
    # Clopper–Pearson for 3 of 4: P(X >= 3 | p_low) = 0.025 and P(X <= 3 | p_high) = 0.025,
    # i.e. 4 p^3 (1 - p) + p^4 = 0.025 and 1 - p^4 = 0.025.
    low, high = total["ppv_low"], total["ppv_high"]
    assert 4 * low**3 * (1 - low) + low**4 == pytest.approx(0.025)
    assert high == pytest.approx(0.975**0.25)
    assert 0.19 < low < 0.20 and low < 0.75 < high


def test_ppv_interval_edges() -> None:
    low, high = ppv_interval([0, 2, 0], [3, 2, 0])
    # 0 of 3: the upper bound solves (1 - p)^3 = 0.025; 2 of 2: the lower one p^2 = 0.025.
    assert low[0] == 0.0 and high[0] == pytest.approx(1 - 0.025 ** (1 / 3))
    assert low[1] == pytest.approx(0.025**0.5) and high[1] == 1.0
    assert np.isnan(low[2]) and np.isnan(high[2])
    wider = ppv_interval([3], [4], level=0.99)
    assert wider[0][0] < 0.194 and wider[1][0] > 0.994


def test_closed_on_counts_groups_newly_closed_that_day(settings: Settings) -> None:
    at = dt.datetime.combine
    update_alert(settings, "a1", status="investigating", at=at(D2, dt.time(9)))
    update_alert(settings, "b1", status="closed", outcome="false_alarm", at=at(D2, dt.time(10)))
    update_alert(settings, "c1", status="closed", outcome="true_outbreak", at=at(D2, dt.time(11)))
    # Closed through a later alert of the group on D3.
    update_alert(settings, "a3", status="closed", outcome="true_outbreak", at=at(D3, dt.time(8)))
    # An outcome corrected, and a re-open + re-close, on D3: both were closed already.
    update_alert(settings, "c1", outcome="undetermined", at=at(D3, dt.time(9)))
    update_alert(settings, "b1", status="investigating", at=at(D3, dt.time(9)))
    update_alert(settings, "b1", status="closed", outcome="false_alarm", at=at(D3, dt.time(10)))
    history = show_alert(settings, "b1")["history"]
    assert [h["updated_at"] for h in history][-1] == at(D3, dt.time(10))

    alerts = Warehouse(settings.warehouse_dir).read_table("alerts")
    reviews = read_reviews(settings.warehouse_dir)
    assert closed_on(alerts, reviews, D1).empty
    assert closed_on(alerts, reviews, D2).to_dict("records") == [
        {"group_id": "b1", "outcome": "false_alarm"},
        {"group_id": "c1", "outcome": "true_outbreak"},
    ]
    assert closed_on(alerts, reviews, D3).to_dict("records") == [
        {"group_id": "a1", "outcome": "true_outbreak"},
    ]


def test_outcomes_of_an_unreviewed_warehouse(tmp_path: Path) -> None:
    assert detector_outcomes(Settings(home=tmp_path / "none")).empty
    assert not (tmp_path / "none").exists()  # reading outcomes creates no warehouse
    assert detector_outcomes(Settings(home=tmp_path)).empty
    assert list_alerts(Settings(home=tmp_path)).empty
    empty = Warehouse(Settings(home=tmp_path).warehouse_dir)
    assert closed_on(empty.read_table("alerts"), read_reviews(empty.root), D1).empty


def test_identifiers_typed_into_a_note_are_removed(settings: Settings) -> None:
    update_alert(
        settings, "b1", status="investigating", note="家长电话13812345678，身份证310105201503120011"
    )
    (note,) = [n for n in list_alerts(settings)["note"].dropna() if "家长" in n]
    assert "13812345678" not in note and "310105201503120011" not in note
    assert "[已删除]" in note
    stored = (settings.warehouse_dir / "alert_reviews").rglob("*.parquet")
    assert not any(b"13812345678" in p.read_bytes() for p in stored)
