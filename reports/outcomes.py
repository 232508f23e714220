"""Real positive predictive value of detectors, from the outcomes of reviewed alerts.

``sentinel evaluate`` backtests detectors on injected outbreaks; this module says how the
alerts they raised in production fared when CDC staff reviewed them
(:mod:`reports.lifecycle`). The unit is the *episode*: a group of continuing alerts
(:func:`reports.lifecycle.group_ids`) is reviewed once, so an outbreak flagged on five
consecutive days is one true positive, not five. An episode counts once for each detector
that raised at least one of its alerts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import beta

from reports.lifecycle import read_reviewed_alerts
from sentinel.settings import Settings

__all__ = ["ALL_SYNDROMES", "OUTCOME_COLUMNS", "detector_outcomes", "ppv_interval"]

ALL_SYNDROMES = "all"
"""``syndrome`` of a detector's total row."""

OUTCOME_COLUMNS = (
    "detector",
    "syndrome",
    "alerts",
    "episodes",
    "open",
    "true_outbreaks",
    "false_alarms",
    "undetermined",
    "ppv",
    "ppv_low",
    "ppv_high",
)

_COUNTED = {"true_outbreaks": "true_outbreak", "false_alarms": "false_alarm"}


def ppv_interval(
    true: ArrayLike, decided: ArrayLike, *, level: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Clopper–Pearson (exact) interval of a proportion ``true / decided``.

    Parameters
    ----------
    true : array_like of int
        Successes (true outbreaks).
    decided : array_like of int
        Trials (true outbreaks + false alarms); NaN bounds where it is 0.
    level : float
        Confidence level.

    Returns
    -------
    low, high : ndarray
        The bounds; ``low`` is 0 when ``true`` is 0 and ``high`` 1 when ``true = decided``.

    Notes
    -----
    With :math:`x` successes in :math:`n` trials and :math:`\\alpha = 1 - \\text{level}`,
    the bounds are :math:`B(\\alpha/2;\\, x, n - x + 1)` and
    :math:`B(1 - \\alpha/2;\\, x + 1, n - x)`, :math:`B` the beta quantile: the
    :math:`p` at which :math:`P(X \\ge x) = \\alpha/2`, resp. :math:`P(X \\le x) = \\alpha/2`,
    for :math:`X \\sim \\text{Binomial}(n, p)`. Reviewed episodes per detector are few, so
    the exact interval is used; its coverage is never below ``level``.

    References
    ----------
    Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the
    case of the binomial. Biometrika 1934;26(4):404–413.
    """
    x = np.asarray(true, dtype=np.float64)
    n = np.asarray(decided, dtype=np.float64)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        low = np.where(x > 0, beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where(x < n, beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def _tabulate(alerts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Counts per ``keys`` of alerts and of their episodes by current status and outcome."""
    # An episode's syndrome is that of its first alert (continuing alerts keep it anyway).
    episodes = alerts.sort_values(["date", "alert_id"]).drop_duplicates(["detector", "group_id"])
    closed = episodes[episodes["status"] == "closed"]
    counts = {
        "alerts": alerts.groupby(keys).size(),
        "episodes": episodes.groupby(keys).size(),
        "open": episodes[episodes["status"] != "closed"].groupby(keys).size(),
    }
    for column, outcome in {**_COUNTED, "undetermined": "undetermined"}.items():
        counts[column] = closed[closed["outcome"] == outcome].groupby(keys).size()
    return pd.DataFrame(counts).fillna(0).astype("int64")


def detector_outcomes(
    settings: Settings,
    *,
    detectors: Sequence[str] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Return each detector's reviewed alert episodes and real positive predictive value.

    Parameters
    ----------
    settings : Settings
        Where the warehouse is.
    detectors : sequence of str, optional
        Keep these detectors (method names); default all that raised alerts.
    level : float
        Confidence level of the PPV interval.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OUTCOME_COLUMNS`. Per detector, first a total row (``syndrome`` is
        :data:`ALL_SYNDROMES`), then one row per syndrome. ``alerts``: alerts raised
        (every day of an episode); ``episodes``: alert groups; ``open``: episodes not
        closed yet (new or under investigation: not yet reviewed); ``true_outbreaks``,
        ``false_alarms``, ``undetermined``: closed episodes by outcome; ``ppv`` = true
        outbreaks / (true outbreaks + false alarms), undetermined left out, NaN while
        neither is known; ``ppv_low``, ``ppv_high``: its Clopper–Pearson interval
        (:func:`ppv_interval`). No rows when there is no warehouse or it holds no alerts
        of these detectors.
    """
    if not settings.warehouse_dir.is_dir():  # opening one would create it
        return pd.DataFrame(columns=list(OUTCOME_COLUMNS))
    alerts = read_reviewed_alerts(settings)
    if detectors is not None:
        alerts = alerts[alerts["detector"].isin(list(detectors))]
    if alerts.empty:
        return pd.DataFrame(columns=list(OUTCOME_COLUMNS))
    total = _tabulate(alerts.assign(syndrome=ALL_SYNDROMES), ["detector", "syndrome"])
    per_syndrome = _tabulate(alerts, ["detector", "syndrome"])
    table = pd.concat([total, per_syndrome]).reset_index()
    table["_total_first"] = table["syndrome"] != ALL_SYNDROMES
    table = table.sort_values(["detector", "_total_first", "syndrome"], kind="stable")
    decided = (table["true_outbreaks"] + table["false_alarms"]).to_numpy()
    true = table["true_outbreaks"].to_numpy()
    table["ppv"] = np.where(decided > 0, true / np.maximum(decided, 1), np.nan)
    table["ppv_low"], table["ppv_high"] = ppv_interval(true, decided, level=level)
    return table[list(OUTCOME_COLUMNS)].reset_index(drop=True)
