"""Notifications: the bulletin by e-mail (SMTP) and a short summary to a chat webhook.

Settings come from the ``[notify]`` section of ``sentinel.toml`` (parsed by
:func:`parse_notify_settings`, plugged into :class:`sentinel.settings.Settings`)::

    [notify]
    recipients = ["cdc-duty@example.org", "epi@example.org"]
    operators = ["data-ops@example.org"]   # pipeline failures, late sources; default recipients
    from_address = "sentinel@example.org"
    smtp_host = "smtp.example.org"
    smtp_port = 587
    starttls = true
    webhook_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"  # or env
    webhook_format = "markdown"    # "markdown" (WeCom/DingTalk) or "json"

Secrets never come from the file: the SMTP user and password are read from
``SENTINEL_SMTP_USER`` and ``SENTINEL_SMTP_PASSWORD``; ``SENTINEL_WEBHOOK_URL`` overrides
``webhook_url`` (chat webhook URLs carry their token, so the environment is the better
place for them). Messages say nothing about patients: the body holds the top alerts
(syndrome, streets, counts), never a line list.
"""

from __future__ import annotations

import html
import json
import math
import mimetypes
import os
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal, get_args

from sentinel.errors import SentinelError, UsageError

__all__ = [
    "NotifyError",
    "NotifySettings",
    "markdown_payload",
    "parse_notify_settings",
    "post_webhook",
    "send_bulletin_email",
]

WebhookFormat = Literal["markdown", "json"]
PASSWORD_ENV = "SENTINEL_SMTP_PASSWORD"
USER_ENV = "SENTINEL_SMTP_USER"
WEBHOOK_ENV = "SENTINEL_WEBHOOK_URL"


class NotifyError(SentinelError):
    """A notification could not be delivered (server down, refused, bad answer)."""


@dataclass(frozen=True)
class NotifySettings:
    """The ``[notify]`` section: who gets the bulletin and how.

    Attributes
    ----------
    recipients : tuple of str
        E-mail addresses the bulletin is sent to.
    operators : tuple of str
        E-mail addresses of the people who run the pipeline: task failures, late sources,
        silent facilities, a withheld bulletin (:mod:`sentinel.operations`). Empty: the
        ``recipients`` get them.
    from_address : str or None
        Sender address; required to send e-mail.
    smtp_host : str or None
        SMTP server; ``None`` disables e-mail.
    smtp_port : int
        SMTP port (25, or 587 with STARTTLS).
    starttls : bool
        Upgrade the connection with STARTTLS before logging in.
    timeout : float
        Seconds to wait for the SMTP server or the webhook.
    webhook_url : str or None
        Chat webhook; ``None`` disables it.
    webhook_format : {"markdown", "json"}
        ``markdown``: ``{"msgtype": "markdown", "markdown": {"content": …}}`` (WeCom,
        DingTalk); ``json``: the summary as plain JSON fields.
    """

    recipients: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    from_address: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    starttls: bool = False
    timeout: float = 30.0
    webhook_url: str | None = None
    webhook_format: WebhookFormat = "markdown"


_KEYS = {
    "recipients",
    "operators",
    "from_address",
    "smtp_host",
    "smtp_port",
    "starttls",
    "timeout",
    "webhook_url",
    "webhook_format",
}
_SECRETS = {"password", "smtp_password", "username", "smtp_user", "user"}


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or "@" not in value or any(c.isspace() for c in value):
        raise UsageError(f"{what}: {value!r} is not an e-mail address")
    return value


