"""Alert review lifecycle: state machine, grouping of continuing alerts, detector PPV."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports.lifecycle import detector_outcomes, list_alerts, show_alert, update_alert
from sentinel.errors import UsageError
from sentinel.settings import Settings
from warehouse.catalog import run_query
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
    settings: Settings, steps: list[dict[str, str]], error: str
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
    table = detector_outcomes(settings).set_index("detector")
    scan = table.loc["scan_permutation"]
    assert (scan["alerts"], scan["episodes"], scan["reviewed"]) == (3, 1, 1)
    assert (scan["true_outbreaks"], scan["false_alarms"], scan["ppv"]) == (1, 0, 1.0)
    ewma = table.loc["ewma"]
    assert (ewma["alerts"], ewma["reviewed"], ewma["true_outbreaks"]) == (2, 2, 1)
    assert ewma["ppv"] == pytest.approx(0.5)


def test_outcomes_of_an_unreviewed_warehouse(tmp_path: Path) -> None:
    assert detector_outcomes(Settings(home=tmp_path)).empty
    assert list_alerts(Settings(home=tmp_path)).empty
