"""The day-by-day visit generator of the simulated regional health platform.

For each day: expected visits per (street, category, age group) from population, rates,
seasons and the calendar; Poisson draws; injected outbreak cases on top; then each visit
gets a resident (identity by hash, see :mod:`identity`), a facility and department, a
time, a temperature, a chief complaint and diagnoses. Facilities deliver records with
their own delays and outages, and some records are corrected later; the generator yields
what *arrives* each day as a :class:`DayBatch`. Memory stays bounded by a few days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.areas import AGE_GROUPS, AreaSet
from sentinel.simulator import identity as ident
from sentinel.simulator.categories import CATEGORIES, RATES
from sentinel.simulator.complaints import make_complaints
from sentinel.simulator.epidemic import Outbreak, category_index, outpatient_calendar
from sentinel.simulator.records import VISIT_COLUMNS, DayBatch

AGE_BOUNDS = ((0, 4), (5, 14), (15, 24), (25, 59), (60, 95))
CHILD_GROUPS = (0, 1)
DISTANCE_SCALE_KM = 2.5  # people favour nearby facilities; hospitals draw from further away
LEVEL_REACH_KM = {"tertiary": 8.0, "secondary": 5.0, "chsc": 1.5, "chss": 1.0}
CODE_RECORDED = {"tertiary": 0.35, "secondary": 0.45, "chsc": 0.92, "chss": 0.9}
TEMPERATURE_MEASURED = {"tertiary": 0.9, "secondary": 0.85, "chsc": 0.6, "chss": 0.5}
CORRECTION_SHARE = 0.02
PLANTED_IDENTIFIER_SHARE = 0.003
BAD_TEMPERATURE_SHARE = 0.0005


@dataclass(frozen=True)
class FacilityEvent:
    """A facility's reporting behaviour worth knowing: late delivery or an outage."""

    facility_id: str
    kind: str  # "late_reporting" | "nightly_batch" | "outage"
    start: date
    end: date
    description: str


@dataclass
class SimulationPlan:
    """Everything fixed before the first day is generated."""

    area: AreaSet
    start: date
    days: int
    seed: int
    rate_scale: float
    outbreaks: list[Outbreak]
    events: list[FacilityEvent] = field(default_factory=list)


def _facility_choice(area: AreaSet) -> tuple[np.ndarray, list[str]]:
    """Cumulative facility choice probabilities per (street, child?, febrile?)."""
    streets = area.projected()
    codes = area.codes
    cent = streets.set_index("street_code").loc[codes].geometry.centroid
    fac = area.facilities
    fpts = gpd.GeoSeries(gpd.points_from_xy(fac["lon"], fac["lat"]), crs="EPSG:4326").to_crs(
        streets.crs
    )
    fx, fy = fpts.x.to_numpy() / 1000.0, fpts.y.to_numpy() / 1000.0
    cx, cy = cent.x.to_numpy() / 1000.0, cent.y.to_numpy() / 1000.0
    dist = np.hypot(cx[:, None] - fx[None, :], cy[:, None] - fy[None, :])
    reach = fac["level"].map(LEVEL_REACH_KM).to_numpy(dtype=float)
    base = fac["weight"].to_numpy(dtype=float)[None, :] * np.exp(-dist / reach[None, :])
    depts = fac["departments"].str.split(";")
    has_ped = depts.map(lambda d: "PED" in d).to_numpy()
    has_fev = depts.map(lambda d: "FEV" in d).to_numpy()
    probs = np.empty((len(codes), 2, 2, len(fac)))
    for child in (0, 1):
        for feb in (0, 1):
            w = base * np.where(has_ped, 3.0, 1.0)[None, :] if child else base.copy()
            if feb:  # fever patients are sent to hospitals' fever clinics
                w = w * np.where(has_fev, 4.0, 0.6)[None, :]
            probs[:, child, feb, :] = w / w.sum(axis=1, keepdims=True)
    return np.cumsum(probs, axis=3), fac["facility_id"].tolist()


