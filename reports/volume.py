"""A facility's usual daily visit volume: what the bulletin and the operations checks compare to.

Shared by :mod:`reports.bulletin_data` (the data-quality table: silent, low, high volume)
and :mod:`sentinel.operations` (silent facilities, the bulletin's quality gate), so the
two never disagree about what "usually reports" means.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd

__all__ = ["NORMAL_WEEKS", "usual_daily_visits"]

NORMAL_WEEKS = 8
"""Weeks of the same weekday behind a facility's usual volume."""


def usual_daily_visits(
    visits: pd.DataFrame,
    facility_ids: Iterable[str],
    day: dt.date,
    *,
    weeks: int = NORMAL_WEEKS,
) -> pd.Series:
    """Each facility's usual number of visits on ``day``'s weekday.

    Parameters
    ----------
    visits : pandas.DataFrame
        At least ``facility_id`` and ``visit_date`` (``datetime.date`` values), covering
        the ``weeks`` weeks before ``day``; other dates are ignored.
    facility_ids : iterable of str
        Facilities to report on (those without visits get 0).
    day : datetime.date
        The day whose weekday is looked at; ``day`` itself is not used.
    weeks : int
        How many earlier same weekdays to take.

    Returns
    -------
    pandas.Series
        Float, indexed by ``facility_id`` in the order given.

    Notes
    -----
    The usual volume is the median of the counts on the same weekday of each of the
    ``weeks`` weeks before ``day`` (days without visits count as 0). Taking the same
    weekday keeps weekend closures from looking like silence; the median ignores one odd
    week (a holiday, an outage). With 8 weeks the median is above 0 exactly when the
    facility reported on at least 4 of those 8 days.
    """
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, not {weeks}")
    ids = list(dict.fromkeys(facility_ids))
    same_weekday = [day - dt.timedelta(weeks=k) for k in range(1, weeks + 1)]
    seen = visits.loc[visits["visit_date"].isin(same_weekday), ["facility_id", "visit_date"]]
    counts = seen.groupby(["facility_id", "visit_date"]).size()
    grid = pd.MultiIndex.from_product([ids, same_weekday], names=["facility_id", "visit_date"])
    full = counts.reindex(grid, fill_value=0).astype(float)
    medians = full.groupby(level="facility_id", sort=False).median()
    return medians.reindex(ids).rename("usual")
