"""Scoring alerts against the simulator's injected outbreaks."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from sentinel.truth import score_alerts

D = dt.date(2025, 5, 5)


def _alert(day: int, syndrome: str, street: str, age: str | None = None) -> dict[str, object]:
    return {
        "date": D + dt.timedelta(days=day),
        "syndrome": syndrome,
        "street_codes": [street],
        "age_group": age,
    }


def test_hand_scored_case() -> None:
    truth = pd.DataFrame(
        [
            {"outbreak_id": "OB1", "syndrome": "ili", "street_codes": "A;B", "start": "2025-05-05",
             "end": "2025-05-10", "extra_cases": 30},
            {"outbreak_id": "OB2", "syndrome": "gastrointestinal", "street_codes": "C",
             "start": "2025-06-01", "end": "2025-06-03", "extra_cases": 20},
        ]
    )  # fmt: skip
    alerts = pd.DataFrame(
        [
            _alert(2, "fever", "B"),  # related syndrome, second street, day 2: true
            _alert(3, "ili", "A"),  # true
            _alert(3, "ili", "A", "60+"),  # true (same cell)
            _alert(8, "ili", "A"),  # 3 days after the end: still within grace, true
            _alert(9, "ili", "A"),  # 4 days after: false
            _alert(3, "gastrointestinal", "A"),  # unrelated syndrome: false
            _alert(3, "gastrointestinal", "A", "0-4"),  # false, same cell as above
            _alert(3, "ili", "C"),  # other street: false
        ]
    )
    score = score_alerts(alerts, truth, cells=1000)
    ob = score.outbreaks.set_index("outbreak_id")
    assert ob.loc["OB1", "flagged"] and ob.loc["OB1", "days_to_alert"] == 2
    assert not ob.loc["OB2", "flagged"] and pd.isna(ob.loc["OB2", "days_to_alert"])
    assert score.detected == 1
    assert (score.true_alerts, score.false_alerts) == (4, 4)
    assert score.false_cells == 3
    assert score.false_per_100 == 0.3


def test_no_alerts() -> None:
    truth = pd.DataFrame(
        [{"outbreak_id": "OB1", "syndrome": "rash", "street_codes": "A", "start": "2025-05-05",
          "end": "2025-05-10", "extra_cases": 30}]
    )  # fmt: skip
    empty = pd.DataFrame(columns=["date", "syndrome", "street_codes", "age_group"])
    score = score_alerts(empty, truth, cells=100)
    assert score.detected == 0 and score.false_cells == 0 and score.false_per_100 == 0