def parse_notify_settings(
    data: Mapping[str, Any], where: str, environ: Mapping[str, str] | None = None
) -> NotifySettings:
    """Parse the ``[notify]`` table of a settings file.

    Parameters
    ----------
    data : mapping
        The table as read by :mod:`tomllib`.
    where : str
        Name of the file, for messages.
    environ : mapping, optional
        Environment to read ``SENTINEL_WEBHOOK_URL`` from instead of ``os.environ``.

    Returns
    -------
    NotifySettings

    Raises
    ------
    UsageError
        Unknown keys, a secret in the file, wrong types, bad addresses or port.
    """
    env = os.environ if environ is None else environ
    secrets = sorted(set(data) & _SECRETS)
    if secrets:
        raise UsageError(
            f"[notify] in {where}: {', '.join(secrets)} must not be in the file; "
            f"set {USER_ENV} and {PASSWORD_ENV} in the environment"
        )
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise UsageError(f"[notify] in {where}: unknown key(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key in ("recipients", "operators"):
        addresses = data.get(key, [])
        if isinstance(addresses, str) or not isinstance(addresses, list):
            raise UsageError(f"[notify] in {where}: {key} must be a list of addresses")
        what = f"[notify] {key} in {where}"
        values[key] = tuple(_address(a, what) for a in addresses)
    if "from_address" in data:
        values["from_address"] = _address(data["from_address"], f"[notify] in {where}")
    for key in ("smtp_host", "webhook_url"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise UsageError(f"[notify] {key} in {where} must be a non-empty string")
            values[key] = data[key]
    port = data.get("smtp_port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UsageError(f"[notify] smtp_port in {where} must be a port number, not {port!r}")
    values["smtp_port"] = port
    if not isinstance(data.get("starttls", False), bool):
        raise UsageError(f"[notify] starttls in {where} must be true or false")
    values["starttls"] = data.get("starttls", False)
    timeout = data.get("timeout", 30.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise UsageError(f"[notify] timeout in {where} must be a positive number of seconds")
    values["timeout"] = float(timeout)
    fmt = data.get("webhook_format", "markdown")
    if fmt not in get_args(WebhookFormat):
        allowed = ", ".join(get_args(WebhookFormat))
        raise UsageError(f"[notify] webhook_format in {where}: {fmt!r} is not one of {allowed}")
    values["webhook_format"] = fmt
    if env.get(WEBHOOK_ENV):
        values["webhook_url"] = env[WEBHOOK_ENV]
    return NotifySettings(**values)


def _config(settings_or_config: object) -> NotifySettings:
    """Accept a NotifySettings or anything with a ``notify`` attribute (Settings)."""
    if isinstance(settings_or_config, NotifySettings):
        return settings_or_config
    notify = getattr(settings_or_config, "notify", None)
    if isinstance(notify, NotifySettings):
        return notify
    raise TypeError("expected NotifySettings or Settings with a `notify` section")


def _attach(message: EmailMessage, path: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read attachment {path}: {exc.strerror or exc}") from exc
    kind, _ = mimetypes.guess_type(path.name)
    maintype, subtype = (kind or "application/octet-stream").split("/", 1)
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)


def send_bulletin_email(
    settings_or_config: object,
    *,
    subject: str,
    text_body: str,
    html_body: str | None = None,
    attachments: Sequence[Path] = (),
    to: Sequence[str] | None = None,
    smtp_host: str | None = None,
    smtp_port: int | None = None,
    starttls: bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Send the bulletin by e-mail, UTF-8 throughout, with the PDF attached.

    Parameters
    ----------
    settings_or_config : NotifySettings or Settings
        The ``[notify]`` settings (or the settings holding them).
    subject, text_body : str
        Subject and plain-text body (Chinese and English are fine).
    html_body : str, optional
        HTML alternative of the body.
    attachments : sequence of Path
        Files to attach (the bulletin PDF); the type is guessed from the name.
    to : sequence of str, optional
        Recipients; default the configured ``recipients``.
    smtp_host, smtp_port, starttls : optional
        Override the configured server.
    environ : mapping, optional
        Environment holding ``SENTINEL_SMTP_USER`` / ``SENTINEL_SMTP_PASSWORD``
        (default ``os.environ``); without a user, no login is attempted.

    Returns
    -------
    str
        The ``Message-ID`` of the message sent.

    Raises
    ------
    UsageError
        No server, sender or recipient configured; an attachment cannot be read.
    NotifyError
        The server cannot be reached, refuses the login, the sender or every recipient.
    """
    config = _config(settings_or_config)
    env = os.environ if environ is None else environ
    host = smtp_host or config.smtp_host
    port = smtp_port or config.smtp_port
    tls = config.starttls if starttls is None else starttls
    recipients = [_address(r, "recipient") for r in (config.recipients if to is None else to)]
    if not host:
        raise UsageError("no SMTP server: set smtp_host in [notify]")
    if not config.from_address:
        raise UsageError("no sender: set from_address in [notify]")
    if not recipients:
        raise UsageError("no recipients: set recipients in [notify]")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.from_address
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=config.from_address.rsplit("@", 1)[1])
    message.set_content(text_body, charset="utf-8")
    if html_body is not None:
        message.add_alternative(html_body, subtype="html", charset="utf-8")
    for path in attachments:
        _attach(message, Path(path))
    user, password = env.get(USER_ENV), env.get(PASSWORD_ENV)
    where = f"SMTP server {host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=config.timeout) as smtp:
            if tls:
                smtp.starttls(context=ssl.create_default_context())
            if user:
                smtp.login(user, password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyError(f"{where} refused the login of {USER_ENV}: {exc.smtp_code}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise NotifyError(f"{where} refused every recipient: {', '.join(exc.recipients)}") from exc
    except smtplib.SMTPException as exc:
        raise NotifyError(f"{where} failed: {exc}") from exc
    except OSError as exc:  # refused, unreachable, timed out, TLS failure
        raise NotifyError(f"cannot reach {where}: {exc.strerror or exc}") from exc
    if refused:
        # Partial delivery is still delivery, but nobody must believe all got it.
        raise NotifyError(f"{where} refused recipient(s): {', '.join(sorted(refused))}")
    return str(message["Message-ID"])


def markdown_payload(content: str) -> dict[str, Any]:
    """Return the WeCom/DingTalk markdown message ``{"msgtype": "markdown", …}``."""
    return {"msgtype": "markdown", "markdown": {"content": content}}


def _safe_url(url: str) -> str:
    """The URL without its query and user info (webhook tokens stay out of messages)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def post_webhook(url: str, payload: Mapping[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
    """POST ``payload`` as JSON to a webhook and check the answer.

    Parameters
    ----------
    url : str
        ``http`` or ``https`` URL of the webhook.
    payload : mapping
        JSON-serialisable body, e.g. :func:`markdown_payload`.
    timeout : float
        Seconds to wait.

    Returns
    -------
    dict
        The JSON answer, or ``{}`` when the server answered without JSON.

    Raises
    ------
    UsageError
        The URL is not http(s).
    NotifyError
        Connection failure, an HTTP error status, or a chat API answer with a non-zero
        ``errcode`` (WeCom, DingTalk report errors that way with status 200). Messages
        show the URL without its query, where the token is.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise UsageError(f"webhook URL must be http or https, not {scheme or 'none'!r}")
    shown = _safe_url(url)
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise NotifyError(f"webhook {shown} answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        raise NotifyError(f"cannot reach webhook {shown}: {reason}") from exc
    except OSError as exc:  # timeouts while reading
        raise NotifyError(f"webhook {shown} failed: {exc}") from exc
    try:
        answer = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
        message = answer.get("errmsg", "")
        raise NotifyError(f"webhook {shown} refused the message: {answer['errcode']} {message}")
    return answer if isinstance(answer, dict) else {}


def _escape(text: object) -> str:
    return html.escape(str(text), quote=True)


Lang = Literal["zh", "en", "zh+en"]

_LABELS: dict[str, tuple[str, str]] = {
    "title": ("症状监测预警日报", "Syndromic surveillance alert bulletin"),
    "count": (
        "预警 {n} 条（新发 {new}，持续 {ongoing}，扩大 {grown}）",
        "{n} alert(s) (new {new}, ongoing {ongoing}, grown {grown})",
    ),
    "none": ("今日无预警。", "No alerts today."),
    "top": ("主要预警", "Top alerts"),
    "syndrome": ("症候群", "Syndrome"),
    "streets": ("街道", "Street(s)"),
    "detector": ("方法", "Detector"),
    "observed": ("观察/期望", "Observed/expected"),
    "severity": ("级别", "Severity"),
    "p": ("P 值", "p-value"),
    "announcement": ("状态", "Status"),
    "attached": ("完整日报见附件 PDF。", "The full bulletin is attached (PDF)."),
}
_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
_ANNOUNCEMENTS = {
    "new": ("新发", "new"),
    "ongoing": ("持续", "ongoing"),
    "grown": ("扩大", "grown"),
}


def _label(key: str, lang: Lang, **fields: object) -> str:
    zh, en = (s.format(**fields) for s in _LABELS[key])
    return {"zh": zh, "en": en, "zh+en": f"{zh} / {en}"}[lang]


def _rank(alerts: Any) -> Any:
    """Alerts most severe first: severity, then p-value, recurrence interval, excess."""
    ranked = alerts.assign(
        _sev=alerts["severity"].map(_SEVERITY_RANK).fillna(3),
        _p=alerts["p_value"].astype("float64").fillna(1.0),
        _ri=-alerts.get("recurrence_interval_days", alerts["p_value"] * 0)
        .astype("float64")
        .fillna(0.0),
        _excess=-(alerts["observed"] - alerts["expected"].fillna(0.0)),
    )
    order = ["_sev", "_p", "_ri", "_excess", "alert_id"]
    return ranked.sort_values(order).drop(columns=order[:-1])


def _number(value: object, spec: str) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    return format(value, spec)


def _streets(codes: object, names: Mapping[str, str]) -> str:
    items = list(codes) if isinstance(codes, Iterable) and not isinstance(codes, str) else [codes]
    return "、".join(names.get(str(c), str(c)) for c in items if c is not None)


def compose_alert_summary(
    alerts: Any,
    day: Any,
    lang: Lang = "zh+en",
    *,
    top: int = 5,
    street_names: Mapping[str, str] | None = None,
    syndrome_names: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Write the body of the bulletin e-mail: counts and the top alerts of ``day``.

    Parameters
    ----------
    alerts : pandas.DataFrame
        Alerts (columns of ``alerts`` or of :func:`reports.lifecycle.list_alerts`); only
        those of ``day`` are used.
    day : datetime.date
        Analysis day.
    lang : {"zh+en", "zh", "en"}
        Chinese with English alongside, or one language.
    top : int
        How many alerts to list, most severe first (severity, p-value, recurrence
        interval, excess over expected).
    street_names, syndrome_names : mapping, optional
        Display names by street code and syndrome; codes are shown otherwise.

    Returns
    -------
    (str, str)
        Plain text (also valid chat markdown) and an HTML fragment with inline styles.
        Aggregates only: no line list, no identifiers.
    """
    if lang not in get_args(Lang):
        raise UsageError(f"unknown language {lang!r}; use one of {', '.join(get_args(Lang))}")
    streets = street_names or {}
    syndromes = syndrome_names or {}
    today = alerts[alerts["date"] == day] if "date" in alerts.columns else alerts
    kinds = today["announcement"].value_counts() if len(today) else {}
    counts = {k: int(kinds.get(k, 0)) for k in ("new", "ongoing", "grown")}
    title = f"{_label('title', lang)} {day}"
    summary = _label("count", lang, n=len(today), **counts) if len(today) else _label("none", lang)
    rows = []
    for alert in _rank(today).head(top).to_dict("records"):
        p = alert.get("p_value")
        expected = alert.get("expected")
        zh_en = _ANNOUNCEMENTS.get(str(alert.get("announcement")), ("", ""))
        rows.append(
            {
                "syndrome": syndromes.get(alert["syndrome"], alert["syndrome"]),
                "streets": _streets(alert.get("street_codes"), streets),
                "detector": alert["detector"],
                "observed": f"{alert['observed']:g}/" + (_number(expected, ".1f")),
                "severity": alert["severity"],
                "p": _number(p, ".2g"),
                "announcement": {"zh": zh_en[0], "en": zh_en[1]}.get(lang, " / ".join(zh_en)),
            }
        )
    keys = ("syndrome", "streets", "detector", "observed", "severity", "p", "announcement")
    text = [f"**{title}**", "", summary]
    if rows:
        text += ["", f"**{_label('top', lang)}**"]
        text += [
            f"{i}. {r['syndrome']} · {r['streets']} · {r['observed']} · {r['severity']} · "
            f"p={r['p']} · {r['detector']} · {r['announcement']}"
            for i, r in enumerate(rows, 1)
        ]
    text += ["", _label("attached", lang)]
    cell = "border:1px solid #bbb;padding:4px 8px;text-align:left"
    head = "".join(
        f'<th style="{cell};background:#eee">{_escape(_label(k, lang))}</th>' for k in keys
    )
    body = "".join(
        "<tr>" + "".join(f'<td style="{cell}">{_escape(r[k])}</td>' for k in keys) + "</tr>"
        for r in rows
    )
    table = (
        f"<h3>{_escape(_label('top', lang))}</h3>"
        f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>'
        if rows
        else ""
    )
    page = (
        f'<div style="font-family:sans-serif"><h2>{_escape(title)}</h2>'
        f"<p>{_escape(summary)}</p>{table}<p>{_escape(_label('attached', lang))}</p></div>"
    )
    return "\n".join(text), page
