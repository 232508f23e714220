"""Operational notices for the people who run the pipeline, and the bulletin's quality gate.

Four kinds of :class:`OpsEvent`: a task failed (built from an Airflow callback context by
:func:`event_from_context`, without importing Airflow), a source is late or a facility
silent (:func:`check_lateness`), and a day's data failed the quality gate
(:func:`quality_gate`; the bulletin of that day is then withheld). :func:`notify_operators`
sends an event by e-mail to ``[notify] operators`` and to the chat webhook; it never
raises, because it runs inside failure callbacks.

Messages carry pipeline facts only (DAG, task, source, facility, counts): exception texts
are cut to one line, database passwords and URL tokens are masked, and ID numbers, phone
numbers and e-mail addresses are removed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from reports.notify import NotifySettings, markdown_payload, post_webhook, send_bulletin_email
from reports.volume import NORMAL_WEEKS, usual_daily_visits
from sentinel.errors import SentinelError, UsageError
from sentinel.logs import log_event
from transform.scrub import scrub_text
from warehouse.store import Warehouse, sanitise_location

__all__ = [
    "SILENT_MIN_USUAL",
    "EventKind",
    "GateResult",
    "OpsEvent",
    "check_lateness",
    "compose_ops_message",
    "event_from_context",
    "notify_operators",
    "quality_gate",
    "redact",
]

log = logging.getLogger("sentinel.operations")

EventKind = Literal["task_failed", "source_late", "facility_silent", "quality_failed"]

SILENT_MIN_USUAL = 10.0
"""Usual visits (summed over the days checked) below which silence is not reported."""
MIN_VOLUME_BASE = 20.0
"""Usual visits of a day below which the gate does not judge the day's total volume."""
MAX_MESSAGE = 300
"""Characters of an exception text kept in a message."""

_KINDS: dict[str, tuple[str, str]] = {
    "task_failed": ("任务失败", "task failed"),
    "source_late": ("数据源延迟", "source late"),
    "facility_silent": ("机构未上报", "facility silent"),
    "quality_failed": ("数据质量未通过，日报暂缓发布", "data quality failed, bulletin withheld"),
}
_FIELDS = (
    ("dag_id", "DAG", "DAG"),
    ("task_id", "任务", "Task"),
    ("run_id", "运行", "Run"),
    ("logical_date", "逻辑日期", "Logical date"),
    ("try_number", "尝试次数", "Try"),
    ("log_url", "日志", "Log"),
)


# scheme://user:password@ — greedy up to the token's last "@", so a password holding
# "@" or "/" is masked whole.
@dataclass(frozen=True, kw_only=True)
class OpsEvent:
    """Something the operators must hear about.

    Attributes
    ----------
    kind : {"task_failed", "source_late", "facility_silent", "quality_failed"}
        What happened.
    dag_id, task_id, run_id : str or None
        Where it happened (Airflow); ``None`` for checks run outside a task.
    logical_date : str or None
        ISO date-time of the run's logical date; ``None`` for manual runs without one.
    try_number : int or None
        Attempt of the task that failed.
    log_url : str or None
        Link to the task's log in the Airflow UI.
    message : str
        One line saying what is wrong; the same problem gives the same message all day
        (callers deduplicate on it), so changing numbers go to ``details``.
    details : tuple of str
        Further lines: times, counts, reasons.
    """

    kind: EventKind
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    logical_date: str | None = None
    try_number: int | None = None
    log_url: str | None = None
    message: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateResult:
    """Outcome of :func:`quality_gate`: publish only when ``ok``; ``reasons`` say why not."""

    ok: bool
    reasons: tuple[str, ...]


