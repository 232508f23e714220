from datetime import date, timedelta

import numpy as np

from sentinel.simulator.categories import FLU, HFMD
from sentinel.simulator.epidemic import outpatient_calendar, plan_outbreaks, spring_festival_eves


def test_spring_festival_eves_are_known_dates() -> None:
    assert spring_festival_eves(range(2025, 2028)) == [
        date(2025, 1, 28),
        date(2026, 2, 16),
        date(2027, 2, 5),
    ]


def test_calendar_weekday_and_spring_festival_dip() -> None:
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(60)]
    out, emer = outpatient_calendar(days)
    monday, sunday = days.index(date(2025, 1, 6)), days.index(date(2025, 1, 12))
    assert out[monday] > 1.1
    assert out[sunday] < 0.8
    eve = days.index(date(2025, 1, 28))
    assert out[eve : eve + 7].max() < 0.6
    assert emer[eve : eve + 7].min() > 0.8  # emergencies barely dip


def test_seasons_peak_when_expected() -> None:
    doy = np.arange(1, 366, dtype=float)
    assert abs(int(doy[np.argmax(FLU.multiplier(doy))]) - 15) <= 3
    assert 120 <= int(doy[np.argmax(HFMD.multiplier(doy))]) <= 160


def test_outbreak_plan_is_deterministic_and_uses_neighbours() -> None:
    codes = ["A", "B", "C", "D"]
    adjacency = {"A": ["B"], "B": ["A", "C"], "C": ["B", "D"], "D": ["C"]}
    a = plan_outbreaks(date(2025, 1, 1), 365, codes, adjacency, np.random.default_rng(1))
    b = plan_outbreaks(date(2025, 1, 1), 365, codes, adjacency, np.random.default_rng(1))
    assert a == b and len(a) == 9
    last = date(2025, 12, 31)
    ongoing = [o for o in a if o.start <= last < o.end]
    assert len(ongoing) == 1 and ongoing[0].expected_on(last) > 0.15 * ongoing[0].expected_cases
    for o in a:
        assert o.start >= date(2025, 1, 1) + timedelta(days=56)
        assert o in ongoing or o.end <= last
        focus, *others = o.street_codes
        assert all(x in adjacency[focus] for x in others)
        total = sum(o.expected_on(o.start + timedelta(days=d)) for d in range(o.days))
        assert abs(total - o.expected_cases) < 1e-6
    assert [o.outbreak_id for o in a] == [f"OB{i:03d}" for i in range(1, 10)]


def test_ongoing_outbreak_leaves_the_other_plans_unchanged() -> None:
    codes = ["A", "B", "C", "D"]
    adjacency = {"A": ["B"], "B": ["A", "C"], "C": ["B", "D"], "D": ["C"]}
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    a = plan_outbreaks(date(2025, 1, 1), 365, codes, adjacency, rng_a)
    b = plan_outbreaks(date(2025, 1, 1), 365, codes, adjacency, rng_b, ongoing_at_end=False)
    key = [(o.category, o.street_codes, o.start, o.end) for o in b]
    assert [
        (o.category, o.street_codes, o.start, o.end) for o in a if o.end <= date(2025, 12, 31)
    ] == key
    assert rng_a.random() == rng_b.random()
