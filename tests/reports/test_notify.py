"""Notifications against real servers on loopback: SMTP (aiosmtpd) and HTTP (http.server)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reports.notify import (
    NotifyError,
    NotifySettings,
    compose_alert_summary,
    markdown_payload,
    parse_notify_settings,
    post_webhook,
    send_bulletin_email,
)
from sentinel.errors import UsageError
from tests.servers import (
    PASSWORD,
    USER,
    SmtpServer,
    WebhookServer,
    free_port,
    smtp_server,
    webhook_server,
)

DAY = dt.date(2026, 3, 3)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def _alerts() -> pd.DataFrame:
    base = {"date": DAY, "detector": "ewma", "expected": 2.0, "announcement": "new"}
    rows = [
        {"alert_id": "a", "syndrome": "ili", "street_codes": ["310105001000"], "observed": 9.0,
         "p_value": 0.02, "severity": "low"},
        {"alert_id": "b", "syndrome": "hfmd", "street_codes": ["310105002000", "310105003000"],
         "observed": 15.0, "p_value": 0.001, "severity": "high", "announcement": "grown"},
        {"alert_id": "c", "syndrome": "gi", "street_codes": ["310105004000"], "observed": 7.0,
         "p_value": 0.01, "severity": "medium"},
        {"alert_id": "old", "syndrome": "gi", "street_codes": ["310105004000"], "observed": 70.0,
         "p_value": 0.0, "severity": "high", "date": DAY - dt.timedelta(days=1)},
    ]  # fmt: skip
    return pd.DataFrame([base | r for r in rows])


def test_bulletin_arrives_with_pdf_and_chinese_subject(smtp: SmtpServer, tmp_path: Path) -> None:
    port = smtp.port
    pdf = tmp_path / "bulletin-2026-03-03.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    text, html = compose_alert_summary(
        _alerts(),
        DAY,
        street_names={"310105002000": "华阳路街道"},
        syndrome_names={"hfmd": "手足口病"},
    )
    config = NotifySettings(
        recipients=("duty@cdc.example", "epi@cdc.example"),
        from_address="sentinel@cdc.example",
        smtp_host="127.0.0.1",
        smtp_port=port,
    )
    subject = "症状监测预警日报 2026-03-03 / Alert bulletin"
    message_id = send_bulletin_email(
        config,
        subject=subject,
        text_body=text,
        html_body=html,
        attachments=[pdf],
        environ={"SENTINEL_SMTP_USER": USER, "SENTINEL_SMTP_PASSWORD": PASSWORD},
    )
    assert len(smtp.messages) == 1
    rcpt, raw = smtp.messages[0]
    assert rcpt == ["duty@cdc.example", "epi@cdc.example"]
    got = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(got, EmailMessage)
    assert got["Subject"] == subject
    assert got["Message-ID"] == message_id
    body = got.get_body(("plain",))
    assert body is not None
    plain = body.get_content()
    assert "手足口病" in plain and "华阳路街道" in plain and "Top alerts" in plain
    # Ranked by severity: the high alert first, the medium one next.
    assert plain.index("手足口病") < plain.index("gi ·") < plain.index("ili ·")
    assert "p=0.001" in plain and "70" not in plain  # yesterday's alert is not listed
    html_part = got.get_body(("html",))
    assert html_part is not None and "<table" in html_part.get_content()
    [attachment] = list(got.iter_attachments())
    assert attachment.get_filename() == pdf.name
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf.read_bytes()


def test_wrong_password_is_a_clear_error(smtp: SmtpServer) -> None:
    port = smtp.port
    config = NotifySettings(
        recipients=("a@b.example",), from_address="s@b.example", smtp_host="127.0.0.1"
    )
    with pytest.raises(NotifyError, match="refused the login of SENTINEL_SMTP_USER"):
        send_bulletin_email(
            config,
            subject="x",
            text_body="x",
            smtp_port=port,
            environ={"SENTINEL_SMTP_USER": USER, "SENTINEL_SMTP_PASSWORD": "wrong"},
        )
    assert smtp.messages == []


def test_smtp_connection_refused() -> None:
    config = NotifySettings(
        recipients=("a@b.example",),
        from_address="s@b.example",
        smtp_host="127.0.0.1",
        smtp_port=free_port(),  # nothing listens there any more
        timeout=5,
    )
    with pytest.raises(NotifyError, match=r"cannot reach SMTP server 127\.0\.0\.1:\d+"):
        send_bulletin_email(config, subject="x", text_body="x", environ={})


def test_email_needs_configuration(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no SMTP server"):
        send_bulletin_email(NotifySettings(), subject="x", text_body="x", environ={})
    config = NotifySettings(recipients=("a@b.example",), from_address="s@b.example", smtp_host="h")
    with pytest.raises(UsageError, match="cannot read attachment"):
        send_bulletin_email(
            config, subject="x", text_body="x", attachments=[tmp_path / "no.pdf"], environ={}
        )


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


def test_webhook_receives_markdown_json(hook: WebhookServer) -> None:
    text, _ = compose_alert_summary(_alerts(), DAY, lang="zh")
    answer = post_webhook(f"{hook.url}/send?key=TOKEN", markdown_payload(text))
    assert answer == {"errcode": 0, "errmsg": "ok"}
    [(path, content_type, payload)] = hook.received
    assert path == "/send?key=TOKEN"
    assert content_type.startswith("application/json")
    assert payload["msgtype"] == "markdown"
    assert "症状监测预警日报" in payload["markdown"]["content"]
    assert "Top alerts" not in payload["markdown"]["content"]  # lang="zh" only


def test_webhook_failures_are_clear_and_hide_the_token(hook: WebhookServer) -> None:
    with pytest.raises(NotifyError, match=r"answered HTTP 500") as failed:
        post_webhook(f"{hook.url}/fail?key=TOKEN", {"a": 1})
    assert "TOKEN" not in str(failed.value)
    with pytest.raises(NotifyError, match="refused the message: 93000 invalid key"):
        post_webhook(f"{hook.url}/bad?key=TOKEN", {"a": 1})
    with pytest.raises(NotifyError, match="cannot reach webhook"):
        post_webhook(f"http://127.0.0.1:{free_port()}/x?key=TOKEN", {"a": 1}, timeout=5)
    with pytest.raises(UsageError, match="http or https"):
        post_webhook("file:///etc/passwd", {"a": 1})


def test_parse_notify_settings() -> None:
    data = {
        "recipients": ["duty@cdc.example"],
        "from_address": "sentinel@cdc.example",
        "smtp_host": "smtp.cdc.example",
        "smtp_port": 587,
        "starttls": True,
        "webhook_url": "https://chat.example/hook",
    }
    parsed = parse_notify_settings(data, "sentinel.toml", environ={})
    assert parsed.recipients == ("duty@cdc.example",)
    assert (parsed.smtp_port, parsed.starttls, parsed.webhook_format) == (587, True, "markdown")
    from_env = parse_notify_settings(data, "f", environ={"SENTINEL_WEBHOOK_URL": "https://x/y"})
    assert from_env.webhook_url == "https://x/y"
    with pytest.raises(AttributeError):
        parsed.smtp_port = 25  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"password": "x"}, "must not be in the file"),
        ({"recipients": "a@b.example"}, "must be a list"),
        ({"recipients": ["not an address"]}, "not an e-mail address"),
        ({"smtp_port": 70000}, "port number"),
        ({"starttls": "yes"}, "true or false"),
        ({"webhook_format": "xml"}, "not one of"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_bad_notify_settings(data: dict[str, Any], error: str) -> None:
    with pytest.raises(UsageError, match=error):
        parse_notify_settings(data, "sentinel.toml", environ={})


def test_summary_of_a_quiet_day_in_english() -> None:
    text, html = compose_alert_summary(_alerts(), DAY + dt.timedelta(days=5), lang="en")
    assert "No alerts today." in text and "<table" not in html
    with pytest.raises(UsageError, match="unknown language"):
        compose_alert_summary(_alerts(), DAY, lang="fr")  # type: ignore[arg-type]


def test_summary_escapes_html() -> None:
    alerts = _alerts().assign(syndrome="<script>")
    _, html = compose_alert_summary(alerts, DAY)
    assert "<script>" not in html and "&lt;script&gt;" in html