def redact(text: str, *, limit: int = MAX_MESSAGE) -> str:
    """Cut ``text`` to its first non-empty line and remove secrets and identifiers.

    Masks the password of URLs (``scheme://user:***@host``) and ``password=`` / ``token=`` /
    ``key=`` parameters, removes ID numbers, phone numbers and e-mail addresses
    (:func:`transform.scrub.scrub_text`), collapses white space and keeps at most
    ``limit`` characters.
    """
    first = next((line for line in text.splitlines() if line.strip()), "")
    one = " ".join(scrub_text(sanitise_location(first)).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _describe(error: object) -> str:
    if error is None:
        return "the task failed without an exception (killed, timed out or marked failed)"
    if isinstance(error, BaseException):
        text = redact(str(error))
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return redact(str(error)) or "the task failed"


def _text_or_none(value: object) -> str | None:
    return None if value is None else " ".join(str(value).split()) or None


def event_from_context(context: Mapping[str, Any]) -> OpsEvent:
    """Build a ``task_failed`` event from an Airflow task callback context.

    Reads, without importing Airflow: ``context["ti"]`` (``dag_id``, ``task_id``,
    ``run_id``, ``try_number``, ``map_index``, ``log_url`` of Airflow 3's
    ``RuntimeTaskInstance``), ``context["logical_date"]`` (absent or ``None`` for manual
    runs without one) and ``context["exception"]`` (the exception, a string, or ``None``).

    Parameters
    ----------
    context : mapping
        The context Airflow passes to ``on_failure_callback``.

    Returns
    -------
    OpsEvent
        The exception is described in one redacted line (:func:`redact`); a missing field
        becomes ``None`` rather than an error.
    """
    ti = context.get("ti") or context.get("task_instance")
    logical = context.get("logical_date")
    if isinstance(logical, dt.datetime | dt.date):
        logical_date: str | None = logical.isoformat()
    else:
        logical_date = _text_or_none(logical)
    try_number = getattr(ti, "try_number", None)
    details = []
    map_index = getattr(ti, "map_index", None)
    if isinstance(map_index, int) and map_index >= 0:
        details.append(f"map index: {map_index}")
    return OpsEvent(
        kind="task_failed",
        dag_id=_text_or_none(getattr(ti, "dag_id", None)),
        task_id=_text_or_none(getattr(ti, "task_id", None)),
        run_id=_text_or_none(getattr(ti, "run_id", None)),
        logical_date=logical_date,
        try_number=try_number if isinstance(try_number, int) else None,
        log_url=_text_or_none(getattr(ti, "log_url", None)),
        message=_describe(context.get("exception")),
        details=tuple(details),
    )


def compose_ops_message(
    event: OpsEvent, *, webhook_format: Literal["markdown", "json"] = "markdown"
) -> tuple[str, str, dict[str, Any]]:
    """Write the notice of ``event``: subject, plain-text body and webhook payload.

    Parameters
    ----------
    event : OpsEvent
        What to tell.
    webhook_format : {"markdown", "json"}
        ``markdown``: the body as a WeCom/DingTalk markdown message
        (:func:`reports.notify.markdown_payload`); ``json``: the event's fields.

    Returns
    -------
    (str, str, dict)
        Subject (one line), body (Chinese and English labels; also valid chat markdown)
        and the JSON payload for the webhook.
    """
    zh, en = _KINDS[event.kind]
    where = ".".join(x for x in (event.dag_id, event.task_id) if x)
    about = where or event.message
    when = f" ({event.logical_date})" if event.logical_date else ""
    subject = redact(f"[Sentinel] {zh} / {en}: {about}{when}", limit=200)
    lines = [f"**Sentinel 运行通知 / operations notice: {zh} / {en}**", ""]
    for attr, label_zh, label_en in _FIELDS:
        value = getattr(event, attr)
        if value is not None:
            lines.append(f"{label_zh} / {label_en}: {value}")
    if event.task_id is not None and event.logical_date is None:
        lines.append("逻辑日期 / Logical date: 无（手动运行） / none (manual run)")
    lines.append(f"说明 / What: {event.message}")
    if event.details:
        lines += ["", "详情 / Details:", *(f"- {d}" for d in event.details)]
    text = "\n".join(lines)
    if webhook_format == "json":
        payload: dict[str, Any] = {
            "subject": subject,
            "kind": event.kind,
            **{attr: getattr(event, attr) for attr, _, _ in _FIELDS},
            "message": event.message,
            "details": list(event.details),
        }
    else:
        payload = markdown_payload(text)
    return subject, text, payload


def notify_operators(
    notify: NotifySettings,
    event: OpsEvent,
    *,
    to: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Send ``event`` to the operators by e-mail and to the chat webhook, as configured.

    Parameters
    ----------
    notify : NotifySettings
        The ``[notify]`` settings: e-mail goes out when ``smtp_host`` is set, to
        ``operators`` (or, when that is empty, ``recipients``); the webhook when
        ``webhook_url`` is set.
    event : OpsEvent
        What to tell (:func:`compose_ops_message` writes it).
    to : sequence of str, optional
        Recipients instead of the configured ones.
    environ : mapping, optional
        Environment with the SMTP login (default ``os.environ``).

    Returns
    -------
    list of str
        Problems, one line each: nothing configured, no recipient, a server that refused
        or could not be reached. Empty when every configured channel delivered.

    Notes
    -----
    Delivery and configuration problems are logged and returned, never raised: this runs
    in Airflow failure callbacks, where an exception would only hide the task's own
    failure. Programming errors (a wrong argument type) still raise.
    """
    subject, text, payload = compose_ops_message(event, webhook_format=notify.webhook_format)
    problems: list[str] = []
    sent: list[str] = []
    if not notify.smtp_host and not notify.webhook_url:
        problems.append("no channel for operator notices: set smtp_host or webhook_url in [notify]")
    if notify.smtp_host:
        recipients = tuple(to) if to is not None else (notify.operators or notify.recipients)
        if not recipients:
            problems.append("no operators to e-mail: set operators (or recipients) in [notify]")
        else:
            try:
                send_bulletin_email(
                    notify, subject=subject, text_body=text, to=recipients, environ=environ
                )
                sent.append("email")
            except SentinelError as exc:
                problems.append(f"e-mail to operators not sent: {exc}")
    if notify.webhook_url:
        try:
            post_webhook(notify.webhook_url, payload, timeout=notify.timeout)
            sent.append("webhook")
        except SentinelError as exc:
            problems.append(f"webhook notice not posted: {exc}")
    for problem in problems:
        log.warning("ops_notice_failed", extra={"fields": {"kind": event.kind, "problem": problem}})
    if sent:
        log_event(log, "ops_notice_sent", kind=event.kind, channels=",".join(sent))
    return problems


def _naive(now: dt.datetime) -> pd.Timestamp:
    if now.tzinfo is not None:
        raise UsageError("now must be a naive local time, like the times in `batches`")
    return pd.Timestamp(now)


def _late_sources(batches: pd.DataFrame, now: pd.Timestamp, hours: float) -> list[OpsEvent]:
    events = []
    batches = batches.assign(location=batches["location"].fillna(""))
    for (source, location), group in batches.groupby(["source", "location"], sort=True):
        good = group[group["loaded"] > 0]
        last = good["finished"].fillna(good["started"]).max() if len(good) else None
        since = last if last is not None else group["started"].min()
        if now - since <= pd.Timedelta(hours=hours):
            continue
        after = group[group["started"] > last] if last is not None else group
        statuses = after["status"].value_counts().sort_index()
        where = f" at {redact(str(location))}" if location else ""
        details = [
            f"last visits loaded: {last:%Y-%m-%d %H:%M}"
            if last is not None
            else f"no visits loaded since its first batch at {since:%Y-%m-%d %H:%M}",
            f"hours without visits: {(now - since) / pd.Timedelta(hours=1):.1f}",
            f"batches since: {len(after)}"
            + (f" ({', '.join(f'{s} {n}' for s, n in statuses.items())})" if len(after) else ""),
        ]
        events.append(
            OpsEvent(
                kind="source_late",
                message=f"source {source}{where}: no visits loaded for more than {hours:g} h",
                details=tuple(details),
            )
        )
    return events


def _read_visits(
    store: Warehouse, first: dt.date, last: dt.date, columns: list[str]
) -> pd.DataFrame:
    visits = store.read_dates("visits", first, last).select(columns).to_pandas()
    visits["visit_date"] = pd.to_datetime(visits["visit_date"]).dt.date
    return visits


def _facility_ids(store: Warehouse, visits: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    facilities = store.read_table("facilities")
    names = dict(zip(facilities["facility_id"], facilities["name_zh"], strict=True))
    return sorted(set(names) | set(visits["facility_id"].dropna())), names


def _silent_facilities(store: Warehouse, last: dt.date, days: int) -> list[OpsEvent]:
    checked = [last - dt.timedelta(days=k) for k in range(days)]
    first = checked[-1]
    visits = _read_visits(
        store, first - dt.timedelta(weeks=NORMAL_WEEKS), last, ["facility_id", "visit_date"]
    )
    ids, names = _facility_ids(store, visits)
    usual = sum(
        (usual_daily_visits(visits, ids, d) for d in checked), start=pd.Series(0.0, index=ids)
    )
    recent = visits[visits["visit_date"].isin(checked)]["facility_id"].value_counts()
    span = str(last) if days == 1 else f"{first} to {last}"
    events = []
    for fid in ids:
        if recent.get(fid, 0) == 0 and usual[fid] >= SILENT_MIN_USUAL:
            name = f" {names[fid]}" if fid in names else ""
            events.append(
                OpsEvent(
                    kind="facility_silent",
                    message=f"facility {fid}{name}: no visits on {span}",
                    details=(
                        f"usually {usual[fid]:g} visit(s) on those day(s) (median of the same "
                        f"weekday over the {NORMAL_WEEKS} weeks before)",
                    ),
                )
            )
    return events


def check_lateness(
    store: Warehouse, now: dt.datetime, *, source_hours: float, facility_days: int = 1
) -> list[OpsEvent]:
    """Find late sources and silent facilities.

    Parameters
    ----------
    store : Warehouse
        The warehouse (``batches``, ``visits``, ``facilities`` are read).
    now : datetime.datetime
        Naive local time (the zone of the ``batches`` times).
    source_hours : float
        A source is late when it has loaded no visits for more than this many hours.
    facility_days : int
        A facility is silent when it has no visits on each of this many complete days
        before ``now``'s date.

    Returns
    -------
    list of OpsEvent
        ``source_late`` events (sorted by source and location), then ``facility_silent``
        events (sorted by facility).

    Raises
    ------
    UsageError
        ``source_hours`` not positive, ``facility_days`` below 1, or ``now`` with a time zone.

    Notes
    -----
    A source is a (``source``, ``location``) pair of ``batches``. Its last delivery is
    the end (or start, while running) of its latest batch with ``loaded > 0``, whatever
    its status; a source that never loaded anything counts from its first batch. A
    source that is no longer pulled at all stays late: retire it from ``batches``' view
    by configuration, not here.

    A facility's usual volume over the days checked is the sum, over those days, of
    :func:`reports.volume.usual_daily_visits` (median of the same weekday over the 8
    weeks before: the bulletin's own normal). Silence is reported only when that sum is
    at least :data:`SILENT_MIN_USUAL` (10 visits): for Poisson counts with mean 10 a day
    without visits has probability e⁻¹⁰ ≈ 5·10⁻⁵, so a report is almost never chance,
    while weekend closures (usual 0) and very small clinics are never reported.
    """
    if not source_hours > 0:
        raise UsageError(f"source_hours must be positive, not {source_hours!r}")
    if facility_days < 1:
        raise UsageError(f"facility_days must be at least 1, not {facility_days!r}")
    stamp = _naive(now)
    events: list[OpsEvent] = []
    batches = store.read_table("batches")
    if len(batches):
        events += _late_sources(batches, stamp, source_hours)
    events += _silent_facilities(store, now.date() - dt.timedelta(days=1), facility_days)
    return events


def _day_batches(store: Warehouse, batch_ids: set[str], day: dt.date) -> pd.DataFrame:
    """The batches the bulletin lists for ``day``: its visits' batches, and those started
    on the day or the next."""
    batches = store.read_table("batches")
    started = pd.to_datetime(batches["started"]).dt.date
    keep = batches["batch_id"].isin(batch_ids) | started.between(day, day + dt.timedelta(days=1))
    return batches[keep]


def quality_gate(
    store: Warehouse,
    day: dt.date,
    *,
    max_quarantine_share: float = 0.05,
    min_reporting_share: float = 0.8,
    min_volume_share: float = 0.5,
) -> GateResult:
    """Decide whether the bulletin of ``day`` may be published.

    Parameters
    ----------
    store : Warehouse
        The warehouse (``visits``, ``facilities``, ``batches`` are read).
    day : datetime.date
        The bulletin's day.
    max_quarantine_share : float
        Largest share of the day's extracted records that may be quarantined (5 %: a
        normal day quarantines well under 1 %; above 5 % a source or mapping is broken
        and counts are biased low).
    min_reporting_share : float
        Smallest share of the usually-reporting facilities that must have visits on the
        day (80 %: one or two silent facilities out of ten still publish, with the
        bulletin's data-quality table naming them; more means the picture is partial).
    min_volume_share : float
        Smallest ratio of the day's visits to the sum of the facilities' usual volume
        (50 %: a half-empty day makes every syndrome look low and hides increases).
        Judged only when the usual volume is at least 20 visits.

    Returns
    -------
    GateResult
        ``ok`` is False when any check fails; ``reasons`` has one line per failure.

    Raises
    ------
    UsageError
        A share outside 0…1.

    Notes
    -----
    The checks, all on data the bulletin itself shows:

    1. visits were loaded for ``day``;
    2. no batch behind the day (the batches of its visits and those started on the day
       or the next) was rejected whole by validation;
    3. quarantined / extracted over those batches is at most ``max_quarantine_share``;
    4. of the facilities whose usual volume on ``day``'s weekday is above 0 (they
       reported on at least half of the same weekdays of the 8 weeks before, see
       :func:`reports.volume.usual_daily_visits`), at least ``min_reporting_share`` have
       visits on ``day``;
    5. the day's visits are at least ``min_volume_share`` of the usual total.

    Checks 4 and 5 are skipped when the day has no visits (check 1 already fails) or
    there is no history yet.
    """
    for name, value in (
        ("max_quarantine_share", max_quarantine_share),
        ("min_reporting_share", min_reporting_share),
        ("min_volume_share", min_volume_share),
    ):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{name} must be between 0 and 1, not {value!r}")
    visits = _read_visits(
        store,
        day - dt.timedelta(weeks=NORMAL_WEEKS),
        day,
        ["facility_id", "visit_date", "batch_id"],
    )
    today = visits[visits["visit_date"] == day]
    reasons: list[str] = []
    if today.empty:
        reasons.append(f"no visits were loaded for {day}")
    batches = _day_batches(store, set(today["batch_id"]), day)
    rejected = batches[batches["status"] == "rejected"]
    if len(rejected):
        reasons.append(
            f"{len(rejected)} batch(es) behind {day} were rejected whole by validation "
            f"({int(rejected['extracted'].sum())} records not loaded)"
        )
    kept = batches[batches["status"] != "rejected"]
    extracted, quarantined = int(kept["extracted"].sum()), int(kept["quarantined"].sum())
    if extracted and quarantined / extracted > max_quarantine_share:
        reasons.append(
            f"{quarantined} of {extracted} records extracted for {day} were quarantined "
            f"({quarantined / extracted:.1%}; at most {max_quarantine_share:.0%} allowed)"
        )
    ids, _ = _facility_ids(store, visits)
    usual = usual_daily_visits(visits, ids, day)
    regular = [f for f in ids if usual[f] > 0]
    if not today.empty and regular:
        reporting = set(today["facility_id"])
        silent = [f for f in regular if f not in reporting]
        share = 1 - len(silent) / len(regular)
        if share < min_reporting_share:
            shown = ", ".join(silent[:5]) + (", …" if len(silent) > 5 else "")
            reasons.append(
                f"only {len(regular) - len(silent)} of {len(regular)} usually-reporting "
                f"facilities reported visits ({share:.0%}; at least {min_reporting_share:.0%} "
                f"needed); silent: {shown}"
            )
    base = float(usual.sum())
    if not today.empty and base >= MIN_VOLUME_BASE and len(today) / base < min_volume_share:
        reasons.append(
            f"{len(today)} visits for {day} against a usual {base:g} "
            f"({len(today) / base:.0%}; at least {min_volume_share:.0%} needed)"
        )
    return GateResult(ok=not reasons, reasons=tuple(reasons))