def plan_facility_events(
    area: AreaSet, start: date, days: int, rng: np.random.Generator
) -> list[FacilityEvent]:
    """Decide which facilities report late, in nightly batches, or go silent for a while."""
    end = start + timedelta(days=days - 1)
    events: list[FacilityEvent] = []
    fac_ids = area.facilities["facility_id"].tolist()
    kinds = rng.choice(
        ["prompt", "nightly_batch", "late_reporting"], size=len(fac_ids), p=[0.7, 0.2, 0.1]
    )
    for fid, kind in zip(fac_ids, kinds, strict=True):
        if kind == "nightly_batch":
            events.append(
                FacilityEvent(fid, "nightly_batch", start, end, "uploads once a night around 02:00")
            )
        elif kind == "late_reporting":
            events.append(
                FacilityEvent(fid, "late_reporting", start, end, "delivers records 1-3 days late")
            )
    n_outages = round(4 * days / 365.0) if days >= 30 else 0
    for _ in range(n_outages):
        fid = fac_ids[int(rng.integers(len(fac_ids)))]
        length = int(rng.integers(2, 7))
        first = int(rng.integers(7, max(8, days - length)))
        s = start + timedelta(days=first)
        events.append(
            FacilityEvent(fid, "outage", s, s + timedelta(days=length - 1),
                          "interface down; backlog delivered the morning after it ends")
        )  # fmt: skip
    return events


