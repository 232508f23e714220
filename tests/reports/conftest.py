"""A small warehouse for report tests: 10 Changning streets, 9 weeks of visits, alerts.

Visits are generated with a seeded generator (an ILI outbreak among 5–14-year-olds in
two neighbouring streets over the last 4 days; facility F05 silent on the last day) and
alerts are written directly with :meth:`Warehouse.write_alerts`: a temporal alert, a
space-time scan cluster over two streets, an ongoing one, and a low one on day −1 that
ends.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from geo.areas import load_area_set
from sentinel.pipeline import reference_frames
from sentinel.settings import Settings
from warehouse.store import Warehouse

DAY = dt.date(2025, 3, 14)
SYNDROMES = ("gastrointestinal", "hfmd", "ili", "respiratory")
OUTBREAK_STREETS = ("310105005000", "310105006000")
COMPLAINTS = {
    "ili": ("发热咳嗽2天", "J11.1"),
    "respiratory": ("咳嗽咳痰3天", "J20.9"),
    "gastrointestinal": ("腹泻3次", "A09.9"),
    "hfmd": ("手足皮疹，口腔疱疹", "B08.4"),
    "": ("外伤1小时", "S61.0"),
}


@dataclass(frozen=True)
class BulletinWarehouse:
    """The fixture: settings pointing at the warehouse, the day, and what it holds."""

    settings: Settings
    day: dt.date
    alerts: pd.DataFrame
    patient_keys: frozenset[str]
    street_names: dict[str, str]


def _visits(rng: np.random.Generator, streets: list[str], facilities: list[str]) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    first = DAY - dt.timedelta(days=62)
    for offset in range(63):
        day = first + dt.timedelta(days=offset)
        outbreak = offset >= 59
        for street in streets:
            n = int(rng.poisson(12))
            extra = int(rng.poisson(6)) if outbreak and street in OUTBREAK_STREETS else 0
            for k in range(n + extra):
                is_case = k >= n
                syndrome = "ili" if is_case else str(rng.choice([*SYNDROMES, "", "", ""]))
                age = int(rng.integers(6, 14)) if is_case else int(rng.integers(0, 90))
                facility = str(rng.choice(facilities))
                if day == DAY and facility == "F05":
                    facility = "F01"  # F05 goes silent on the bulletin day
                complaint, code = COMPLAINTS[syndrome]
                time = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(
                    minutes=int(rng.integers(0, 600))
                )
                late = (
                    dt.timedelta(hours=30)
                    if facility == "F03" and k == 0
                    else dt.timedelta(minutes=30)
                )
                rows.append(
                    {
                        "visit_key": f"v{len(rows):07d}",
                        "source": "test",
                        "facility_id": facility,
                        "visit_date": day,
                        "visit_time": time,
                        "setting": "outpatient",
                        "patient_key": f"PK-SECRET-{len(rows):07d}",
                        "sex": str(rng.choice(["M", "F"])),
                        "age_years": age,
                        "age_group": ("0-4", "5-14", "15-24", "25-59", "60+")[
                            int(np.searchsorted([5, 15, 25, 60], age, side="right"))
                        ],
                        "street_code": street,
                        "residence_method": "code",
                        "chief_complaint": complaint,
                        "diagnosis_codes": [code],
                        "temperature_c": 38.5 if syndrome == "ili" else 36.8,
                        "syndromes": [syndrome] if syndrome else [],
                        "updated_at": time + late,
                    }
                )
    return pd.DataFrame(rows)


def _alert(alert_id: str, day: dt.date, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "alert_id": alert_id,
        "date": day,
        "age_group": None,
        "expected": None,
        "upperbound": None,
        "score": None,
        "p_value": None,
        "status": "new",
        "created_at": dt.datetime(2025, 3, 15, 6, 0),
        "params": json.dumps({"b": 28}),
        "window_start": None,
        "relative_risk": None,
        "llr": None,
        "recurrence_interval_days": None,
        "announcement": "new",
        "continues": None,
    }
    return base | kw


@pytest.fixture(scope="session")
def bulletin_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BulletinWarehouse:
    """A warehouse with visits, syndrome_daily, alerts (incl. a scan cluster), batches."""
    home = tmp_path_factory.mktemp("bulletin_home")
    area = load_area_set("changning")
    wh = Warehouse(home / "warehouse")
    streets, facilities = reference_frames(area)
    wh.replace_table("streets", streets)
    wh.replace_table("facilities", facilities)
    rng = np.random.default_rng(6)
    visits = _visits(rng, list(streets["street_code"]), sorted(facilities["facility_id"])[:6])
    batch = "b" * 32
    wh.upsert_visits(visits, batch)
    wh.rebuild_syndrome_daily(sorted(set(visits["visit_date"])), SYNDROMES)
    wh.append_quarantine(
        batch,
        pd.DataFrame(
            {
                "source": ["test"] * 3,
                "row_ref": ["visits.csv:10", "visits.csv:11", "visits.csv:12"],
                "reason": [
                    "temperature_c outside 30-45 °C",
                    "unknown facility",
                    "unknown facility",
                ],
                "stage": ["validate"] * 3,
                "quarantined_at": [dt.datetime(2025, 3, 15, 5, 0)] * 3,
            }
        ),
    )
    wh.record_batch(
        {
            "batch_id": batch,
            "source": "test",
            "location": "visits.csv",
            "extracted": len(visits) + 3,
            "loaded": len(visits),
            "quarantined": 3,
            "replaced": 0,
            "started": dt.datetime(2025, 3, 15, 5, 0),
            "finished": dt.datetime(2025, 3, 15, 5, 1),
            "status": "succeeded",
        }
    )
    yesterday = DAY - dt.timedelta(days=1)
    wh.write_alerts(
        yesterday,
        pd.DataFrame(
            [
                _alert(
                    "a-prev-ili",
                    yesterday,
                    syndrome="ili",
                    street_codes=[OUTBREAK_STREETS[0]],
                    detector="switch",
                    observed=14.0,
                    expected=5.0,
                    upperbound=10.0,
                    severity="medium",
                ),
                _alert(
                    "a-prev-gi",
                    yesterday,
                    syndrome="gastrointestinal",
                    street_codes=["310105001000"],
                    detector="switch",
                    observed=6.0,
                    expected=2.0,
                    upperbound=5.5,
                    severity="low",
                ),
            ]
        ),
    )
    today = pd.DataFrame(
        [
            _alert(
                "a-scan",
                DAY,
                syndrome="ili",
                street_codes=list(OUTBREAK_STREETS),
                detector="scan",
                observed=60.0,
                expected=22.0,
                upperbound=None,
                severity="high",
                window_start=DAY - dt.timedelta(days=3),
                relative_risk=2.9,
                llr=21.5,
                recurrence_interval_days=1000.0,
                p_value=0.001,
            ),
            _alert(
                "a-ili-age",
                DAY,
                syndrome="ili",
                street_codes=[OUTBREAK_STREETS[0]],
                age_group="5-14",
                detector="switch",
                observed=9.0,
                expected=1.5,
                upperbound=5.0,
                severity="medium",
                announcement="ongoing",
                continues="a-prev-ili",
            ),
            _alert(
                "a-resp",
                DAY,
                syndrome="respiratory",
                street_codes=["310105002000"],
                detector="ears_c2",
                observed=6.0,
                expected=3.0,
                upperbound=5.6,
                severity="low",
            ),
        ]
    )
    wh.write_alerts(DAY, today)
    names = dict(zip(streets["street_code"], streets["name_zh"], strict=True))
    return BulletinWarehouse(
        settings=Settings(home=home),
        day=DAY,
        alerts=today,
        patient_keys=frozenset(visits["patient_key"]),
        street_names=names,
    )
