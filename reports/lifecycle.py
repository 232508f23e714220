"""Alert review lifecycle: new → investigating → closed, with an outcome.

Detector re-runs rewrite ``alerts``; reviews are kept in the append-only ``alert_reviews``
history (:mod:`warehouse.reviews`). Continuing alerts form a *group*: an alert whose
``continues`` names an earlier alert belongs to that alert's group, whose id is the id of
the first alert of the chain (the root). A group is one episode, reviewed once: its
current review is the latest review row of any of its alerts, so closing today's
``ongoing`` alert closes the episode.

Intended commands (wired in ``sentinel/cli.py``)::

    sentinel alerts list [--since D] [--until D] [--status S] [--syndrome X]
                         [--format table|csv|json]          -> list_alerts
    sentinel alerts show ID                                 -> show_alert
    sentinel alerts update ID [--status investigating|closed]
                         [--outcome true_outbreak|false_alarm|undetermined]
                         [--assignee 张三] [--note …]         -> update_alert (user: $USER)

Outcomes per detector (real positive predictive value, ``sentinel evaluate``) are
tabulated in :mod:`reports.outcomes` from :func:`read_reviewed_alerts`; the bulletin
counts the groups a review closed on its day with :func:`closed_on`.

Transitions: ``new → investigating``, ``new → closed``, ``investigating → closed`` and
``closed → investigating`` (re-opening clears the outcome). Closing needs an outcome; an
outcome is only accepted on a closed review. Changing only the assignee or adding a note
keeps the status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, get_args

import pandas as pd

from sentinel.errors import UsageError
from sentinel.settings import Settings
from transform.scrub import scrub_text
from warehouse.reviews import append_review, read_reviews
from warehouse.store import Warehouse

__all__ = [
    "OUTCOMES",
    "STATUSES",
    "closed_on",
    "group_ids",
    "list_alerts",
    "read_reviewed_alerts",
    "show_alert",
    "update_alert",
]

Status = Literal["new", "investigating", "closed"]
Outcome = Literal["true_outbreak", "false_alarm", "undetermined"]
STATUSES: tuple[str, ...] = get_args(Status)
OUTCOMES: tuple[str, ...] = get_args(Outcome)

_NEXT: dict[str, frozenset[str]] = {
    "new": frozenset({"investigating", "closed"}),
    "investigating": frozenset({"closed"}),
    "closed": frozenset({"investigating"}),
}
"""Allowed status changes (staying in a status is always allowed)."""

_REVIEW_COLUMNS = ("status", "outcome", "assignee", "note", "updated_by", "updated_at")
_LIST_COLUMNS = (
    "alert_id",
    "group_id",
    "date",
    "syndrome",
    "street_codes",
    "age_group",
    "detector",
    "observed",
    "expected",
    "p_value",
    "recurrence_interval_days",
    "severity",
    "announcement",
    "continues",
    *_REVIEW_COLUMNS,
)


def group_ids(alerts: pd.DataFrame) -> pd.Series:
    """Return the group id (root alert id) of each alert, indexed like ``alerts``.

    The root is found by following ``continues`` while it names a known alert; a
    ``continues`` pointing to an alert no longer stored makes the alert its own root.
    Cycles (which a detector should never write) stop at the first repeated id.
    """
    parent: dict[str, str] = {}
    known = set(alerts["alert_id"])
    for alert_id, earlier in zip(alerts["alert_id"], alerts["continues"], strict=True):
        if isinstance(earlier, str) and earlier in known and earlier != alert_id:
            parent[alert_id] = earlier

    def root(alert_id: str) -> str:
        seen = {alert_id}
        while alert_id in parent and parent[alert_id] not in seen:
            alert_id = parent[alert_id]
            seen.add(alert_id)
        return alert_id

    return pd.Series([root(a) for a in alerts["alert_id"]], index=alerts.index, dtype=object)


def _read_alerts(settings: Settings) -> pd.DataFrame:
    alerts = Warehouse(settings.warehouse_dir).read_table("alerts")
    alerts["group_id"] = group_ids(alerts)
    return alerts


def _current_reviews(alerts: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    """Current review per group id: the latest row over the group's alerts."""
    group_of = dict(zip(alerts["alert_id"], alerts["group_id"], strict=True))
    rows = reviews[reviews["alert_id"].isin(group_of.keys())].copy()
    rows["group_id"] = rows["alert_id"].map(group_of)
    # A stable sort keeps insertion order among equal times: the last added wins.
    rows = rows.sort_values("updated_at", kind="stable")
    return rows.groupby("group_id", sort=False).tail(1).set_index("group_id")


