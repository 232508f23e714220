"""Alerts against the simulator's injected outbreaks: which were flagged, how early, what else fired.

An alert *matches* an outbreak when it names one of the outbreak's streets, falls between
its first day and ``grace_days`` after its last, and is about the outbreak's syndrome or
one the same visits are also classified into (an influenza-like illness outbreak also
raises fever and respiratory counts). Alerts matching no outbreak are false alarms — as far
as the simulation knows: the simulated baseline has its own random bursts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

RELATED: dict[str, frozenset[str]] = {
    "ili": frozenset({"ili", "fever", "respiratory"}),
    "hfmd": frozenset({"hfmd", "rash", "fever"}),
    "rash": frozenset({"rash", "fever"}),
    "gastrointestinal": frozenset({"gastrointestinal"}),
    "conjunctivitis": frozenset({"conjunctivitis"}),
}
"""Syndromes an outbreak of each kind shows up in."""


@dataclass(frozen=True)
class TruthScore:
    """Outcome of comparing alerts with ground truth."""

    outbreaks: pd.DataFrame
    """One row per injected outbreak: flagged, first alert date, days from start to it."""
    true_alerts: int
    false_alerts: int
    false_cells: int
    """Street-syndrome-days with alerts of which none matched an outbreak."""
    cells: int
    """Street-syndrome-days analysed."""

    @property
    def detected(self) -> int:
        return int(self.outbreaks["flagged"].sum())

    @property
    def false_per_100(self) -> float:
        """False alarms per 100 street-syndrome-days (all-ages and age-group alerts of one
        street, syndrome and day count once): the target is at most 1."""
        return 100.0 * self.false_cells / self.cells if self.cells else float("nan")


def score_alerts(
    alerts: pd.DataFrame, truth: pd.DataFrame, cells: int, grace_days: int = 3
) -> TruthScore:
    """Match alerts (``date, syndrome, street_codes``) to outbreaks (``ground_truth.csv`` rows).

    Parameters
    ----------
    alerts : DataFrame
        Alerts with ``date`` (date), ``syndrome`` and ``street_codes`` (list of codes).
    truth : DataFrame
        ``outbreak_id, syndrome, street_codes`` (``;``-separated), ``start, end`` (dates),
        ``extra_cases``.
    cells : int
        Street-syndrome-days analysed (streets × syndromes × days), for the false-alarm rate.
    grace_days : int
        Days after an outbreak's end during which its alerts still count as true.
    """
    matched = pd.Series(False, index=alerts.index)
    rows = []
    for o in truth.itertuples(index=False):
        streets = set(str(o.street_codes).split(";"))
        start = _day(o.start)
        end = _day(o.end) + dt.timedelta(days=grace_days)
        kinds = RELATED.get(str(o.syndrome), frozenset({str(o.syndrome)}))
        hit = (
            alerts["syndrome"].isin(kinds)
            & alerts["date"].map(lambda d, s=start, e=end: s <= _day(d) <= e)
            & alerts["street_codes"].map(lambda c, s=streets: bool(s & set(c)))
        ) if len(alerts) else pd.Series(False, index=alerts.index)  # fmt: skip
        matched |= hit
        first = min((_day(d) for d in alerts.loc[hit, "date"]), default=None)
        rows.append(
            {
                "outbreak_id": o.outbreak_id,
                "syndrome": o.syndrome,
                "streets": len(streets),
                "start": start,
                "end": _day(o.end),
                "extra_cases": o.extra_cases,
                "flagged": first is not None,
                "first_alert": first,
                "days_to_alert": (first - start).days if first is not None else None,
                "alerts": int(hit.sum()),
            }
        )
    false = alerts.loc[~matched]
    cell_keys = {
        (str(d), str(s), tuple(c))
        for d, s, c in zip(false["date"], false["syndrome"], false["street_codes"], strict=True)
    }
    true_keys = {
        (str(d), str(s), tuple(c))
        for d, s, c in zip(
            alerts.loc[matched, "date"],
            alerts.loc[matched, "syndrome"],
            alerts.loc[matched, "street_codes"],
            strict=True,
        )
    }
    return TruthScore(
        outbreaks=pd.DataFrame(rows),
        true_alerts=int(matched.sum()),
        false_alerts=int((~matched).sum()),
        false_cells=len(cell_keys - true_keys),
        cells=cells,
    )


def _day(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
