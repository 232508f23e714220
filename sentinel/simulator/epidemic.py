"""When people fall ill: calendar effects and the injected outbreaks (the ground truth)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import holidays
import numpy as np
import numpy.typing as npt

from sentinel.simulator.categories import CATEGORIES

# Outpatient volume by weekday (Mon..Sun): Monday crowds, quiet Sundays. Emergencies barely move.
OUTPATIENT_WEEKDAY = np.array([1.18, 1.08, 1.03, 1.02, 1.0, 0.85, 0.74])
EMERGENCY_WEEKDAY = np.array([1.02, 1.0, 1.0, 1.0, 1.0, 0.99, 0.99])
SPRING_FESTIVAL_DIP = 0.45  # New Year's Eve and the six days after
SPRING_FESTIVAL_REBOUND = 1.15  # the week after clinics reopen
NATIONAL_DAY_DIP = 0.7
OTHER_HOLIDAY_DIP = 0.8


def spring_festival_eves(years: range) -> list[date]:
    """Chinese New Year's Eve (除夕) of each year, from the ``holidays`` calendar."""
    cal = holidays.China(years=list(years), language="en_US")
    eves = [d for d, name in cal.items() if "New Year's Eve" in name]
    if len(eves) < len(years):  # calendars without the eve: the day before the festival
        firsts = sorted(d for d, name in cal.items() if "Spring Festival" in name)
        by_year: dict[int, date] = {}
        for d in firsts:
            by_year.setdefault(d.year, d)
        eves = [d - timedelta(days=1) for d in by_year.values()]
    return sorted(eves)