def _with_reviews(alerts: pd.DataFrame, reviews: pd.DataFrame) -> pd.DataFrame:
    current = _current_reviews(alerts, reviews)
    review = current[list(_REVIEW_COLUMNS)].rename(columns={"status": "status_review"})
    out = alerts.join(review, on="group_id")
    # Unreviewed alerts keep the status the detector wrote (normally "new").
    out["status"] = out["status_review"].where(out["status_review"].notna(), out["status"])
    return out.drop(columns="status_review")


def read_reviewed_alerts(settings: Settings) -> pd.DataFrame:
    """Return every stored alert with its group id and its group's current review.

    Returns
    -------
    pandas.DataFrame
        The columns of ``alerts`` plus ``group_id``, ``outcome``, ``assignee``, ``note``,
        ``updated_by`` and ``updated_at``; ``status`` is the group's current review status
        (the detector's ``new`` while unreviewed). No rows when nothing is stored.
    """
    return _with_reviews(_read_alerts(settings), read_reviews(settings.warehouse_dir))


def closed_on(alerts: pd.DataFrame, reviews: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Return the alert groups a review closed on ``day``.

    A group is closed on ``day`` when its latest review row up to the end of the day says
    closed and its latest row before the day did not (it had none, or it was new or
    investigating). Correcting the outcome of a group closed earlier, or closing and
    re-opening it within the day, does not count.

    Parameters
    ----------
    alerts : pandas.DataFrame
        Stored alerts (``alert_id``, ``continues``), to group reviews of continuing alerts;
        a review of an alert no longer stored counts as its own group.
    reviews : pandas.DataFrame
        Rows of ``alert_reviews`` (:func:`warehouse.reviews.read_reviews`).
    day : datetime.date
        Local day of ``updated_at``.

    Returns
    -------
    pandas.DataFrame
        ``group_id`` and ``outcome`` (at the end of the day), one row per group, by id.
    """
    group_of = dict(zip(alerts["alert_id"], group_ids(alerts), strict=True))
    rows = reviews.assign(
        group_id=[group_of.get(a, a) for a in reviews["alert_id"]],
        _at=pd.to_datetime(reviews["updated_at"]),
    ).sort_values("_at", kind="stable")
    start = pd.Timestamp(day)
    end = start + pd.Timedelta(days=1)

    def status_at(before: pd.Timestamp) -> pd.DataFrame:
        latest = rows[rows["_at"] < before].groupby("group_id", sort=False).tail(1)
        return latest.set_index("group_id")[["status", "outcome"]]

    after, prior = status_at(end), status_at(start)
    was_closed = prior["status"].reindex(after.index).eq("closed")
    closed = after[after["status"].eq("closed") & ~was_closed]
    return closed[["outcome"]].sort_index().rename_axis("group_id").reset_index()


def list_alerts(
    settings: Settings,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    status: str | None = None,
    syndrome: str | None = None,
) -> pd.DataFrame:
    """Return alerts joined with the current review of their group, grouped.

    Parameters
    ----------
    settings : Settings
        Where the warehouse is.
    since, until : datetime.date, optional
        Keep alerts whose analysis day is within these bounds (inclusive).
    status : {"new", "investigating", "closed"}, optional
        Keep alerts whose group's current status is this.
    syndrome : str, optional
        Keep alerts of this syndrome.

    Returns
    -------
    pandas.DataFrame
        Columns ``alert_id, group_id, date, syndrome, street_codes, age_group, detector,
        observed, expected, p_value, recurrence_interval_days, severity, announcement,
        continues, status, outcome, assignee, note, updated_by, updated_at``; rows of one
        group together (groups by their first day, latest first), each group's alerts
        in date order so continuing alerts follow their root.

    Raises
    ------
    UsageError
        For an unknown status or ``since`` after ``until``.
    """
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if since is not None and until is not None and since > until:
        raise UsageError(f"--since {since} is after --until {until}")
    alerts = read_reviewed_alerts(settings)
    keep = pd.Series(True, index=alerts.index)
    if since is not None:
        keep &= alerts["date"] >= since
    if until is not None:
        keep &= alerts["date"] <= until
    if status is not None:
        keep &= alerts["status"] == status
    if syndrome is not None:
        keep &= alerts["syndrome"] == syndrome
    out = alerts.loc[keep, list(_LIST_COLUMNS)].copy()
    first_day = alerts.groupby("group_id")["date"].min()
    out["_start"] = out["group_id"].map(first_day)
    out = out.sort_values(
        ["_start", "group_id", "date", "alert_id"], ascending=[False, True, True, True]
    )
    return out.drop(columns="_start").reset_index(drop=True)


def _find(alerts: pd.DataFrame, alert_id: str) -> pd.Series:
    hit = alerts[alerts["alert_id"] == alert_id]
    if hit.empty:
        raise UsageError(f"no alert with id {alert_id!r} (see `sentinel alerts list`)")
    return hit.iloc[0]


def _plain(value: Any) -> Any:
    """A JSON-friendly value: lists for arrays, None for missing values."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        return value.tolist()
    if isinstance(value, float) and pd.isna(value):
        return None
    if value is pd.NaT:
        return None
    return value


def _record(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in row.items()}


def show_alert(settings: Settings, alert_id: str) -> dict[str, Any]:
    """Return one alert, the alerts of its group and the group's review history.

    Returns
    -------
    dict
        ``alert`` (the alert's columns), ``group_id``, ``group`` (the group's alerts,
        date order, as dicts), ``review`` (current review, or ``None``) and ``history``
        (every review row of the group, oldest first).

    Raises
    ------
    UsageError
        When no alert has this id.
    """
    alerts = _read_alerts(settings)
    alert = _find(alerts, alert_id)
    group = alerts[alerts["group_id"] == alert["group_id"]].sort_values(["date", "alert_id"])
    reviews = read_reviews(settings.warehouse_dir)
    history = reviews[reviews["alert_id"].isin(group["alert_id"])].sort_values(
        "updated_at", kind="stable"
    )
    records = [_record(r) for r in history.to_dict("records")]
    return {
        "alert": _record(alert.drop(labels="group_id").to_dict()),
        "group_id": alert["group_id"],
        "group": [_record(r) for r in group.drop(columns="group_id").to_dict("records")],
        "review": records[-1] if records else None,
        "history": records,
    }


def _check_change(current: Mapping[str, Any], status: str | None, outcome: str | None) -> str:
    """Validate a change against the current review; return the new status."""
    before = str(current.get("status") or "new")
    after = status or before
    if after not in STATUSES:
        raise UsageError(f"unknown status {after!r}; use one of {', '.join(STATUSES)}")
    if outcome is not None and outcome not in OUTCOMES:
        raise UsageError(f"unknown outcome {outcome!r}; use one of {', '.join(OUTCOMES)}")
    if after != before and after not in _NEXT[before]:
        allowed = ", ".join(sorted(_NEXT[before]))
        raise UsageError(f"cannot move an alert from {before} to {after} (allowed: {allowed})")
    if status == "new":
        raise UsageError("an alert cannot be set back to new; re-open it as investigating")
    if outcome is not None and after != "closed":
        raise UsageError(f"an outcome is given when closing, not on a {after} alert")
    if after == "closed" and before != "closed" and outcome is None:
        raise UsageError(f"closing needs an outcome: --outcome {'|'.join(OUTCOMES)}")
    return after


def update_alert(
    settings: Settings,
    alert_id: str,
    *,
    status: str | None = None,
    outcome: str | None = None,
    assignee: str | None = None,
    note: str | None = None,
    user: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record a change of an alert's review (status, outcome, assignee, note).

    The change applies to the alert's group. Unchanged fields carry over from the current
    review (re-opening a closed alert clears the outcome); the note is the note of this
    change only.

    Parameters
    ----------
    settings : Settings
        Where the warehouse is.
    alert_id : str
        Any alert of the group.
    status : {"investigating", "closed"}, optional
        New status; omit to keep it.
    outcome : {"true_outbreak", "false_alarm", "undetermined"}, optional
        Required when closing; may correct the outcome of a closed alert.
    assignee, note : str, optional
        New assignee; note of this change.
    user : str, optional
        Who makes the change.
    at : datetime.datetime, optional
        When the change was made (local time), for a review entered after the fact;
        default now. A time before the alert's latest review row moves just after it.

    Returns
    -------
    dict
        The review row stored.

    Raises
    ------
    UsageError
        Unknown alert id, status or outcome; a transition not allowed; closing without an
        outcome; an outcome on an alert that is not closed; nothing to change.
    """
    if status is None and outcome is None and assignee is None and note is None:
        raise UsageError("nothing to update: give --status, --outcome, --assignee or --note")
    alerts = _read_alerts(settings)
    alert = _find(alerts, alert_id)
    reviews = read_reviews(settings.warehouse_dir)
    current_all = _current_reviews(alerts, reviews)
    group_id = alert["group_id"]
    current: dict[str, Any] = (
        current_all.loc[group_id].to_dict() if group_id in current_all.index else {}
    )
    after = _check_change(current, status, outcome)
    kept_outcome = current.get("outcome") if after == "closed" else None
    row = {
        "alert_id": alert_id,
        "status": after,
        "outcome": outcome or _plain(kept_outcome),
        "assignee": assignee if assignee is not None else _plain(current.get("assignee")),
        # free text: ID numbers, phone numbers and e-mail addresses typed in are removed
        "note": scrub_text(note) if note else note,
        "updated_by": user,
        "updated_at": at,
    }
    return append_review(settings.warehouse_dir, row)
