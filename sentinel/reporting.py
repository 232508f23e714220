"""Deliver a rendered bulletin: e-mail with the PDF attached, and a chat webhook.

The ``[notify]`` settings say where (recipients, SMTP server, webhook URL); secrets come
only from the environment (``SENTINEL_SMTP_USER``, ``SENTINEL_SMTP_PASSWORD``,
``SENTINEL_WEBHOOK_URL``). The message holds counts and the top alerts — never a line list.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from reports.notify import (
    compose_alert_summary,
    markdown_payload,
    post_webhook,
    send_bulletin_email,
)
from sentinel.errors import UsageError
from sentinel.logs import log_event
from sentinel.settings import Settings
from warehouse.store import Warehouse

log = logging.getLogger("sentinel.report")


def deliver_bulletin(
    settings: Settings, day: dt.date, pdf: Path | None, *, email: bool, webhook: bool
) -> list[str]:
    """Send the bulletin of ``day``; return what was done, one line each."""
    wh = Warehouse(settings.warehouse_dir)
    alerts = wh.read_dates("alerts", day, day).to_pandas()
    streets = wh.read_table("streets")
    names = dict(zip(streets["street_code"], streets["name_zh"], strict=True))
    text, html = compose_alert_summary(alerts, day, street_names=names)
    done = []
    if email:
        if pdf is None:
            raise UsageError("the bulletin has no PDF to attach")
        message_id = send_bulletin_email(
            settings,
            subject=f"症状监测预警简报 Syndromic surveillance alert bulletin {day}",
            text_body=text,
            html_body=html,
            attachments=[pdf],
        )
        done.append(f"e-mailed to {', '.join(settings.notify.recipients)} ({message_id})")
        log_event(log, "bulletin_emailed", day=day, recipients=len(settings.notify.recipients))
    if webhook:
        url = settings.notify.webhook_url
        if not url:
            raise UsageError(
                "no webhook configured: set [notify] webhook_url or SENTINEL_WEBHOOK_URL"
            )
        post_webhook(url, markdown_payload(text))
        done.append("posted to the webhook")
        log_event(log, "bulletin_posted", day=day)
    return done