def outpatient_calendar(days: list[date]) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers (outpatient, emergency) of visit volume for each day.

    Weekday pattern, Spring Festival dip and rebound, National Day week and other
    statutory holidays (from the ``holidays`` package's China calendar).
    """
    years = range(days[0].year - 1, days[-1].year + 2)
    cal = holidays.China(years=list(years), language="en_US")
    eves = spring_festival_eves(years)
    out = np.empty(len(days))
    emer = np.empty(len(days))
    for i, d in enumerate(days):
        o = OUTPATIENT_WEEKDAY[d.weekday()]
        since_eve = min(((d - e).days for e in eves if (d - e).days >= 0), default=999)
        if since_eve <= 6:
            o *= SPRING_FESTIVAL_DIP
        elif since_eve <= 13:
            o *= SPRING_FESTIVAL_REBOUND
        elif d.month == 10 and d.day <= 7:
            o *= NATIONAL_DAY_DIP
        elif d in cal:
            o *= OTHER_HOLIDAY_DIP
        out[i] = o
        emer[i] = EMERGENCY_WEEKDAY[d.weekday()] * (0.9 if since_eve <= 6 else 1.0)
    return out, emer


@dataclass(frozen=True)
class OutbreakTemplate:
    """A kind of outbreak the district sees."""

    category: str
    age_weights: tuple[float, float, float, float, float]
    streets: tuple[int, int]
    duration: tuple[int, int]
    cases: tuple[int, int]
    description_zh: str
    description_en: str


TEMPLATES: tuple[OutbreakTemplate, ...] = (
    OutbreakTemplate("gastrointestinal", (0.05, 0.7, 0.1, 0.1, 0.05), (1, 1), (4, 7), (30, 80),
                     "学校诺如病毒胃肠炎暴发", "Norovirus gastroenteritis outbreak in a school"),
    OutbreakTemplate("ili", (0.0, 0.0, 0.0, 0.1, 0.9), (1, 1), (6, 12), (30, 70),
                     "养老机构流感样病例聚集", "Influenza-like illness cluster in a nursing home"),
    OutbreakTemplate("hfmd", (0.85, 0.15, 0.0, 0.0, 0.0), (1, 1), (7, 14), (15, 35),
                     "幼儿园手足口病聚集", "Hand-foot-and-mouth disease cluster in a kindergarten"),
    OutbreakTemplate("rash", (0.05, 0.85, 0.1, 0.0, 0.0), (1, 1), (10, 21), (20, 45),
                     "学校水痘暴发", "Varicella outbreak in a school"),
    OutbreakTemplate("conjunctivitis", (0.05, 0.4, 0.3, 0.2, 0.05), (1, 2), (5, 10), (25, 60),
                     "急性出血性结膜炎暴发", "Acute haemorrhagic conjunctivitis outbreak"),
    OutbreakTemplate("gastrointestinal", (0.02, 0.08, 0.2, 0.6, 0.1), (2, 3), (2, 4), (40, 90),
                     "餐饮单位食源性疾病暴发", "Foodborne outbreak traced to a restaurant"),
)  # fmt: skip


@dataclass(frozen=True)
class Outbreak:
    """One injected outbreak: extra visits of one category in some streets for some days."""

    outbreak_id: str
    category: str
    street_codes: tuple[str, ...]
    start: date
    end: date
    expected_cases: float
    age_weights: tuple[float, ...]
    description_zh: str
    description_en: str

    @property
    def days(self) -> int:
        """Duration in days, both ends included."""
        return (self.end - self.start).days + 1

    def expected_on(self, day: date) -> float:
        """Expected extra visits on ``day`` (an epidemic curve rising then falling)."""
        t = (day - self.start).days
        if t < 0 or day > self.end:
            return 0.0
        steps = np.arange(self.days) + 0.5
        shape = steps**1.5 * np.exp(-steps / max(self.days / 3.0, 0.8))
        return float(self.expected_cases * shape[t] / shape.sum())

    def street_weights(self) -> npt.NDArray[np.float64]:
        """Share of cases per street: the first street is the focus."""
        w = np.array([1.0] + [0.5] * (len(self.street_codes) - 1))
        return w / w.sum()


def plan_outbreaks(
    start: date,
    days: int,
    codes: list[str],
    adjacency: dict[str, list[str]],
    rng: np.random.Generator,
    per_year: float = 8.0,
    ongoing_at_end: bool = True,
) -> list[Outbreak]:
    """Choose the outbreaks to inject: kinds, streets (neighbours), dates and sizes.

    Outbreaks start after a baseline period (a third of the period, at most 8 weeks) so
    detectors have history, and two outbreaks of one category never share a street and days.
    With ``ongoing_at_end`` (periods of 14 days or more), one more outbreak is still under
    way on the last day, as on a real morning: the last day's bulletin has an injected
    outbreak to show. It is drawn from a child generator (``rng.spawn``), so the other
    outbreaks and every later draw of ``rng`` are the same with or without it.
    """
    if days < 7:
        return []
    count = max(1, round(per_year * days / 365.0))
    earliest = min(56, days // 3)
    order = rng.permutation(len(TEMPLATES))
    plans: list[Outbreak] = []
    attempts = 0
    while len(plans) < count and attempts < count * 50:
        attempts += 1
        tpl = TEMPLATES[order[len(plans) % len(TEMPLATES)]]
        duration = int(rng.integers(tpl.duration[0], tpl.duration[1] + 1))
        duration = min(duration, max(1, days - earliest))
        first = int(rng.integers(earliest, max(earliest + 1, days - duration + 1)))
        focus = codes[int(rng.integers(len(codes)))]
        n_streets = int(rng.integers(tpl.streets[0], tpl.streets[1] + 1))
        neighbours = [c for c in adjacency.get(focus, []) if c in codes]
        extra = list(rng.permutation(neighbours))[: n_streets - 1] if neighbours else []
        streets = (focus, *sorted(str(c) for c in extra))
        s, e = start + timedelta(days=first), start + timedelta(days=first + duration - 1)
        clash = any(
            o.category == tpl.category
            and set(o.street_codes) & set(streets)
            and not (e < o.start or s > o.end)
            for o in plans
        )
        if clash:
            continue
        plans.append(
            Outbreak(
                outbreak_id="",
                category=tpl.category,
                street_codes=streets,
                start=s,
                end=e,
                expected_cases=float(rng.integers(tpl.cases[0], tpl.cases[1] + 1)),
                age_weights=tpl.age_weights,
                description_zh=tpl.description_zh,
                description_en=tpl.description_en,
            )
        )
    if ongoing_at_end and days >= 14:
        plans.append(_ongoing_outbreak(start, days, codes, plans, rng.spawn(1)[0]))
    plans.sort(key=lambda o: (o.start, o.category, o.street_codes))
    return [
        Outbreak(**{**o.__dict__, "outbreak_id": f"OB{i + 1:03d}"}) for i, o in enumerate(plans)
    ]


def _ongoing_outbreak(
    start: date, days: int, codes: list[str], plans: list[Outbreak], rng: np.random.Generator
) -> Outbreak:
    """A school norovirus outbreak on its 4th of 7 days on the last day (largest size).

    Its end lies after the period; its focus street is one no other gastrointestinal
    outbreak uses in those days.
    """
    tpl = TEMPLATES[0]
    s = start + timedelta(days=days - 4)
    e = s + timedelta(days=6)
    busy = {
        c
        for o in plans
        if o.category == tpl.category and not (e < o.start or s > o.end)
        for c in o.street_codes
    }
    free = [c for c in codes if c not in busy] or list(codes)
    return Outbreak(
        outbreak_id="",
        category=tpl.category,
        street_codes=(free[int(rng.integers(len(free)))],),
        start=s,
        end=e,
        expected_cases=float(tpl.cases[1]),
        age_weights=tpl.age_weights,
        description_zh=tpl.description_zh,
        description_en=tpl.description_en,
    )


def category_index(name: str) -> int:
    """Index of a category name in :data:`CATEGORIES`."""
    for i, c in enumerate(CATEGORIES):
        if c.name == name:
            return i
    raise KeyError(name)