class VisitGenerator:
    """Generates the platform's visits day by day; iterate to get :class:`DayBatch` es."""

    def __init__(self, plan: SimulationPlan) -> None:
        self.plan = plan
        self.area = plan.area
        self.codes = plan.area.codes
        pop = plan.area.population.pivot(
            index="street_code", columns="age_group", values="population"
        )
        self.pool = pop.loc[self.codes, list(AGE_GROUPS)].to_numpy(dtype=np.int64)
        self.cum_facility, self.facility_ids = _facility_choice(plan.area)
        fac = plan.area.facilities
        self.fac_level = fac["level"].to_numpy()
        self.fac_depts = [set(d.split(";")) for d in fac["departments"]]
        self.fac_salt = np.array([int(ident.mix64(np.array([i + 7], dtype=np.uint64))[0] % (1 << 40))
                                  for i in range(len(fac))], dtype=np.uint64)  # fmt: skip
        self.code_prob = np.array([CODE_RECORDED[lv] for lv in self.fac_level])
        self.temp_prob = np.array([TEMPERATURE_MEASURED[lv] for lv in self.fac_level])
        self.lag_kind = {e.facility_id: e.kind for e in plan.events if e.kind != "outage"}
        self.outages = [e for e in plan.events if e.kind == "outage"]
        self.gaz = plan.area.gazetteer
        self.days = [plan.start + timedelta(days=i) for i in range(plan.days)]
        self.out_cal, self.emer_cal = outpatient_calendar(self.days)
        self.rng = np.random.default_rng(plan.seed)
        # year-to-year variety: flu season timing and strength differ between runs
        self.season_shift = self.rng.normal(0.0, 10.0, size=len(CATEGORIES))
        self.season_scale = self.rng.uniform(0.7, 1.3, size=len(CATEGORIES))
        self._places = self._street_places()
        self._bounds = [
            g.bounds for g in self.area.streets.set_index("street_code").loc[self.codes].geometry
        ]
        self._polys = list(self.area.streets.set_index("street_code").loc[self.codes].geometry)

    # -- places and homes -------------------------------------------------------------
    def _street_places(self) -> list[list[tuple[str, str, int, int]]]:
        places: list[list[tuple[str, str, int, int]]] = []
        for code in self.codes:
            rows = self.gaz[(self.gaz["street_code"] == code) & (self.gaz["kind"] != "street")]
            entries = []
            for kind, name, low, high in zip(
                rows["kind"], rows["name_zh"], rows["number_from"], rows["number_to"], strict=True
            ):
                lo = 1 if pd.isna(low) else int(low)
                hi = 1200 if pd.isna(high) else int(high)
                entries.append((str(kind), str(name), lo, max(lo, hi)))
            places.append(entries or [("road", "长宁路", 1, 1500)])
        return places

    def _addresses(self, street: np.ndarray, h: np.ndarray) -> list[str]:
        u = ident.uniform(h, 21)
        num_u = ident.uniform(h, 22)
        room = ident.pick(h, 23, 20) + 1
        floor = ident.pick(h, 24, 18) + 1
        lane = ident.uniform(h, 25) < 0.6
        prefix = ident.uniform(h, 26) < 0.7
        out = []
        for i in range(len(street)):
            entries = self._places[street[i]]
            kind, name, lo, hi = entries[min(int(u[i] * len(entries)), len(entries) - 1)]
            number = lo + int(num_u[i] * (hi - lo + 1))
            if kind == "compound":
                text = f"{name}{number % 60 + 1}号楼{floor[i]}0{room[i] % 9 + 1}室"
            elif lane[i]:
                text = f"{name}{number}弄{room[i]}号{floor[i]}0{room[i] % 9 + 1}室"
            else:
                text = f"{name}{number}号{floor[i]}0{room[i] % 9 + 1}室"
            out.append(("上海市长宁区" if prefix[i] else "") + text)
        return out

    def _homes(self, street: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fixed home point per resident inside their street (hash-driven rejection)."""
        lon = np.full(len(street), np.nan)
        lat = np.full(len(street), np.nan)
        for s in np.unique(street):
            idx = np.flatnonzero(street == s)
            minx, miny, maxx, maxy = self._bounds[s]
            todo = idx
            for k in range(24):
                if todo.size == 0:
                    break
                x = minx + ident.uniform(h[todo], 40 + 2 * k) * (maxx - minx)
                y = miny + ident.uniform(h[todo], 41 + 2 * k) * (maxy - miny)
                inside = shapely.contains_xy(self._polys[s], x, y)
                lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
                todo = todo[~inside]
            if todo.size:
                p = self._polys[s].representative_point()
                lon[todo], lat[todo] = p.x, p.y
        return np.round(lat, 6), np.round(lon, 6)

    # -- one day ----------------------------------------------------------------------
    def _counts(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Visits of day ``i`` as arrays (street, category, age group, outbreak number)."""
        day = self.days[i]
        doy = np.array([day.timetuple().tm_yday], dtype=float)
        season = np.array([
            c.season.multiplier(doy, self.season_shift[k], self.season_scale[k])[0]
            for k, c in enumerate(CATEGORIES)
        ])  # fmt: skip
        es = np.array([c.emergency_share for c in CATEGORIES])
        cal = (1 - es) * self.out_cal[i] + es * self.emer_cal[i]
        lam = self.pool[:, None, :] / 1e5 * RATES[None, :, :] * (season * cal)[None, :, None]
        lam *= self.plan.rate_scale
        counts = self.rng.poisson(lam)
        s_idx, c_idx, a_idx = np.nonzero(counts)
        reps = counts[s_idx, c_idx, a_idx]
        street = np.repeat(s_idx, reps)
        cat = np.repeat(c_idx, reps)
        age = np.repeat(a_idx, reps)
        ob = np.full(street.shape, -1)
        extra_s, extra_c, extra_a, extra_o = [street], [cat], [age], [ob]
        for k, o in enumerate(self.plan.outbreaks):
            n = int(self.rng.poisson(o.expected_on(day)))
            if n == 0:
                continue
            where = self.rng.choice(len(o.street_codes), size=n, p=o.street_weights())
            codes = np.array([self.codes.index(c) for c in o.street_codes])
            w = np.array(o.age_weights) * (self.pool[codes[where]] > 0)
            ages = np.array([self.rng.choice(5, p=row / row.sum()) for row in w])
            extra_s.append(codes[where])
            extra_c.append(np.full(n, category_index(o.category)))
            extra_a.append(ages)
            extra_o.append(np.full(n, k))
        return (np.concatenate(extra_s), np.concatenate(extra_c),
                np.concatenate(extra_a), np.concatenate(extra_o))  # fmt: skip

    def generate_day(self, i: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """All visits of day ``i`` (first versions) and their later corrections."""
        day = self.days[i]
        rng = self.rng
        street, cat, group, ob = self._counts(i)
        n = int(street.shape[0])
        lo = np.array([b[0] for b in AGE_BOUNDS])[group]
        hi = np.array([b[1] for b in AGE_BOUNDS])[group]
        resident = (rng.random(n) * np.maximum(self.pool[street, group], 1)).astype(np.int64)
        h = ident.resident_hash(self.plan.seed, street, group, resident)
        # within the 60+ band, younger ages are commoner
        spread = np.where(group == 4, ident.uniform(h, 20) ** 1.6, ident.uniform(h, 20))
        age_at_start = lo + (spread * (hi - lo + 1)).astype(np.int64)
        ids = ident.make_identities(h, age_at_start, self.plan.start)
        visit_day = np.datetime64(day, "D")
        age_years = ((visit_day - ids.birth_date).astype(np.int64) / 365.25).astype(np.int64)
        febrile = rng.random(n) < np.array([c.febrile_share for c in CATEGORIES])[cat]
        child = np.isin(group, CHILD_GROUPS)
        # facility
        cum = self.cum_facility[street, child.astype(int), febrile.astype(int)]
        fac = np.minimum((cum < rng.random(n)[:, None]).sum(axis=1), cum.shape[1] - 1)
        # setting and department
        es = np.array([c.emergency_share for c in CATEGORIES])[cat]
        wants_er = rng.random(n) < es
        dept_u = rng.random(n)
        setting, dept = [], []
        for k in range(n):
            available = self.fac_depts[fac[k]]
            if wants_er[k] and "EMR" in available:
                setting.append("emergency")
                dept.append("EMR")
                continue
            setting.append("outpatient")
            options = [d for d in CATEGORIES[cat[k]].departments if d in available and d != "EMR"]
            if child[k] and "PED" in available:
                options = ["PED"]
            elif febrile[k] and "FEV" in available:
                options = ["FEV"]
            dept.append(options[int(dept_u[k] * len(options))] if options else "GEN")
        setting_a = np.array(setting)
        # time of visit: clinics 08-17 with a morning peak; emergencies round the clock
        minutes = np.where(
            setting_a == "emergency",
            rng.integers(0, 24 * 60, n),
            np.clip(rng.normal(10.2 * 60, 110, n), 7.5 * 60, 17 * 60 - 1).astype(np.int64),
        )
        visit_time = visit_day + minutes.astype("timedelta64[m]")
        # temperature
        measured = rng.random(n) < self.temp_prob[fac]
        temp = np.where(
            febrile,
            rng.normal(38.7, 0.55, n).clip(38.0, 41.2),
            rng.normal(36.6, 0.3, n).clip(35.6, 37.7),
        )
        temp = np.where(measured, np.round(temp, 1), np.nan)
        bad = measured & (rng.random(n) < BAD_TEMPERATURE_SHARE)
        temp = np.where(bad, temp * 10.0, temp)  # decimal point lost at entry: 38.5 -> 385
        complaints = make_complaints(cat, febrile, child, rng)
        # diagnoses
        first_code, first_name = self._codes(cat, rng)
        no_dx = rng.random(n) < 0.08
        comorbid = (group == 4) & (rng.random(n) < 0.2)
        dx_codes = [
            (
                ""
                if no_dx[k]
                else first_code[k] + (";I10" if comorbid[k] and first_code[k] != "I10" else "")
            )
            for k in range(n)
        ]
        dx_names = [
            (
                ""
                if no_dx[k]
                else first_name[k] + (";高血压" if comorbid[k] and first_code[k] != "I10" else "")
            )
            for k in range(n)
        ]
        # planted identifiers: some clinicians type contact details into the complaint
        plant = rng.random(n) < PLANTED_IDENTIFIER_SHARE
        for p in np.flatnonzero(plant).tolist():
            what = int(rng.integers(3))  # 0 name, 1 phone, 2 ID number
            extra = (f"患者{ids.name[p]}", f"联系电话{ids.phone[p]}", f"身份证{ids.id_number[p]}")[
                what
            ]
            complaints[p] = f"{extra}，{complaints[p]}"
        residence = np.array(self.codes)[street]
        has_code = rng.random(n) < self.code_prob[fac]
        lat, lon = self._homes(street, h)
        fac_ids = np.array(self.facility_ids)[fac]
        mrn_hash = ident.derive(h ^ self.fac_salt[fac], 31)
        patient_id = np.char.add(
            fac_ids.astype("U8"), np.char.zfill((mrn_hash % np.uint64(10**12)).astype("U12"), 12)
        )
        created = self._arrival(fac_ids, visit_time, rng)
        frame = pd.DataFrame(
            {
                "visit_id": "",
                "facility_id": fac_ids,
                "dept": dept,
                "setting": setting,
                "visit_time": visit_time.astype("datetime64[us]"),
                "patient_id": patient_id,
                "name": ids.name,
                "id_number": ids.id_number,
                "phone": ids.phone,
                "sex": ids.sex,
                "birth_date": ids.birth_date.astype("datetime64[us]"),
                "age_years": age_years,
                "address": self._addresses(street, h),
                "residence_code": pd.Series(residence, dtype="str").where(has_code),
                "true_street_code": residence,
                "lat": lat,
                "lon": lon,
                "chief_complaint": complaints,
                "diagnosis_codes": dx_codes,
                "diagnosis_names": dx_names,
                "temperature_c": temp,
                "created_at": created,
                "updated_at": created,
                "category": np.array([c.name for c in CATEGORIES])[cat],
                "outbreak_id": pd.array(
                    [self.plan.outbreaks[o].outbreak_id if o >= 0 else None for o in ob],
                    dtype="str",
                ),
            }
        )
        frame = frame.sort_values(
            ["facility_id", "visit_time", "patient_id"], kind="stable"
        ).reset_index(drop=True)
        seq = frame.groupby("facility_id").cumcount() + 1
        frame["visit_id"] = frame["facility_id"] + f"-{day:%Y%m%d}-" + seq.astype(str).str.zfill(5)
        return frame[list(VISIT_COLUMNS)], self._corrections(frame, rng)

    def _codes(self, cat: np.ndarray, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        codes, names = [], []
        u = rng.random(int(cat.shape[0]))
        tables = []
        for c in CATEGORIES:
            w = np.array([x[2] for x in c.codes], dtype=float)
            tables.append((np.cumsum(w) / w.sum(), c.codes))
        for k in range(cat.shape[0]):
            cum, opts = tables[cat[k]]
            j = min(int(np.searchsorted(cum, u[k])), len(opts) - 1)
            codes.append(opts[j][0])
            names.append(opts[j][1])
        return codes, names

    def _arrival(
        self, fac_ids: np.ndarray, visit_time: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """When each record reaches the source systems, by facility behaviour and outages."""
        n = fac_ids.shape[0]
        vt = visit_time.astype("datetime64[m]")
        prompt = vt + rng.integers(2, 60, n).astype("timedelta64[m]")
        nightly = (
            vt.astype("datetime64[D]")
            + np.timedelta64(1, "D")
            + np.timedelta64(120, "m")
            + rng.integers(0, 60, n).astype("timedelta64[m]")
        )
        late = vt + rng.integers(24 * 60, 72 * 60, n).astype("timedelta64[m]")
        kind = np.array([self.lag_kind.get(f, "prompt") for f in fac_ids])
        created = np.where(
            kind == "nightly_batch", nightly, np.where(kind == "late_reporting", late, prompt)
        )
        for o in self.outages:
            hit = (
                (fac_ids == o.facility_id)
                & (created.astype("datetime64[D]") >= np.datetime64(o.start))
                & (created.astype("datetime64[D]") <= np.datetime64(o.end))
            )
            if hit.any():
                backlog = np.datetime64(o.end + timedelta(days=1)) + np.timedelta64(9 * 60, "m")
                created = np.where(
                    hit, backlog + rng.integers(0, 120, n).astype("timedelta64[m]"), created
                )
        return created.astype("datetime64[us]")

    def _corrections(self, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Later versions of some visits: a firmer diagnosis, a temperature entered late."""
        pick = rng.random(len(frame)) < CORRECTION_SHARE
        fix = frame.loc[pick].copy()
        if fix.empty:
            return fix
        delay = rng.integers(60, 72 * 60, len(fix)).astype("timedelta64[m]")
        fix["updated_at"] = (fix["created_at"].to_numpy().astype("datetime64[m]") + delay).astype(
            "datetime64[us]"
        )
        cat = np.array([category_index(c) for c in fix["category"]])
        codes, names = self._codes(cat, rng)
        fix["diagnosis_codes"] = codes
        fix["diagnosis_names"] = names
        missing = fix["temperature_c"].isna().to_numpy()
        fill = np.round(
            np.where(fix["category"].isin(["ili", "fever"]), 38.4, 36.7)
            + rng.normal(0, 0.2, len(fix)),
            1,
        )
        fix["temperature_c"] = np.where(missing, fill, fix["temperature_c"].to_numpy())
        return fix.reset_index(drop=True)

    def __iter__(self) -> Iterator[DayBatch]:
        pending_visits: dict[date, list[pd.DataFrame]] = defaultdict(list)
        pending_fixes: dict[date, list[pd.DataFrame]] = defaultdict(list)
        last = self.days[-1]
        for i, day in enumerate(self.days):
            visits, fixes = self.generate_day(i)
            for frame, pending, col in (
                (visits, pending_visits, "created_at"),
                (fixes, pending_fixes, "updated_at"),
            ):
                if frame.empty:
                    continue
                arrival = frame[col].dt.date
                arrival = arrival.where(
                    arrival <= last, last
                )  # after the period: in the last batch
                for d, part in frame.groupby(arrival, sort=True):
                    pending[d].append(part)
            yield DayBatch(
                day=day,
                visits=_pop(pending_visits, day, "created_at"),
                corrections=_pop(pending_fixes, day, "updated_at"),
            )


def _pop(pending: dict[date, list[pd.DataFrame]], day: date, order: str) -> pd.DataFrame:
    parts = pending.pop(day, [])
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in VISIT_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values([order, "visit_id"], kind="stable").reset_index(drop=True)
